"""``streamflow produce``: JSON lines from stdin into a topic, through the topic's codecs.

Example:
    $ echo '{"order_id": "o1", "user_id": "u1", "status": "PAID", "amount": "12.50",
    ...      "timestamp": 1714560000000}' | streamflow produce --app apps/user_spending.py \\
    ...      order_events --key order_id
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterable, Iterator
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaProducer

from streamflow.cli.common import (
    broker_errors,
    broker_option,
    progress,
    resolve_bootstrap,
    topic_for,
)
from streamflow.cli.loader import load_app
from streamflow.codecs import CodecError, ValidationError
from streamflow.runtime.admin import ensure_topics
from streamflow.topics import Topic

__all__ = ["encode_line", "produce"]


class LineError(Exception):
    """A line that cannot be produced; the message names the line and the field."""


def encode_line(
    topic: Topic, line: str, number: int, key_field: str | None
) -> tuple[bytes | None, bytes | None]:
    """Encode one JSON line into ``(key bytes, value bytes)`` or raise :class:`LineError`.

    >>> from streamflow.topics import Topic
    >>> encode_line(Topic("t", key="str", value="json"), '{"id": "a", "n": 1}', 1, "id")
    (b'a', b'{"id":"a","n":1}')
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise LineError(f"line {number}: not valid JSON ({exc})") from None
    key: Any
    if key_field is not None:
        if not isinstance(obj, dict) or key_field not in obj:
            raise LineError(f"line {number}: no field {key_field!r} to take the key from")
        key, value = obj[key_field], obj
    elif isinstance(obj, dict) and set(obj) <= {"key", "value"} and "value" in obj:
        key, value = obj.get("key"), obj["value"]
    else:
        key, value = None, obj
    try:
        key_bytes = None if key is None else topic.key_codec.encode(topic.key_codec.from_json(key))
    except CodecError as exc:
        raise LineError(f"line {number}: key: {exc}") from None
    try:
        native = None if value is None else topic.value_codec.from_json(value)
        value_bytes = None if native is None else topic.value_codec.encode(native)
    except ValidationError as exc:
        where = f"field {exc.field!r}: " if exc.field else ""
        raise LineError(f"line {number}: {where}{exc.reason}") from None
    except CodecError as exc:
        raise LineError(f"line {number}: {exc}") from None
    return key_bytes, value_bytes


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, 1):
        if line.strip():
            yield number, line


async def _produce(bootstrap: str, topic: Topic, key_field: str | None, partitions: int) -> int:
    await ensure_topics(bootstrap, [(topic.name, topic.partitions or partitions, topic.config)])
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    errors = 0
    pending = []
    try:
        with progress("produced") as counter:
            for number, line in _numbered(sys.stdin):
                try:
                    key, value = encode_line(topic, line, number, key_field)
                except LineError as exc:
                    errors += 1
                    click.echo(f"error: {exc}", err=True)
                    continue
                pending.append(await producer.send(topic.name, value=value, key=key))
                counter.add()
                if len(pending) >= 10_000:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return errors


@click.command()
@click.argument("topic")
@click.option(
    "--app", "app_ref", metavar="APP", help="App whose topic declaration (codecs) to use."
)
@click.option("--key", "key_field", metavar="FIELD", help="Take each record's key from this field.")
@click.option(
    "--partitions", default=8, show_default=True, help="Partitions if the topic is new (no --app)."
)
@broker_option
def produce(
    topic: str, app_ref: str | None, key_field: str | None, partitions: int, broker: str | None
) -> None:
    """Produce JSON lines from stdin to TOPIC, encoded with the topic's codecs.

    Each line is a record value (its key taken from --key FIELD), or {"key": ..., "value": ...}.
    A line that does not fit the schema is reported with its line number and field, and
    nothing of it is sent.
    """
    app = load_app(app_ref) if app_ref else None
    declared = topic_for(app, topic)
    if app is not None:
        partitions = app.partitions
    bootstrap = resolve_bootstrap(broker, app)
    with broker_errors(bootstrap):
        errors = asyncio.run(_produce(bootstrap, declared, key_field, partitions))
    if errors:
        raise click.ClickException(f"{errors} line(s) were not sent (see above)")
