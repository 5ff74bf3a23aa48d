"""Run the user-spending app end to end and print each user's total.

Generates orders, produces them with ``streamflow produce``, starts a
``streamflow worker apps/user_spending.py`` process, waits until every PAID order has
updated ``user_spending_summary``, prints the totals next to the exact expected ones and
stops the worker.

    $ python examples/run_user_spending.py --orders 5000 --users 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import orjson
from generate_orders import generate

from streamflow.cli.consume import read_topic
from streamflow.topics import Topic

ROOT = Path(__file__).resolve().parent.parent


def streamflow(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamflow.cli", *args], cwd=ROOT, **kwargs)


def latest_totals(bootstrap: str, topic: str) -> tuple[int, dict[str, str]]:
    async def collect():
        count, latest = 0, {}
        async for record in read_topic(bootstrap, Topic(topic, value="str"), idle_timeout=1.0):
            count += 1
            latest[record["key"]] = record["value"]
        return count, latest

    return asyncio.run(collect())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--broker", help="broker URL (default: streamflow's default broker)")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    os.environ.setdefault("STREAMFLOW_APP_ID", f"user-spending-demo-{run}")
    os.environ.setdefault("STREAMFLOW_TOPIC_ORDER_EVENTS", f"order_events-demo-{run}")
    os.environ.setdefault(
        "STREAMFLOW_TOPIC_USER_SPENDING_SUMMARY", f"user_spending_summary-demo-{run}"
    )
    if args.broker:
        os.environ["STREAMFLOW_BROKER"] = args.broker
    from streamflow.cli.common import resolve_bootstrap

    bootstrap = resolve_bootstrap(None)
    os.environ["STREAMFLOW_BROKER"] = bootstrap
    summary = os.environ["STREAMFLOW_TOPIC_USER_SPENDING_SUMMARY"]

    orders = generate(args.orders, args.users, seed=int(time.time()))
    expected: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    paid = 0
    for order in orders:
        if order["status"] == "PAID":
            expected[order["user_id"]] += Decimal(order["amount"])
            paid += 1
    print(
        f"broker {bootstrap}: producing {len(orders)} orders ({paid} PAID) for {args.users} users"
    )
    lines = b"".join(orjson.dumps(o) + b"\n" for o in orders)
    produced = streamflow(
        "produce",
        "--app",
        "apps/user_spending.py",
        "order_events",
        "--key",
        "order_id",
        input=lines,
    )
    if produced.returncode:
        return produced.returncode

    log_path = ROOT / "state" / "user-spending-demo.log"
    log_path.parent.mkdir(exist_ok=True)
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "streamflow.cli", "worker", "apps/user_spending.py"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    print(f"worker started (pid {worker.pid}, log {log_path}); waiting for {paid} updates")
    deadline = time.monotonic() + args.timeout
    count, latest = 0, {}
    try:
        while time.monotonic() < deadline and worker.poll() is None:
            count, latest = latest_totals(bootstrap, summary)
            if count >= paid:
                break
            time.sleep(1)
    finally:
        worker.terminate()
        worker.wait(60)

    print(f"\n{'user':<10} {'total':>12} {'expected':>12}")
    for user in sorted(expected):
        got = latest.get(user, "-")
        mark = "" if got == str(expected[user]) else "  MISMATCH"
        print(f"{user:<10} {got:>12} {expected[user]!s:>12}{mark}")
    ok = count == paid and all(latest.get(u) == str(v) for u, v in expected.items())
    print(f"\n{count} updates for {paid} PAID orders: {'all totals exact' if ok else 'NOT OK'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
