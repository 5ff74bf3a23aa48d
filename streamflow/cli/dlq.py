"""``streamflow dlq``: read an app's dead letters, and replay them into their topics exactly once.

``inspect`` shows each dead letter of the app's dead-letter topic: where it came from, the
step and error that sent it there, and its original key and value (decoded with the source
topic's codecs when they decode, else as escaped bytes and hex).

``replay`` sends dead letters back, key and value bytes untouched, to their source topic (or
``--to-topic``). It reads the dead-letter topic as the consumer group ``<app-id>-dlq-replay``
and, in one Kafka transaction per batch (transactional id ``<app-id>-dlq-replay``), produces
the records and commits the group's offsets. A replay that crashes leaves an open transaction
that the next replay aborts when it starts, so no dead letter is ever replayed twice.

Example:
    $ streamflow dlq inspect apps/user_spending.py --limit 1
    user-spending-dlq[2]@0  2024-05-01T12:00:00.000+00:00
      source     order_events[5]@41
      step       decode
      exception  streamflow.codecs.errors.DecodeError
      error      not Avro single-object encoding: expected marker c3 01, got 7b 22
      key        "o-17"
      value      14 bytes, not decodable as avro:streamflow.examples.OrderEvent
                 escaped  {"amount":1.5}
                 hex      7b22616d6f756e74223a312e357d
    $ streamflow dlq replay apps/user_spending.py --to-topic order_events_retry
    replayed 1 dead letter from user-spending-dlq
      order_events_retry: 1
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from typing import Any

import click
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from streamflow.app import App
from streamflow.cli.common import broker_errors, broker_option, progress, resolve_bootstrap
from streamflow.cli.loader import load_app
from streamflow.codecs import Codec
from streamflow.runtime.dead_letters import read_error_headers, replay_headers
from streamflow.topics import Topic

__all__ = [
    "describe_letter",
    "dlq",
    "format_letter",
    "replay_id",
    "show_bytes",
    "source_topics",
]

#: Bytes of an undecodable key or value the text view shows escaped, and as hex
#: (``--json`` shows all of them).
SHOWN_BYTES = 256
SHOWN_HEX_BYTES = 64
#: Seconds without any progress towards the end offsets before a read gives up.
STALL_SECONDS = 60.0
#: Dead letters per replay transaction.
BATCH = 500


def replay_id(app_id: str) -> str:
    """The consumer group and transactional id of ``dlq replay``: ``<app-id>-dlq-replay``.

    >>> replay_id("shop")
    'shop-dlq-replay'
    """
    return f"{app_id}-dlq-replay"


def source_topics(app: App) -> dict[str, Topic]:
    """The topics ``app`` reads, by name, with their codecs (repartition topics included).

    >>> app = App("shop")
    >>> _ = app.stream(app.topic("orders", value="json")).group_by(
    ...     lambda k, v: v["user"], name="by-user").count(name="counts")
    >>> sorted(source_topics(app))
    ['orders', 'shop-by-user-repartition']
    """
    topics = dict(app.topics)
    for sub in app.topology().subtopologies:
        for source in sub.sources:
            topics.setdefault(source.topic.name, source.topic)
    return topics


def show_bytes(data: bytes | None, codec: Codec | None) -> dict[str, Any] | None:
    """A key or value as JSON: decoded with ``codec`` when it decodes, else its raw bytes.

    >>> from streamflow.codecs import StrCodec
    >>> show_bytes(b"o-1", StrCodec())
    {'codec': 'str', 'decoded': 'o-1'}
    >>> show_bytes(b"\\xff\\n", StrCodec())["escaped"]
    '\\\\xff\\\\n'
    >>> show_bytes(b"\\xff\\n", None)
    {'codec': None, 'error': None, 'bytes': 2, 'escaped': '\\\\xff\\\\n', 'hex': 'ff0a'}
    """
    if data is None:
        return None
    error = None
    if codec is not None:
        try:
            return {"codec": codec.name, "decoded": codec.to_json(codec.decode(data))}
        except Exception as exc:  # whatever a codec raises, the bytes are still worth showing
            error = f"{type(exc).__name__}: {exc}"
    return {
        "codec": codec.name if codec is not None else None,
        "error": error,
        "bytes": len(data),
        "escaped": _escaped(data),
        "hex": data.hex(),
    }


def describe_letter(
    record: ConsumerRecord, topics: Mapping[str, Topic], replayed: bool = False
) -> dict[str, Any]:
    """A dead letter as JSON: where it is, where it came from, why, and its key and value.

    ``topics`` gives the codecs of source topics (see :func:`source_topics`); ``replayed``
    says whether ``dlq replay`` has already sent it back.

    >>> from aiokafka.structs import ConsumerRecord
    >>> from streamflow.runtime.dead_letters import error_headers
    >>> record = ConsumerRecord("shop-dlq", 0, 5, 1714560000000, 0, b"o-1", b"\\xc3\\x01?",
    ...     None, 3, 3, error_headers("shop", "orders", 2, 41, ValueError("bad"), "decode"))
    >>> letter = describe_letter(record, {"orders": Topic("orders", key="str", value="json")})
    >>> letter["source"], letter["key"]["decoded"], letter["value"]["hex"]
    ({'topic': 'orders', 'partition': 2, 'offset': 41}, 'o-1', 'c3013f')
    """
    info = read_error_headers(record.headers)
    source = topics.get(info.source_topic) if info.source_topic else None
    return {
        "dlq": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        "timestamp": record.timestamp,
        "time": _iso(record.timestamp),
        "source": {
            "topic": info.source_topic,
            "partition": info.source_partition,
            "offset": info.source_offset,
        },
        "step": info.step,
        "exception": info.exception,
        "error": info.error,
        "app": info.app,
        "replayed": replayed,
        "key": show_bytes(record.key, source.key_codec if source else None),
        "value": show_bytes(record.value, source.value_codec if source else None),
        "headers": {name: (data or b"").decode("utf-8", "replace") for name, data in info.headers},
    }


def format_letter(letter: Mapping[str, Any]) -> str:
    """The text view of a :func:`describe_letter` dict, one field a line.

    >>> print(format_letter({"dlq": {"topic": "shop-dlq", "partition": 0, "offset": 5},
    ...     "time": None, "replayed": True,
    ...     "source": {"topic": "orders", "partition": 2, "offset": 41}, "step": "decode",
    ...     "exception": "builtins.ValueError", "error": "bad", "headers": {},
    ...     "key": {"codec": "str", "decoded": "o-1"},
    ...     "value": {"codec": "json", "error": "DecodeError: bad", "bytes": 1,
    ...               "escaped": "\\\\x01", "hex": "01"}}))
    shop-dlq[0]@5  (replayed)
      source     orders[2]@41
      step       decode
      exception  builtins.ValueError
      error      bad
      key        "o-1"
      value      1 bytes, not decodable as json
                 escaped  \\x01
                 hex      01
    """
    where = letter["dlq"]
    source = letter["source"]
    title = f"{where['topic']}[{where['partition']}]@{where['offset']}"
    if letter["time"]:
        title += f"  {letter['time']}"
    if letter["replayed"]:
        title += "  (replayed)"
    lines = [
        title,
        f"  source     {source['topic']}[{source['partition']}]@{source['offset']}",
        f"  step       {letter['step']}",
        f"  exception  {letter['exception']}",
        f"  error      {letter['error']}",
        *_format_bytes("key", letter["key"]),
        *_format_bytes("value", letter["value"]),
    ]
    if letter["headers"]:
        shown = ", ".join(f"{name}={value}" for name, value in letter["headers"].items())
        lines.append(f"  headers    {shown}")
    return "\n".join(lines)


@click.group()
def dlq() -> None:
    """Inspect and replay an app's dead letters (records it could not process)."""


