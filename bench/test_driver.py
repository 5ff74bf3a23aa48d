"""Records per second through the test driver (no broker), for the apps users test most.

For each app, pipes ``--orders`` generated orders (``examples/generate_orders.py``) through a
fresh :class:`~streamflow.testing.TestDriver`, once with one ``pipe`` per order and once with
one ``pipe_many``, and checks the resulting table against the exact totals. Reports input
records per second and the time per order, the best of ``--rounds``.

    python bench/test_driver.py --orders 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

from generate_orders import generate  # noqa: E402

from streamflow.cli.loader import load_app  # noqa: E402
from streamflow.testing import TestDriver  # noqa: E402

APPS = {
    "user_spending": ("apps/user_spending.py", "user-spending-store", lambda v: v),
    "order_pipeline": ("apps/order_pipeline.py", "user-totals", lambda v: Decimal(v["total"])),
}


def run(app_path: str, table: str, total_of, orders: list[dict], many: bool) -> float:
    app = load_app(str(ROOT / app_path))
    codec = app.topics["order_events"].value_codec
    records = [(o["order_id"], codec.from_json(o), o["timestamp"]) for o in orders]
    expected: dict[str, Decimal] = {}
    for o in orders:
        if o["status"] == "PAID":
            expected[o["user_id"]] = expected.get(o["user_id"], Decimal("0.00")) + Decimal(
                o["amount"]
            )
    with TestDriver(app) as driver:
        started = time.perf_counter()
        if many:
            driver.pipe_many("order_events", records)
        else:
            for key, value, timestamp in records:
                driver.pipe("order_events", key, value, timestamp=timestamp)
        elapsed = time.perf_counter() - started
        got = {k: total_of(v) for k, v in driver.table(table).items()}
    if got != expected:
        raise SystemExit(f"{app_path}: the table does not match the exact totals")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    orders = generate(args.orders, args.users, seed=1)
    print(f"{'app':<16} {'mode':<10} {'orders/s':>10} {'us/order':>9}")
    for name, (path, table, total_of) in APPS.items():
        for many in (False, True):
            best = min(run(path, table, total_of, orders, many) for _ in range(args.rounds))
            mode = "pipe_many" if many else "pipe"
            print(
                f"{name:<16} {mode:<10} {args.orders / best:>10,.0f} "
                f"{best / args.orders * 1e6:>9.0f}"
            )


if __name__ == "__main__":
    main()
