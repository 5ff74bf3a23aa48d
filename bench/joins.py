"""Stream-table join throughput: orders enriched with a customer table on a real worker.

Runs ``bench/join_app.py`` (PAID orders re-keyed by user through a repartition topic, joined
with the ``customers`` table, written to ``enriched_orders``) as one worker process:

1. fresh topics named with a unique token; one JSON profile per user in ``customers``,
   partitioned as streamflow partitions (murmur2 of the key, as Kafka's Java clients), so the
   table is co-partitioned with the repartition topic;
2. starts the worker and waits until its ``customers`` table holds every profile;
3. produces ``--orders`` orders (``bench/orders.py``) as fast as the producer goes, and
   consumes ``enriched_orders`` (``read_committed``) until it holds one record per PAID order;
4. checks every enriched order came once, with its user's region, and stops the worker.

Reported: input events/s = orders / (time of the last enriched order - time the first order
was produced), producing included (it is several times faster than processing), and the
worker's peak RSS. No peer runs here: faust-streaming has no joins and Quix Streams only
as-of joins, so the same job is not expressible in them.

    python bench/joins.py --orders 100000 --guarantee exactly_once --broker 127.0.0.1:9092
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import orders as gen  # noqa: E402

from streamflow.client import Client  # noqa: E402
from streamflow.runtime.sender import partition_for  # noqa: E402
from streamflow.runtime.worker import free_port  # noqa: E402

REGIONS = ("amer", "apac", "emea", "latam")


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(broker: str, orders: int, users: int, partitions: int, guarantee: str) -> dict:
    from confluent_kafka import Consumer, Producer

    token = uuid.uuid4().hex[:8]
    topics = {
        name: f"bench-{name}-{token}" for name in ("order_events", "customers", "enriched_orders")
    }
    gen.create_topics(broker, topics.values(), partitions)
    regions = {gen.user_name(i): REGIONS[i % len(REGIONS)] for i in range(users)}
    producer = Producer(gen.bulk_producer_config(broker))
    for user, region in regions.items():
        profile = {"user_id": user, "name": user, "region": region, "tier": "gold"}
        producer.produce(
            topics["customers"],
            key=user.encode(),
            value=orjson.dumps(profile),
            partition=partition_for(user.encode(), partitions),
        )
    producer.flush(30)

    state = tempfile.mkdtemp(prefix="bench-joins-")
    port = free_port(0)
    env = dict(os.environ)
    env.update(
        STREAMFLOW_APP_ID=f"bench-enrichment-{token}",
        STREAMFLOW_BROKER=broker,
        STREAMFLOW_STATE_DIR=state,
        STREAMFLOW_PROCESSING_GUARANTEE=guarantee,
        **{f"STREAMFLOW_TOPIC_{name.upper()}": topic for name, topic in topics.items()},
    )
    log = open(Path(state) / "worker.log", "wb")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamflow.cli",
            "worker",
            "bench/join_app.py",
            "--web-port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        client = Client(f"http://127.0.0.1:{port}", retry_for=120)
        deadline = time.monotonic() + 180
        while len(list(client.items("customers"))) < users:
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit(f"the worker did not load the profiles; see {log.name}")
            time.sleep(0.5)
        consumer = Consumer(
            {
                "bootstrap.servers": broker,
                "group.id": f"bench-joins-reader-{token}",
                "isolation.level": "read_committed",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topics["enriched_orders"]])
        started = time.time()
        truth = gen.produce_orders(broker, topics["order_events"], orders, users, seed=7)
        produced = time.time()
        seen: dict[str, str] = {}
        duplicates = 0
        last = started
        deadline = time.monotonic() + 600
        while len(seen) < truth.paid and time.monotonic() < deadline:
            for message in consumer.consume(10_000, timeout=1.0):
                if message.error():
                    continue
                value = orjson.loads(message.value())
                duplicates += value["order_id"] in seen
                seen[value["order_id"]] = value["region"]
                if (
                    message.key().decode() != ""
                    and value["region"] != regions[message.key().decode()]
                ):
                    raise SystemExit(f"order {value['order_id']} joined the wrong profile")
                last = time.time()
        consumer.close()
        rss = _peak_rss_mb(worker.pid)
    finally:
        worker.terminate()
        worker.wait(60)
        log.close()
    return {
        "orders": orders,
        "paid": truth.paid,
        "enriched": len(seen),
        "duplicates": duplicates,
        "events_per_s": orders / (last - started),
        "produce_s": produced - started,
        "peak_rss_mb": rss,
        "ok": len(seen) == truth.paid and duplicates == 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="127.0.0.1:9092")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument(
        "--guarantee", choices=("exactly_once", "at_least_once"), default="exactly_once"
    )
    args = parser.parse_args()
    result = run(args.broker, args.orders, args.users, args.partitions, args.guarantee)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
