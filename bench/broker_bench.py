"""Produce/consume throughput: the embedded streamflow broker vs Apache Kafka, same client.

Uses aiokafka (acks=all, explicit record batches) against both brokers in one run and prints
MB/s, records/s and the streamflow/Kafka ratio.

Example:
    python bench/broker_bench.py --records 200000
    python bench/broker_bench.py --records 50000 --sizes 1024 --no-kafka
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: E402
from aiokafka.structs import TopicPartition  # noqa: E402

from streamflow.broker.testing import embedded_broker  # noqa: E402


async def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    p = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await p.start()
    while len(await p.partitions_for(name) or ()) != partitions:
        await asyncio.sleep(0.1)
    await p.stop()


async def produce(
    bootstrap: str, topic: str, n: int, size: int, partitions: int, batch_bytes: int
) -> float:
    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        max_batch_size=batch_bytes,
        linger_ms=5,
        max_request_size=8 * 1024 * 1024,
    )
    await p.start()
    value = b"x" * size
    try:
        start = time.perf_counter()
        futs = []
        sent = 0
        part = 0
        while sent < n:
            batch = p.create_batch()
            while sent < n and batch.append(key=None, value=value, timestamp=None) is not None:
                sent += 1
            batch.close()
            futs.append(await p.send_batch(batch, topic, partition=part))
            part = (part + 1) % partitions
            if len(futs) > 64:
                await asyncio.gather(*futs)
                futs = []
        await asyncio.gather(*futs)
        return time.perf_counter() - start
    finally:
        await p.stop()


async def consume(bootstrap: str, topic: str, n: int, partitions: int) -> float:
    c = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=1024 * 1024,
    )
    await c.start()
    try:
        c.assign([TopicPartition(topic, i) for i in range(partitions)])
        got = 0
        start = time.perf_counter()
        while got < n:
            res = await c.getmany(timeout_ms=1000, max_records=100_000)
            got += sum(len(v) for v in res.values())
        return time.perf_counter() - start
    finally:
        await c.stop()


async def run_once(name: str, bootstrap: str, size: int, args: argparse.Namespace) -> tuple:
    topic = f"bench-{size}-{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic, args.partitions)
    tp = await produce(bootstrap, topic, args.records, size, args.partitions, args.batch_bytes)
    tc = await consume(bootstrap, topic, args.records, args.partitions)
    mb = args.records * size / 1e6
    print(
        f"  {name:10s} {size:5d}B  produce {mb / tp:7.1f} MB/s  consume {mb / tc:7.1f} MB/s",
        flush=True,
    )
    return tp, tc


def kafka_up(addr: str) -> bool:
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


async def main_async(args: argparse.Namespace) -> None:
    # Rounds alternate between the brokers and the best time per cell is kept, which filters
    # out interference from other processes on a shared machine.
    results: dict[str, dict[int, list[tuple]]] = {"streamflow": {}, "kafka": {}}
    use_kafka = not args.no_kafka and kafka_up(args.kafka)
    if not args.no_kafka and not use_kafka:
        print(f"Kafka not reachable at {args.kafka}; skipping it")
    with tempfile.TemporaryDirectory() as d, embedded_broker(Path(d) / "broker") as b:
        print(f"streamflow broker at {b.bootstrap}; Kafka at {args.kafka}", flush=True)
        for r in range(args.rounds):
            print(f"round {r + 1}/{args.rounds}", flush=True)
            for size in args.sizes:
                results["streamflow"].setdefault(size, []).append(
                    await run_once("streamflow", b.bootstrap, size, args)
                )
                if use_kafka:
                    results["kafka"].setdefault(size, []).append(
                        await run_once("kafka", args.kafka, size, args)
                    )
    best = {
        name: {size: (min(t[0] for t in runs), min(t[1] for t in runs)) for size, runs in r.items()}
        for name, r in results.items()
        if r
    }
    print()
    hdr = (
        f"{'size':>6} {'op':8} {'streamflow MB/s':>15} {'rec/s':>10}"
        f" {'kafka MB/s':>11} {'rec/s':>10} {'ratio':>6}"
    )
    print(hdr)
    print("-" * len(hdr))
    for size in args.sizes:
        for i, op in enumerate(("produce", "consume")):
            s = best["streamflow"][size][i]
            row = f"{size:6d} {op:8} {args.records * size / s / 1e6:15.1f} {args.records / s:10.0f}"
            if "kafka" in best:
                k = best["kafka"][size][i]
                row += (
                    f" {args.records * size / k / 1e6:11.1f} {args.records / k:10.0f} {k / s:6.2f}"
                )
            print(row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000, help="records per size and op")
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100, 1024])
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch-bytes", type=int, default=256 * 1024)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds; best is kept")
    ap.add_argument("--kafka", default="127.0.0.1:9092")
    ap.add_argument("--no-kafka", action="store_true")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
