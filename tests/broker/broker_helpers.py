"""Client helpers shared by the broker tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import confluent_kafka
import kafka
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition

from streamflow.broker.local import recv_exact


async def create_topic(
    bootstrap: str, name: str, partitions: int = 1, configs: dict[str, str] | None = None
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    finally:
        await admin.close()
    await wait_for_metadata(bootstrap, name, partitions)


async def wait_for_metadata(bootstrap: str, name: str, partitions: int) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            parts = await p.partitions_for(name)
            if parts and len(parts) == partitions:
                return
            await asyncio.sleep(0.1)
    finally:
        await p.stop()


async def consume_all(
    bootstrap: str,
    topic: str,
    expected: int | None = None,
    timeout: float = 10.0,
    isolation_level: str = "read_uncommitted",
    partitions: int = 1,
    idle: float = 1.5,
) -> list[Any]:
    """Read a topic from the beginning with manual assignment; returns the messages."""
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level=isolation_level,
    )
    await c.start()
    try:
        c.assign([TopicPartition(topic, i) for i in range(partitions)])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        last_data = time.monotonic()
        while time.monotonic() < deadline:
            batch = await c.getmany(timeout_ms=200)
            for msgs in batch.values():
                out.extend(msgs)
                last_data = time.monotonic()
            if expected is not None and len(out) >= expected:
                break
            if expected is None and time.monotonic() - last_data > idle:
                break
        return out
    finally:
        await c.stop()


def raw_request(bootstrap: str, request: Any, response_cls: Any, version: int) -> Any:
    """Send one request over a fresh socket and decode the response."""
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        request.with_header(correlation_id=42, client_id="conformance")
        s.sendall(bytes(request.encode(header=True, framed=True)))
        size = int.from_bytes(recv_exact(s, 4), "big")
        return response_cls.decode(recv_exact(s, size), version=version, header=True)


class RawConnection:
    """One connection sending kafka-python protocol objects in turn and decoding the answers.

    Brokers answer the requests of a connection in order, one at a time (a JoinGroup holds
    the connection until its rebalance completes): each group member needs its own.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.correlation_id = 0

    @classmethod
    async def open(cls, bootstrap: str) -> RawConnection:
        host, port = bootstrap.rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port)))

    async def send(self, request: Any, response_cls: Any, version: int) -> Any:
        self.correlation_id += 1
        request.with_header(correlation_id=self.correlation_id, client_id="conformance")
        self.writer.write(bytes(request.encode(header=True, framed=True)))
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        body = await self.reader.readexactly(size)
        return response_cls.decode(body, version=version, header=True)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


def send_raw(bootstrap: str, payload: bytes, read: bool = True) -> bytes | None:
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(payload)
        if not read:
            return None
        try:
            size = int.from_bytes(recv_exact(s, 4), "big")
            return recv_exact(s, size)
        except (TimeoutError, ConnectionError):
            return None


def produce_raw(bootstrap: str, topic: str, records: bytes) -> tuple[int, int]:
    """Send ``records`` (a record batch) to partition 0 with a raw Produce v7 request.

    Returns the partition's ``(error_code, base_offset)``.
    """
    from kafka.protocol.producer import ProduceRequest, ProduceResponse

    request = ProduceRequest[7](
        transactional_id=None,
        acks=-1,
        timeout_ms=10000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name=topic,
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(index=0, records=records)
                ],
            )
        ],
    )
    response = raw_request(bootstrap, request, ProduceResponse, 7)
    partition = response.responses[0].partition_responses[0]
    return partition.error_code, partition.base_offset


# -- consumer groups of synchronous clients (kafka-python, confluent-kafka) --------------------
Record = tuple[int, int, bytes]
"""(partition, offset, value) of one record a group member read."""


