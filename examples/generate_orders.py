"""Generate order events as JSON lines (for ``streamflow produce``).

    $ python examples/generate_orders.py --orders 1000 --users 50 --seed 7 > orders.jsonl
    $ streamflow produce --app apps/user_spending.py order_events --key order_id < orders.jsonl

Amounts are decimal strings with two places, so totals can be checked exactly.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import orjson

STATUSES = ["CREATED", "PAID", "SHIPPED", "CANCELLED"]
WEIGHTS = [0.2, 0.6, 0.1, 0.1]


def generate(orders: int, users: int, seed: int) -> list[dict]:
    """``orders`` random orders over ``users`` users, reproducible from ``seed``.

    >>> generate(2, 1, 0)[0]["user_id"]
    'user-000'
    """
    rng = random.Random(seed)
    start = int(time.time() * 1000)
    return [
        {
            "order_id": f"order-{seed}-{i:07d}",
            "user_id": f"user-{rng.randrange(users):03d}",
            "status": rng.choices(STATUSES, WEIGHTS)[0],
            "amount": f"{rng.randrange(100, 50_000) / 100:.2f}",
            "currency": "USD",
            "timestamp": start + i,
        }
        for i in range(orders)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    out = sys.stdout.buffer
    for order in generate(args.orders, args.users, args.seed):
        out.write(orjson.dumps(order) + b"\n")


if __name__ == "__main__":
    main()