@dlq.command("inspect")
@click.argument("app_ref", metavar="APP")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Show at most N.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@broker_option
def inspect_command(app_ref: str, limit: int | None, as_json: bool, broker: str | None) -> None:
    """Show the dead letters of APP: source, step, error, and the original key and value.

    Keys and values are decoded with the source topic's codecs when they decode, else shown
    as escaped bytes and hex. Dead letters already replayed are marked.
    """
    app = load_app(app_ref)
    bootstrap = resolve_bootstrap(broker, app)
    with broker_errors(bootstrap):
        shown = asyncio.run(_inspect(bootstrap, app, limit, as_json))
    more = " (--limit reached)" if shown == limit else ""
    click.echo(f"{_letters(shown)} shown from {app.dead_letter_topic}{more}", err=True)


@dlq.command("replay")
@click.argument("app_ref", metavar="APP")
@click.option(
    "--to-topic",
    metavar="TOPIC",
    help="Send every dead letter to this (existing) topic instead of its source topic.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be replayed; send nothing.")
@broker_option
def replay_command(app_ref: str, to_topic: str | None, dry_run: bool, broker: str | None) -> None:
    """Send APP's dead letters back to their source topic (or --to-topic), exactly once.

    Keys, values, timestamps and the record's own headers are kept; a
    streamflow.replayed-from header names the dead letter. Only dead letters not replayed
    before are sent: running it again, or after a crash, sends none twice.
    """
    app = load_app(app_ref)
    bootstrap = resolve_bootstrap(broker, app)
    with broker_errors(bootstrap):
        counts = asyncio.run(_replay(bootstrap, app, to_topic, dry_run))
    verb = "would replay" if dry_run else "replayed"
    note = " (dry run: nothing sent, nothing committed)" if dry_run else ""
    click.echo(f"{verb} {_letters(counts.total())} from {app.dead_letter_topic}{note}")
    for topic, count in sorted(counts.items()):
        click.echo(f"  {topic}: {count}")