class KafkaPythonMember:
    """A kafka-python ``KafkaConsumer`` subscribed to ``topic`` in ``group``, in its own thread.

    The thread polls without pause, as an application's consumer loop does; ``commit`` and
    ``close`` are run by that thread between two polls (a ``KafkaConsumer`` is not thread
    safe).

    kafka-python 3.0.12 drops the result of a JoinGroup that completed between two
    ``poll()`` calls and sends JoinGroup again. From a follower that is harmless (the
    coordinator answers with the current generation); from the group leader it starts one
    more rebalance, on Apache Kafka too, and the group never settles while the leader's
    ``poll()`` timeout is shorter than the time the other members take to rejoin. Hence one
    thread per consumer and a ``poll_timeout_ms`` well above the heartbeat interval, rather
    than several consumers polled in turn with short timeouts.
    """

    def __init__(
        self, bootstrap: str, topic: str, group: str, poll_timeout_ms: int = 1000, **config: Any
    ) -> None:
        self.poll_timeout_ms = poll_timeout_ms
        self.records: list[Record] = []
        self._partitions: set[int] = set()
        self._calls: queue.Queue[tuple[Callable[[Any], None], Future[None]]] = queue.Queue()
        self._closed = False
        self._error: Exception | None = None
        consumer = kafka.KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            **config,
        )
        self._thread = threading.Thread(target=self._run, args=(consumer,), daemon=True)
        self._thread.start()

    def _run(self, consumer: Any) -> None:
        while not self._closed:
            with contextlib.suppress(queue.Empty):
                call, done = self._calls.get_nowait()
                try:
                    call(consumer)
                    done.set_result(None)
                except Exception as e:
                    done.set_exception(e)
                continue
            try:
                batches = consumer.poll(timeout_ms=self.poll_timeout_ms)
            except Exception as e:
                self._error = e
                return
            for batch in batches.values():
                self.records.extend((r.partition, r.offset, r.value) for r in batch)
            self._partitions = {tp.partition for tp in consumer.assignment()}

    def _in_thread(self, call: Callable[[Any], None], timeout: float = 30.0) -> None:
        self.poll()
        done: Future[None] = Future()
        self._calls.put((call, done))
        done.result(timeout)

    def poll(self) -> None:
        """Nothing to do but report a failed poll: the member's thread polls."""
        if self._error is not None:
            raise AssertionError(f"kafka-python poll failed: {self._error!r}")

    def partitions(self) -> set[int]:
        return set() if self._closed else set(self._partitions)

    def commit(self) -> None:
        self._in_thread(lambda consumer: consumer.commit())

    def close(self) -> None:
        """Close the consumer (commits, then LeaveGroup) and end its thread."""
        if self._closed:
            return

        def close(consumer: Any) -> None:
            self._closed = True
            consumer.close()

        self._in_thread(close)
        self._thread.join(10)


