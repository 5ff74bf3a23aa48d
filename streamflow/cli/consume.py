"""``streamflow consume``: print a topic's records as JSON lines, decoded with its codecs.

Example:
    $ streamflow consume --app apps/user_spending.py user_spending_summary --from-beginning --max 5
    {"key":"user-01","value":"12.50","partition":3,"offset":0,"timestamp":1714560000000}
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamflow.cli.common import broker_errors, broker_option, resolve_bootstrap, topic_for
from streamflow.cli.loader import load_app
from streamflow.topics import Topic

__all__ = ["consume", "read_topic"]


def _decoded(codec_decode, to_json, data: bytes | None) -> Any:
    if data is None:
        return None
    try:
        return to_json(codec_decode(data))
    except Exception as exc:
        return {"undecodable": data.hex(), "error": str(exc)}


async def read_topic(
    bootstrap: str,
    topic: Topic,
    *,
    from_beginning: bool = True,
    max_records: int | None = None,
    idle_timeout: float = 5.0,
    read_committed: bool = True,
) -> Any:
    """Yield decoded records of ``topic`` as dicts until ``max_records`` or an idle timeout.

    >>> # async for record in read_topic("127.0.0.1:9092", Topic("out")): ...
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed" if read_committed else "read_uncommitted",
        enable_auto_commit=False,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic.name)
        if not partitions:
            await consumer._client._wait_on_metadata(topic.name)
            partitions = consumer.partitions_for_topic(topic.name) or set()
        if not partitions:
            return
        consumer.assign([TopicPartition(topic.name, p) for p in sorted(partitions)])
        if from_beginning:
            await consumer.seek_to_beginning()
        else:
            await consumer.seek_to_end()
        seen = 0
        key_codec, value_codec = topic.key_codec, topic.value_codec
        while max_records is None or seen < max_records:
            batches = await consumer.getmany(timeout_ms=int(idle_timeout * 1000))
            if not batches:
                return
            for tp, messages in sorted(batches.items(), key=lambda item: item[0].partition):
                for message in messages:
                    yield {
                        "key": _decoded(key_codec.decode, key_codec.to_json, message.key),
                        "value": _decoded(value_codec.decode, value_codec.to_json, message.value),
                        "partition": tp.partition,
                        "offset": message.offset,
                        "timestamp": message.timestamp,
                        **(
                            {
                                "headers": {
                                    k: v.decode("utf-8", "replace") for k, v in message.headers
                                }
                            }
                            if message.headers
                            else {}
                        ),
                    }
                    seen += 1
                    if max_records is not None and seen >= max_records:
                        return
    finally:
        await consumer.stop()


async def _consume(bootstrap: str, topic: Topic, **options: Any) -> int:
    count = 0
    out = sys.stdout.buffer
    async for record in read_topic(bootstrap, topic, **options):
        out.write(orjson.dumps(record) + b"\n")
        count += 1
        if count % 1000 == 0:
            out.flush()
    out.flush()
    return count


@click.command()
@click.argument("topic")
@click.option(
    "--app", "app_ref", metavar="APP", help="App whose topic declaration (codecs) to use."
)
@click.option("--from-beginning", is_flag=True, help="Start at the earliest offset (else the end).")
@click.option("--max", "max_records", type=int, metavar="N", help="Stop after N records.")
@click.option(
    "--timeout",
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Stop after this many seconds without a new record.",
)
@broker_option
def consume(
    topic: str,
    app_ref: str | None,
    from_beginning: bool,
    max_records: int | None,
    timeout: float,
    broker: str | None,
) -> None:
    """Print TOPIC's committed records as JSON lines (decimals as strings)."""
    app = load_app(app_ref) if app_ref else None
    declared = topic_for(app, topic)
    bootstrap = resolve_bootstrap(broker, app)
    with broker_errors(bootstrap):
        asyncio.run(
            _consume(
                bootstrap,
                declared,
                from_beginning=from_beginning,
                max_records=max_records,
                idle_timeout=timeout,
            )
        )