async def _inspect(bootstrap: str, app: App, limit: int | None, as_json: bool) -> int:
    topics = source_topics(app)
    shown = 0
    async with contextlib.AsyncExitStack() as stack:
        admin = await _admin(stack, bootstrap)
        tps = await _dead_letter_partitions(admin, app, bootstrap)
        replayed_to = await _committed(admin, replay_id(app.id), tps)
        consumer = await _consumer(stack, bootstrap)
        letters = await stack.enter_async_context(
            contextlib.aclosing(_read_to_end(consumer, dict.fromkeys(tps)))
        )
        async for records in letters:
            for record in records:
                tp = TopicPartition(record.topic, record.partition)
                letter = describe_letter(
                    record, topics, replayed=record.offset < replayed_to.get(tp, 0)
                )
                click.echo(orjson.dumps(letter).decode() if as_json else format_letter(letter))
                if not as_json:
                    click.echo()
                shown += 1
                if shown == limit:
                    return shown
    return shown


async def _replay(bootstrap: str, app: App, to_topic: str | None, dry_run: bool) -> Counter[str]:
    group = replay_id(app.id)
    async with contextlib.AsyncExitStack() as stack:
        admin = await _admin(stack, bootstrap)
        tps = await _dead_letter_partitions(admin, app, bootstrap)
        producer = None
        if not dry_run:
            # Starting the producer fences any earlier replay with the same transactional id
            # and aborts its open transaction, so the offsets read next are settled.
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=group)
            await producer.start()
            stack.push_async_callback(producer.stop)
        committed = await _committed(admin, group, tps)
        consumer = await _consumer(stack, bootstrap)
        targets = _Targets(admin, to_topic)
        counts: Counter[str] = Counter()
        letters = await stack.enter_async_context(
            contextlib.aclosing(_read_to_end(consumer, {tp: committed.get(tp) for tp in tps}))
        )
        with progress("replayed") as counter:
            async for records in letters:
                sends = [await targets.route(record) for record in records]
                if producer is not None:
                    async with producer.transaction():
                        pending = [
                            await producer.send(
                                topic,
                                key=record.key,
                                value=record.value,
                                partition=partition,
                                timestamp_ms=record.timestamp if record.timestamp >= 0 else None,
                                headers=replay_headers(
                                    record.headers, record.topic, record.partition, record.offset
                                ),
                            )
                            for (topic, partition), record in zip(sends, records, strict=True)
                        ]
                        # aiokafka ends a transaction without waiting for queued batches.
                        await asyncio.gather(*pending)
                        await producer.send_offsets_to_transaction(_next_offsets(records), group)
                counts.update(topic for topic, _ in sends)
                counter.add(len(records))
    return counts


class _Targets:
    """Where each dead letter goes: its source topic and partition, or ``--to-topic``."""

    def __init__(self, admin: AIOKafkaAdminClient, to_topic: str | None) -> None:
        self.admin = admin
        self.to_topic = to_topic
        self.partitions: dict[str, list[int] | None] = {}

    async def route(self, record: ConsumerRecord) -> tuple[str, int | None]:
        info = read_error_headers(record.headers)
        topic = self.to_topic or info.source_topic
        if topic is None:
            raise click.ClickException(
                f"dead letter {record.topic}[{record.partition}]@{record.offset} names no "
                "source topic; replay it with --to-topic TOPIC"
            )
        if topic not in self.partitions:
            self.partitions[topic] = await _partitions(self.admin, topic)
        partitions = self.partitions[topic]
        if partitions is None:
            raise click.ClickException(f"topic {topic} does not exist; create it first")
        if self.to_topic is None and info.source_partition in partitions:
            return topic, info.source_partition
        return topic, None  # partitioned by key, like any produced record