class ConfluentMember:
    """A confluent-kafka (librdkafka) consumer subscribed to ``topic`` in ``group``.

    ``assigned`` and ``revoked`` log the partitions of every rebalance callback: with the
    cooperative-sticky assignor they are the increments, with eager assignors everything.
    """

    def __init__(self, bootstrap: str, topic: str, group: str, strategy: str) -> None:
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "partition.assignment.strategy": strategy,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 500,
            }
        )
        self.records: list[Record] = []
        self.assigned: list[set[int]] = []
        self.revoked: list[set[int]] = []
        self.consumer.subscribe(
            [topic],
            on_assign=lambda _, tps: self.assigned.append({tp.partition for tp in tps}),
            on_revoke=lambda _, tps: self.revoked.append({tp.partition for tp in tps}),
        )

    def poll(self) -> None:
        for msg in self.consumer.consume(num_messages=500, timeout=0.1):
            if msg.error() is None:
                self.records.append((msg.partition(), msg.offset(), msg.value()))

    def partitions(self) -> set[int]:
        return {tp.partition for tp in self.consumer.assignment()}

    def commit(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except confluent_kafka.KafkaException as e:
            if e.args[0].code() != confluent_kafka.KafkaError._NO_OFFSET:
                raise

    def close(self) -> None:
        self.consumer.close()


KAFKA_PYTHON_MEMBER_SCRIPT = """
import json, sys
from kafka import KafkaConsumer

bootstrap, topic, group, config = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         auto_offset_reset="earliest", **config)
reported = None
while True:
    consumer.poll(timeout_ms=1000)  # see KafkaPythonMember
    partitions = sorted(tp.partition for tp in consumer.assignment())
    if partitions != reported:
        print(json.dumps(partitions), flush=True)
        reported = partitions
"""


class SubprocessMember:
    """A kafka-python group member in its own process, so that it can be SIGKILLed.

    It reports its assignment on stdout; ``partitions()`` is the latest report.
    """

    def __init__(self, bootstrap: str, topic: str, group: str, **config: Any) -> None:
        script = [sys.executable, "-c", KAFKA_PYTHON_MEMBER_SCRIPT, bootstrap, topic, group]
        self.proc = subprocess.Popen(
            [*script, json.dumps(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.records: list[Record] = []  # read in the child, never seen here
        self._partitions: set[int] = set()

        def follow() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self._partitions = set(json.loads(line))

        threading.Thread(target=follow, daemon=True).start()

    def poll(self) -> None:
        """Nothing to do: the child polls on its own."""

    def partitions(self) -> set[int]:
        return set(self._partitions) if self.proc.poll() is None else set()

    def commit(self) -> None:
        """Nothing to do: the child commits on its own."""

    def kill(self) -> None:
        """SIGKILL the member: no LeaveGroup, no commit."""
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        self.kill()


GroupMember = KafkaPythonMember | ConfluentMember | SubprocessMember


def on_each(members: list[GroupMember], action: Callable[[GroupMember], None]) -> None:
    """Run ``action`` on every member at once (each may wait for its member's poll)."""
    with ThreadPoolExecutor(max_workers=max(len(members), 1)) as pool:
        for done in [pool.submit(action, m) for m in members]:
            done.result()


def describe(members: list[GroupMember]) -> str:
    return ", ".join(f"member {i}: {sorted(m.partitions())}" for i, m in enumerate(members))


def poll_until(
    members: list[GroupMember], condition: Callable[[], bool], timeout: float, what: str
) -> float:
    """Poll the members in turn (those without a thread of their own) until ``condition``.

    Returns the seconds it took; fails the test with the members' assignments after
    ``timeout``.
    """
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        for member in members:
            member.poll()
        if condition():
            return time.monotonic() - start
        time.sleep(0.02)  # members that poll in their own thread or process
    raise AssertionError(f"{what} not within {timeout:.0f}s; {describe(members)}")


def shares_partitions(members: list[GroupMember], partitions: int) -> bool:
    """Every partition is owned by exactly one member and each holds its even share."""
    owned = [m.partitions() for m in members]
    counts = sorted(len(p) for p in owned)
    return (
        set().union(*owned) == set(range(partitions))
        and sum(counts) == partitions
        and counts[-1] - counts[0] <= 1
    )


def read_values(members: list[GroupMember]) -> list[bytes]:
    return sorted(value for m in members for _, _, value in m.records)


def produce_values(bootstrap: str, topic: str, partitions: int, values: range) -> list[bytes]:
    """Write ``b"<n>"`` for each n of ``values``, to partition n % ``partitions``."""
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for n in values:
            producer.send(topic, value=str(n).encode(), partition=n % partitions)
        producer.flush()
    finally:
        producer.close()
    return [str(n).encode() for n in values]


def committed_and_end_offsets(
    bootstrap: str, topic: str, group: str, partitions: int
) -> tuple[dict[int, int | None], dict[int, int]]:
    """The group's committed offset and the end offset of every partition of ``topic``."""
    consumer = kafka.KafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        tps = [kafka.TopicPartition(topic, p) for p in range(partitions)]
        ends = consumer.end_offsets(tps)
        committed = {tp.partition: consumer.committed(tp) for tp in tps}
        return committed, {tp.partition: ends[tp] for tp in tps}
    finally:
        consumer.close()