async def _read_to_end(
    consumer: AIOKafkaConsumer, starts: Mapping[TopicPartition, int | None]
) -> AsyncIterator[list[ConsumerRecord]]:
    """Batches of committed records from ``starts`` (``None``: the beginning) to the end
    offsets as they were when the read began."""
    consumer.assign(list(starts))
    ends = await consumer.end_offsets(list(starts))
    for tp, start in starts.items():
        if start is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, start)
    positions = {tp: await consumer.position(tp) for tp in starts}
    pending = {tp for tp, position in positions.items() if position < ends[tp]}
    progressed = time.monotonic()
    while pending:
        batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=BATCH)
        records = [
            record
            for tp, batch in sorted(batches.items())
            for record in batch
            if record.offset < ends[tp]
        ]
        for tp in list(pending):
            position = await consumer.position(tp)
            if position != positions[tp]:
                positions[tp] = position
                progressed = time.monotonic()
            if position >= ends[tp]:
                pending.discard(tp)
                consumer.pause(tp)
        if progressed < time.monotonic() - STALL_SECONDS:
            stuck = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(pending))
            raise click.ClickException(f"no progress reading {stuck} for {STALL_SECONDS:.0f}s")
        if records:
            yield records


async def _admin(stack: contextlib.AsyncExitStack, bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    stack.push_async_callback(admin.close)
    return admin


async def _consumer(stack: contextlib.AsyncExitStack, bootstrap: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    stack.push_async_callback(consumer.stop)
    return consumer


async def _partitions(admin: AIOKafkaAdminClient, topic: str) -> list[int] | None:
    """The topic's partitions, or ``None`` when it does not exist."""
    # Listing first: asking for one topic's metadata makes a broker auto-create it.
    if topic not in await admin.list_topics():
        return None
    (described,) = await admin.describe_topics([topic])
    return sorted(p["partition"] for p in described["partitions"])


async def _committed(
    admin: AIOKafkaAdminClient, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


def _next_offsets(records: list[ConsumerRecord]) -> dict[TopicPartition, int]:
    offsets: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
    return offsets


async def _dead_letter_partitions(
    admin: AIOKafkaAdminClient, app: App, bootstrap: str
) -> list[TopicPartition]:
    partitions = await _partitions(admin, app.dead_letter_topic)
    if partitions is None:
        raise click.ClickException(
            f"the dead-letter topic {app.dead_letter_topic} of app {app.id!r} does not exist "
            f"on {bootstrap}: no worker of this app has run against this broker"
        )
    return [TopicPartition(app.dead_letter_topic, p) for p in partitions]


def _format_bytes(label: str, shown: Mapping[str, Any] | None) -> list[str]:
    head = f"  {label:<9}  "
    if shown is None:
        return [head + "null"]
    if "decoded" in shown:
        return [head + orjson.dumps(shown["decoded"]).decode()]
    size = shown["bytes"]
    codec = f"not decodable as {shown['codec']}" if shown["codec"] else "no codec known"
    escaped, hexed = shown["escaped"], shown["hex"]
    if size > SHOWN_BYTES:
        escaped = _escaped(bytes.fromhex(hexed[: 2 * SHOWN_BYTES])) + f"… (first {SHOWN_BYTES})"
    if size > SHOWN_HEX_BYTES:
        hexed = hexed[: 2 * SHOWN_HEX_BYTES] + f"… (first {SHOWN_HEX_BYTES})"
    pad = " " * len(head)
    return [f"{head}{size} bytes, {codec}", f"{pad}escaped  {escaped}", f"{pad}hex      {hexed}"]


def _escaped(data: bytes) -> str:
    return repr(data)[2:-1]


def _iso(timestamp_ms: int | None) -> str | None:
    if timestamp_ms is None or timestamp_ms < 0:
        return None
    return dt.datetime.fromtimestamp(timestamp_ms / 1000, tz=dt.timezone.utc).isoformat(
        timespec="milliseconds"
    )


def _letters(count: int) -> str:
    return f"{count} dead letter{'' if count == 1 else 's'}"
