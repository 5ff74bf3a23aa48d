"""What each app under test must produce from a given input: the ground truth and its checks.

A profile names the app's file, its input topic and its output topics, computes the tables'
final contents from the input records alone (never from anything the app wrote), and checks
the output topics record by record. The input is written so that each user's orders sit in
one input partition (:func:`input_partition`): every user then has a total order of events,
and a user's outputs must follow it exactly.

A profile may also name reference topics (:attr:`AppProfile.reference_topics`): topics the
app reads into tables, e.g. customer profiles to join with. The harness writes their records
(:meth:`AppProfile.reference_records`, from the users and the seed) before the first order,
waits until the tables they feed hold them, and never changes them during the run; the
ground truth then reads them back from those topics (``references``, by logical name).

Example:
    >>> profile = PROFILES["user_spending"]
    >>> profile.path, profile.input_topic
    ('apps/user_spending.py', 'order_events')
    >>> orders = [Record(0, 0, "o1", {"user_id": "u1", "status": "PAID", "amount": Decimal("2.50"),
    ...                                 "order_id": "o1"})]
    >>> profile.expected_tables(orders)
    {'user-spending-store': {'u1': Decimal('2.50')}}
"""

from __future__ import annotations

import random
import zlib
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from types import MappingProxyType
from typing import Any, ClassVar

from apps.order_pipeline import region_of
from bench.chaos.checks import Tally, compare_sequence, compare_tags
from bench.chaos.observe import Record
from streamflow import Windowed
from streamflow.codecs import StrCodec
from streamflow.codecs.join import time_bytes
from streamflow.codecs.windowed import SessionWindowedCodec

__all__ = [
    "DEAD_LETTERS",
    "PROFILES",
    "AppProfile",
    "OrderEnrichment",
    "OrderFlow",
    "OrderPipeline",
    "PageSessions",
    "UserSpending",
    "input_partition",
    "latest_by_key",
]

#: In the outputs given to the checks: the app's dead-letter topic.
DEAD_LETTERS = "<dead letters>"

#: Reference records by logical topic name, for profiles without reference topics.
NO_REFERENCES: Mapping[str, Sequence[Record]] = MappingProxyType({})


def input_partition(user_id: str, partitions: int) -> int:
    """The input partition of every order of ``user_id``: one user, one partition.

    >>> input_partition("user-007", 8) == input_partition("user-007", 8)
    True
    """
    return zlib.crc32(user_id.encode()) % partitions


def paid_orders_by_user(inputs: Sequence[Record]) -> dict[str, list[dict[str, Any]]]:
    """Each user's PAID orders in input order (partition and offset order).

    See :func:`paid_records_by_user` (the same, as records).

    Raises ``ValueError`` if a user's orders are spread over several partitions: their
    relative order would be undefined and the outputs could not be checked exactly.

    >>> inputs = [Record(0, 1, "o2", {"user_id": "u", "status": "PAID"}),
    ...           Record(0, 0, "o1", {"user_id": "u", "status": "PAID"}),
    ...           Record(0, 2, "o3", {"user_id": "u", "status": "CREATED"})]
    >>> [o["status"] for o in paid_orders_by_user(inputs)["u"]]
    ['PAID', 'PAID']
    """
    return {
        user: [record.value for record in records]
        for user, records in paid_records_by_user(inputs).items()
    }


def paid_records_by_user(inputs: Sequence[Record]) -> dict[str, list[Record]]:
    """The input records of each user's PAID orders in input order (partition, offset).

    Raises ``ValueError`` if a user's orders are spread over several partitions.

    >>> inputs = [Record(0, 1, "o2", {"user_id": "u", "status": "PAID"}, 1002),
    ...           Record(0, 0, "o1", {"user_id": "u", "status": "PAID"}, 1001)]
    >>> [r.timestamp for r in paid_records_by_user(inputs)["u"]]
    [1001, 1002]
    """
    partition_of: dict[str, int] = {}
    out: dict[str, list[Record]] = defaultdict(list)
    for record in sorted(inputs, key=lambda r: (r.partition, r.offset)):
        order = record.value
        user = order["user_id"]
        if partition_of.setdefault(user, record.partition) != record.partition:
            raise ValueError(
                f"orders of {user} are in partitions {partition_of[user]} and "
                f"{record.partition}: input was not written one user per partition"
            )
        if order["status"] == "PAID":
            out[user].append(record)
    return dict(out)


def latest_by_key(records: Sequence[Record]) -> dict[Any, Any]:
    """A table read from ``records``: each key's last value; a tombstone (``None``) deletes.

    >>> latest_by_key([Record(0, 0, "a", 1), Record(1, 0, "b", 2), Record(0, 1, "a", None)])
    {'b': 2}
    """
    out: dict[Any, Any] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if record.value is None:
            out.pop(record.key, None)
        else:
            out[record.key] = record.value
    return out


def by_key(records: Sequence[Record]) -> dict[Any, list[Any]]:
    """Values of ``records`` grouped by key, each key's in the order written.

    >>> by_key([Record(1, 0, "a", 1), Record(0, 5, "a", 2), Record(0, 3, "b", 3)])
    {'a': [2, 1], 'b': [3]}
    """
    out: dict[Any, list[Any]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        out[record.key].append(record.value)
    return dict(sorted(out.items(), key=lambda item: str(item[0])))


class AppProfile(ABC):
    """An app under test: where it lives, what it reads and writes, what it must produce."""

    name: ClassVar[str]
    path: ClassVar[str]
    input_topic: ClassVar[str] = "order_events"
    output_topics: ClassVar[tuple[str, ...]]
    # Topics written once before the input and never changed (see the module's docstring).
    reference_topics: ClassVar[tuple[str, ...]] = ()
    # Whether the input holds records the app must dead-letter (the checks count them).
    checks_dead_letters: ClassVar[bool] = False
    # Input topics written during the run besides ``input_topic`` (see input_records);
    # the checks get their records with the references, by logical name.
    extra_input_topics: ClassVar[tuple[str, ...]] = ()
    # Environment the app's workers get (settings of the app itself).
    app_env: ClassVar[dict[str, str]] = {}

    @abstractmethod
    def expected_tables(
        self,
        inputs: Sequence[Record],
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
        outputs: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> dict[str, dict[Any, Any]]:
        """Each table's final contents after ``inputs``, normalized (see :meth:`normalize`).

        ``outputs`` (by logical name, checked by :meth:`check_outputs`) serve apps whose
        outcome depends on timing (wall-clock timeouts): their tables must agree with the
        outcomes the outputs show."""

    @abstractmethod
    def check_outputs(
        self,
        inputs: Sequence[Record],
        outputs: Mapping[str, Sequence[Record]],
        tally: Tally,
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> None:
        """Count the violations in the output topics (by logical name) into ``tally``."""

    def input_records(
        self,
        orders: Sequence[Mapping[str, Any]],
        topics: Mapping[str, Any],
        partitions: int,
        seed: int,
    ) -> list[tuple[Any, Any, Any, int | None]]:
        """The input as ``(topic, key, value, partition)`` records, in the order to write
        them (``topics``: the run's topics by logical name; ``partitions``: the app's
        default; partition ``None``: by key).

        By default each order goes to :attr:`input_topic` as :meth:`input_of` says.
        """
        topic = topics[self.input_topic]
        count = topic.partitions or partitions
        return [(topic, *self.input_of(index, order, count)) for index, order in enumerate(orders)]

    def input_of(
        self, index: int, order: Mapping[str, Any], partitions: int
    ) -> tuple[Any, Any, int | None]:
        """``(key, value, partition)`` of the ``index``-th order in :attr:`input_topic`:
        by default the order keyed by its id, all of a user's orders in one partition
        (:func:`input_partition`)."""
        return order["order_id"], order, input_partition(order["user_id"], partitions)

    def reference_records(
        self, users: Sequence[str], seed: int, orders: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, list[tuple[Any, Any]]]:
        """``(key, value)`` records of each reference topic, reproducible from ``seed``
        (``orders``: the input the run will write)."""
        return {}

    def reference_partition(self, topic: str, key: Any, value: Any, partitions: int) -> int | None:
        """The partition of a reference record; ``None``: by key, as streamflow partitions."""
        return None

    def normalize(self, store: str, value: Any) -> Any:
        """A table value in the form :meth:`expected_tables` gives (decoded value as is)."""
        return value

    def table_scope(self, store: str, table: dict[Any, Any]) -> dict[Any, Any]:
        """The part of a table read back that the ground truth decides (all of it, unless
        the app may forget some keys at times of its own: buffers swept by stream time)."""
        return table


class UserSpending(AppProfile):
    """``apps/user_spending.py``: per-user sums of PAID amounts, every update emitted.

    Each user's summary values must be exactly the running totals of the user's PAID
    amounts in input order: one per order, none twice, none skipped.
    """

    name = "user_spending"
    path = "apps/user_spending.py"
    output_topics = ("user_spending_summary",)

    def expected_tables(
        self,
        inputs: Sequence[Record],
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
        outputs: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> dict[str, dict[Any, Any]]:
        totals = {
            user: sum((o["amount"] for o in orders), Decimal("0.00"))
            for user, orders in paid_orders_by_user(inputs).items()
        }
        return {"user-spending-store": totals}

    def normalize(self, store: str, value: Any) -> Any:
        return Decimal(value)

    def check_outputs(
        self,
        inputs: Sequence[Record],
        outputs: Mapping[str, Sequence[Record]],
        tally: Tally,
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> None:
        written = by_key(outputs["user_spending_summary"])
        paid = paid_orders_by_user(inputs)
        for user in sorted(paid.keys() | written.keys()):
            running, totals = Decimal("0.00"), []
            for order in paid.get(user, ()):
                running += order["amount"]
                totals.append(running)
            # Amounts are positive, so each running total names the order behind it.
            actual = [(Decimal(v), v) for v in written.get(user, ())]
            compare_sequence(tally, f"user_spending_summary[{user}]", actual, [totals])


class OrderPipeline(AppProfile):
    """``apps/order_pipeline.py``: per-user totals, re-keyed into per-region totals.

    ``user_totals``: each user's updates are exactly one per PAID order, in input order,
    each with the count and running total after that order. ``region_totals``: one update
    per PAID order of the region's users; the orders of one user keep their input order
    (different users interleave freely); counts go up by one and totals by the amount of the
    order each update names.
    """

    name = "order_pipeline"
    path = "apps/order_pipeline.py"
    output_topics = ("user_totals", "region_totals")

    def expected_user_updates(self, inputs: Sequence[Record]) -> dict[str, list[dict[str, Any]]]:
        """Each user's expected ``user_totals`` values, normalized, in order."""
        out: dict[str, list[dict[str, Any]]] = {}
        for user, orders in paid_orders_by_user(inputs).items():
            running, updates = Decimal("0.00"), []
            for count, order in enumerate(orders, 1):
                running += order["amount"]
                updates.append(
                    {
                        "count": count,
                        "total": running,
                        "region": region_of(user),
                        "last_order": order["order_id"],
                        "last_amount": order["amount"],
                    }
                )
            out[user] = updates
        return out

    def expected_tables(
        self,
        inputs: Sequence[Record],
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
        outputs: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> dict[str, dict[Any, Any]]:
        users = {user: updates[-1] for user, updates in self.expected_user_updates(inputs).items()}
        regions: dict[str, dict[str, Any]] = {}
        for totals in users.values():
            region = regions.setdefault(totals["region"], {"count": 0, "total": Decimal("0.00")})
            region["count"] += totals["count"]
            region["total"] += totals["total"]
        return {"user-totals": users, "region-totals": regions}

    def normalize(self, store: str, value: Any) -> Any:
        if store == "region-totals":
            # Which order a region saw last depends on how its users interleaved.
            return {"count": value["count"], "total": Decimal(value["total"])}
        return _decimals(value)

    def check_outputs(
        self,
        inputs: Sequence[Record],
        outputs: Mapping[str, Sequence[Record]],
        tally: Tally,
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> None:
        expected = self.expected_user_updates(inputs)
        written = by_key(outputs["user_totals"])
        for user in sorted(expected.keys() | written.keys()):
            updates = expected.get(user, [])
            actual = [(v.get("last_order"), _decimals(v)) for v in written.get(user, ())]
            compare_sequence(
                tally,
                f"user_totals[{user}]",
                actual,
                [[u["last_order"] for u in updates]],
                {u["last_order"]: u for u in updates},
            )
        self._check_regions(expected, by_key(outputs["region_totals"]), tally)

    def _check_regions(
        self,
        expected: Mapping[str, list[dict[str, Any]]],
        written: Mapping[str, list[dict[str, Any]]],
        tally: Tally,
    ) -> None:
        amounts = {u["last_order"]: u["last_amount"] for us in expected.values() for u in us}
        chains: dict[str, list[list[str]]] = defaultdict(list)
        for user, updates in expected.items():
            chains[region_of(user)].append([u["last_order"] for u in updates])
        for region in sorted(chains.keys() | written.keys()):
            where = f"region_totals[{region}]"
            values = written.get(region, [])
            actual = [(v.get("last_order"), v) for v in values]
            compare_sequence(tally, where, actual, chains.get(region, []))
            count, total = 0, Decimal("0.00")
            for value in values:
                amount = amounts.get(value.get("last_order"))
                if amount is None:
                    continue  # an unexpected order, already counted
                count, total = count + 1, total + amount
                got = (value["count"], Decimal(value["total"]), Decimal(value["last_amount"]))
                if got != (count, total, amount):
                    tally.add(
                        "mismatches",
                        f"{where}: update for {value['last_order']} has count/total/amount "
                        f"{got}, expected {(count, total, amount)}",
                    )
                    count, total = value["count"], Decimal(value["total"])


class OrderEnrichment(AppProfile):
    """``apps/order_enrichment.py``: PAID orders joined with customer profiles, revenue by region.

    Reference data: one profile per user in ``customers`` (region, tier), except for about a
    fifth of the users, chosen by the seed, who have none. ``enriched_orders``: exactly one
    record per PAID order of a user with a profile, in the user's input order, with the
    order's id and amount and the profile's region and tier; none for other users.
    ``unknown_customer_orders``: one record per PAID order of a user without a profile, in
    input order; its value names no order, so records are told apart by their timestamp (an
    output carries its input record's; two orders of a user may share one, so tags are
    counted). Tables: ``customers`` the profiles, ``customers-per-region`` their number per
    region, ``region-revenue`` the exact sums of the enriched amounts per region,
    ``order-regions`` (a foreign-key join) each order's latest status and its customer's
    region, for the orders of users with a profile.
    """

    name = "order_enrichment"
    path = "apps/order_enrichment.py"
    output_topics = ("enriched_orders", "unknown_customer_orders", "settled_orders")
    reference_topics = ("customers", "payments")
    # Share of the PAID orders with a payment record.
    paid_share: ClassVar[float] = 0.7
    regions: ClassVar[tuple[str, ...]] = ("amer", "apac", "emea", "latam")
    tiers: ClassVar[tuple[str, ...]] = ("bronze", "silver", "gold")
    # Share of the users left without a profile (at least one; at least one has a profile).
    unknown_share: ClassVar[float] = 0.2
    unknown_reason: ClassVar[dict[str, str]] = {"reason": "no customer profile"}
    SUBSCRIBED: ClassVar[str] = "subscribed"

    def reference_records(
        self, users: Sequence[str], seed: int, orders: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, list[tuple[Any, Any]]]:
        """One profile per user but the unknown ones; a payment for most PAID orders.

        >>> records = OrderEnrichment().reference_records([f"u{i}" for i in range(10)], 7)
        >>> len(records["customers"]), sorted(records["customers"][0][1])
        (8, ['name', 'region', 'tier', 'user_id'])
        """
        rng = random.Random(f"customers-{seed}")
        users = sorted(users)
        unknown = max(1, round(len(users) * self.unknown_share)) if len(users) > 1 else 0
        without = set(rng.sample(users, unknown))
        paying = random.Random(f"payments-{seed}")
        payments = [
            (
                order["order_id"],
                {
                    "order_id": order["order_id"],
                    "user_id": order["user_id"],
                    "payment_id": f"pay-{order['order_id']}",
                },
            )
            for order in orders
            if order["status"] == "PAID" and paying.random() < self.paid_share
        ]
        return {
            "payments": payments,
            "customers": [
                (
                    user,
                    {
                        "user_id": user,
                        "name": f"Customer {user}",
                        "region": rng.choice(self.regions),
                        "tier": rng.choice(self.tiers),
                    },
                )
                for user in users
                if user not in without
            ],
        }

    def reference_partition(self, topic: str, key: Any, value: Any, partitions: int) -> int | None:
        """Payments go where their order's events go (by user): co-partitioned with them."""
        return input_partition(value["user_id"], partitions) if topic == "payments" else None

    def expected_tables(
        self,
        inputs: Sequence[Record],
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
        outputs: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> dict[str, dict[Any, Any]]:
        customers = latest_by_key(references["customers"])
        latest = latest_by_key(inputs)
        revenue: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
        for user, orders in paid_orders_by_user(inputs).items():
            if user in customers:
                revenue[customers[user]["region"]] += sum(
                    (o["amount"] for o in orders), Decimal("0.00")
                )
        return {
            "customers": customers,
            "customers-per-region": dict(Counter(c["region"] for c in customers.values())),
            "region-revenue": dict(revenue),
            "order-regions": {
                order_id: {
                    "status": order["status"],
                    "region": customers[order["user_id"]]["region"],
                }
                for order_id, order in latest.items()
                if order["user_id"] in customers
            },
            "latest-orders": latest,
            # The stream-stream join's window stores: nothing expires within a run.
            "settle-left": _by_key_and_time(r for r in inputs if r.value["status"] == "PAID"),
            "settle-right": _by_key_and_time(references["payments"]),
            # Every order stays subscribed to its user, with or without a profile.
            "order-regions-subscriptions": {
                (order["user_id"], order_id): self.SUBSCRIBED for order_id, order in latest.items()
            },
        }

    def normalize(self, store: str, value: Any) -> Any:
        if store == "order-regions-subscriptions":
            # The value is (a hash of the order event, its partition): the result table
            # checks that answers came right.
            digest = value[0] if isinstance(value, tuple) else None
            return self.SUBSCRIBED if isinstance(digest, bytes) and len(digest) == 16 else value
        return Decimal(value) if store == "region-revenue" else value

    def check_outputs(
        self,
        inputs: Sequence[Record],
        outputs: Mapping[str, Sequence[Record]],
        tally: Tally,
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> None:
        customers = latest_by_key(references["customers"])
        paid = paid_records_by_user(inputs)
        enriched = by_key(outputs["enriched_orders"])
        for user in sorted(paid.keys() | enriched.keys()):
            customer = customers.get(user)
            orders = [r.value for r in paid.get(user, ())] if customer is not None else []
            expected = {
                o["order_id"]: {
                    "order_id": o["order_id"],
                    "amount": o["amount"],
                    "region": customer["region"],
                    "tier": customer["tier"],
                }
                for o in orders
            }
            actual = [(v.get("order_id"), _decimals(v, "amount")) for v in enriched.get(user, ())]
            compare_sequence(
                tally,
                f"enriched_orders[{user}]",
                actual,
                [[o["order_id"] for o in orders]],
                expected,
            )
        payments = latest_by_key(references["payments"])
        settled = by_key(outputs["settled_orders"])
        paid_orders = {o["order_id"]: o for user in paid.values() for o in (r.value for r in user)}
        for order_id in sorted(set(payments) | set(settled)):
            order = paid_orders.get(order_id)
            expected_settled = (
                {
                    order_id: {
                        "order_id": order_id,
                        "amount": order["amount"],
                        "payment_id": payments[order_id]["payment_id"],
                    }
                }
                if order is not None
                else {}
            )
            compare_sequence(
                tally,
                f"settled_orders[{order_id}]",
                [(v.get("order_id"), _decimals(v, "amount")) for v in settled.get(order_id, ())],
                [list(expected_settled)],
                expected_settled,
            )
        unknown: dict[str, list[Record]] = defaultdict(list)
        for record in sorted(
            outputs["unknown_customer_orders"], key=lambda r: (r.partition, r.offset)
        ):
            unknown[record.key].append(record)
        for user in sorted(paid.keys() | unknown.keys()):
            where = f"unknown_customer_orders[{user}]"
            expected_tags = [] if user in customers else [r.timestamp for r in paid.get(user, ())]
            written = unknown.get(user, [])
            compare_tags(tally, where, [r.timestamp for r in written], expected_tags)
            for record in written:
                if record.value != self.unknown_reason:
                    tally.add(
                        "mismatches",
                        f"{where}: record at offset {record.offset} has {record.value!r}, "
                        f"expected {self.unknown_reason!r}",
                    )


class UserDigests(AppProfile):
    """``apps/user_digests.py``: a processor with a store and debounced per-user timers.

    The ground truth replays the input as the app must see it: partition by partition in
    offset order, stream time the highest record timestamp so far; each order counts into
    its user's activity and moves the user's timer to its time plus the quiet time; after
    each record, every timer due by stream time fires, earliest first, sending the user's
    digest and clearing the activity. ``user_digests``: for each user exactly these digests,
    in order (a digest is told apart by its last order), with the exact count and time.
    Tables: the activity of users still pending, and their timers. ``order_expiries``
    (wall-clock timers, one per order): exactly one expiry per order, naming its user; none
    pending at the end.
    """

    name = "user_digests"
    path = "apps/user_digests.py"
    output_topics = ("user_digests", "order_expiries")
    quiet_ms: ClassVar[int] = 400
    app_env: ClassVar[dict[str, str]] = {"USER_DIGESTS_QUIET_MS": str(quiet_ms)}

    def simulate(
        self, inputs: Sequence[Record]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], dict[str, int]]:
        """``(digests by user, pending activity by user, pending timer due by user)``.

        >>> records = [Record(0, 0, "o1", {"user_id": "u"}, 0),
        ...            Record(0, 1, "o2", {"user_id": "v"}, 1000)]
        >>> digests, pending, timers = UserDigests().simulate(records)
        >>> digests["u"]
        [{'orders': 1, 'last_order': 'o1', 'quiet_at': 400}]
        >>> pending, timers
        ({'v': {'orders': 1, 'last_order': 'o2'}}, {'v': 1400})
        """
        digests: dict[str, list[dict[str, Any]]] = defaultdict(list)
        activity: dict[str, dict[str, Any]] = {}
        timers: dict[str, int] = {}
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for record in inputs:
            by_partition[record.partition].append(record)
        for records in by_partition.values():
            now = -(1 << 62)
            mine: set[str] = set()
            for record in sorted(records, key=lambda r: r.offset):
                assert record.timestamp is not None
                now = max(now, record.timestamp)
                user = record.value["user_id"]
                seen = activity.get(user, {"orders": 0})
                activity[user] = {"orders": seen["orders"] + 1, "last_order": record.key}
                timers[user] = record.timestamp + self.quiet_ms
                mine.add(user)
                for due, due_user in sorted((timers[u], u) for u in mine if timers[u] <= now):
                    digests[due_user].append({**activity.pop(due_user), "quiet_at": due})
                    del timers[due_user]
                    mine.discard(due_user)
        return dict(digests), activity, timers

    def expected_tables(
        self,
        inputs: Sequence[Record],
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
        outputs: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> dict[str, dict[Any, Any]]:
        _, pending, timers = self.simulate(inputs)
        return {
            "user-activity": pending,
            "digests-timers": {
                ("e", due, user): pending[user]["orders"] for user, due in timers.items()
            },
            "digests-timer-index": {user: ["e", due] for user, due in timers.items()},
            "expiries-timers": {},
            "expiries-timer-index": {},
        }

    def check_outputs(
        self,
        inputs: Sequence[Record],
        outputs: Mapping[str, Sequence[Record]],
        tally: Tally,
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> None:
        users = {record.key: record.value["user_id"] for record in inputs}
        expiries = by_key(outputs["order_expiries"])
        for order_id in sorted(users.keys() | expiries.keys()):
            compare_sequence(
                tally,
                f"order_expiries[{order_id}]",
                [(value.get("order_id"), value) for value in expiries.get(order_id, [])],
                [[order_id]] if order_id in users else [],
                {order_id: {"order_id": order_id, "user_id": users.get(order_id)}},
            )
        expected, _, _ = self.simulate(inputs)
        written = by_key(outputs["user_digests"])
        for user in sorted(expected.keys() | written.keys()):
            digests = expected.get(user, [])
            compare_sequence(
                tally,
                f"user_digests[{user}]",
                [(d.get("last_order"), d) for d in written.get(user, [])],
                [[d["last_order"] for d in digests]],
                {d["last_order"]: d for d in digests},
            )


class OrderFlow(AppProfile):
    """``apps/order_flow.py``: stock reservations, a charging agent with retries and dead
    letters, wall-clock payment timeouts, releases and notifications.

    Each generated order becomes an order of one of :attr:`skus` (quantity 1 to 3); a PAID
    one also a payment request, written a little later (``payment_lag`` records at most),
    with a card that is fine, unavailable once at the gateway (retried) or declined
    (dead-lettered). The stock is a reference topic with less than the demand.

    Whether a reserved order is paid or cancelled depends on timing (payment timeout
    against processing delays and faults), so the checks are invariants: every order ends
    once, as ``[REJECTED]``, ``[RESERVED, PAID]`` or ``[RESERVED, CANCELLED]``; an order
    is paid only if its payment was charged; each charge is confirmed once, each declined
    request dead-lettered once; one notification per order, one release per cancellation;
    no SKU sold beyond its stock. The tables must agree with those outcomes: the stock is
    what was there minus what the paid orders hold, the reservations are the paid orders',
    nothing waits for payment, no timer is left.
    """

    name = "order_flow"
    path = "apps/order_flow.py"
    input_topic = "orders"
    extra_input_topics = ("payment_requests",)
    checks_dead_letters = True
    reference_topics = ("stock_changes",)
    output_topics = ("order_status", "notifications", "payments", "stock_releases")
    app_env: ClassVar[dict[str, str]] = {
        "ORDER_FLOW_PAYMENT_TIMEOUT_MINUTES": "0.1",
        "ORDER_FLOW_PAYMENT_RETRY_SECONDS": "0.5",
    }
    skus: ClassVar[tuple[str, ...]] = tuple(f"sku-{n:02d}" for n in range(12))
    payment_lag: ClassVar[int] = 400
    #: Share of the demand in stock at the start.
    stock_share: ClassVar[float] = 0.8

    def order_of(self, order: Mapping[str, Any]) -> dict[str, Any]:
        """The order flow's order for a generated order (SKU and quantity from its id).

        >>> OrderFlow().order_of({"order_id": "order-1-0000001", "user_id": "u"})["sku"]
        'sku-04'
        """
        digest = zlib.crc32(order["order_id"].encode())
        return {
            "order_id": order["order_id"],
            "user_id": order["user_id"],
            "sku": self.skus[digest % len(self.skus)],
            "quantity": 1 + digest // len(self.skus) % 3,
        }

    @staticmethod
    def card_of(order_id: str) -> str:
        """The card an order is paid with: 15% declined, 25% flaky once, the rest fine.

        >>> OrderFlow.card_of("order-1-0000001")
        'declined'
        """
        draw = zlib.crc32(order_id.encode(), 7) % 100
        return "declined" if draw < 15 else "flaky-1" if draw < 40 else "4242"

    def input_records(
        self,
        orders: Sequence[Mapping[str, Any]],
        topics: Mapping[str, Any],
        partitions: int,
        seed: int,
    ) -> list[tuple[Any, Any, Any, int | None]]:
        rng = random.Random(seed)
        slots: list[tuple[float, tuple[Any, Any, Any, int | None]]] = []
        for index, order in enumerate(orders):
            slots.append((index, (topics["orders"], order["order_id"], self.order_of(order), None)))
            if order["status"] == "PAID":
                request = {
                    "order_id": order["order_id"],
                    "amount": order["amount"],
                    "card": self.card_of(order["order_id"]),
                }
                at = index + 0.5 + rng.randrange(self.payment_lag)
                slots.append((at, (topics["payment_requests"], order["order_id"], request, None)))
        return [record for _, record in sorted(slots, key=lambda slot: slot[0])]

    def reference_records(
        self, users: Sequence[str], seed: int, orders: Sequence[Mapping[str, Any]] = ()
    ) -> dict[str, list[tuple[Any, Any]]]:
        demand: Counter[str] = Counter()
        for order in orders:
            flow_order = self.order_of(order)
            demand[flow_order["sku"]] += flow_order["quantity"]
        return {
            "stock_changes": [
                (sku, {"quantity": max(1, int(demand[sku] * self.stock_share))})
                for sku in self.skus
            ]
        }

    def _stock(self, references: Mapping[str, Sequence[Record]]) -> dict[str, int]:
        stock: Counter[str] = Counter()
        for record in references["stock_changes"]:
            stock[record.key] += int(record.value["quantity"])
        return dict(stock)

    @staticmethod
    def _outcomes(outputs: Mapping[str, Sequence[Record]]) -> dict[str, str]:
        """Each order's last status, as ``order_status`` says."""
        return {
            key: values[-1]["status"] for key, values in by_key(outputs["order_status"]).items()
        }

    def expected_tables(
        self,
        inputs: Sequence[Record],
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
        outputs: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> dict[str, dict[Any, Any]]:
        from apps.order_flow import charge_card

        orders = {record.key: record.value for record in inputs}
        outcomes = self._outcomes(outputs)
        paid = {oid: orders[oid] for oid, status in outcomes.items() if status == "PAID"}
        stock = self._stock(references)
        for order in paid.values():
            stock[order["sku"]] -= order["quantity"]
        charges = {
            r.key: {"payment_id": charge_card(r.value, 1 << 20), "amount": r.value["amount"]}
            for r in references["payment_requests"]
            if r.value["card"] != "declined"
        }
        return {
            "stock": stock,
            "reservations": {oid: order["quantity"] for oid, order in paid.items()},
            "charges": charges,
            "awaiting-payment": {},
            "payment-timers": {},
            "payment-timer-index": {},
        }

    def check_outputs(
        self,
        inputs: Sequence[Record],
        outputs: Mapping[str, Sequence[Record]],
        tally: Tally,
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> None:
        orders = {record.key: record.value for record in inputs}
        requests = {record.key: record.value for record in references["payment_requests"]}
        charged = {oid for oid, request in requests.items() if request["card"] != "declined"}
        statuses = by_key(outputs["order_status"])
        for oid in sorted(orders.keys() | statuses.keys()):
            seq = [value["status"] for value in statuses.get(oid, [])]
            where = f"order_status[{oid}]"
            if oid not in orders:
                tally.add("mismatches", f"{where}: statuses {seq} of an order never placed")
            elif seq in (["REJECTED"], ["RESERVED", "CANCELLED"]) or (
                seq == ["RESERVED", "PAID"] and oid in charged
            ):
                continue
            elif any(count > 1 for count in Counter(seq).values()):
                tally.add("duplicates", f"{where}: {seq}")
            elif not seq or seq == ["RESERVED"]:
                tally.add("losses", f"{where}: {seq or 'no status'}, never ended")
            else:
                tally.add("mismatches", f"{where}: {seq}")
        outcomes = self._outcomes(outputs)
        compare_tags(tally, "payments", sorted(r.key for r in outputs["payments"]), sorted(charged))
        compare_tags(
            tally,
            "notifications",
            sorted(r.value["order_id"] for r in outputs["notifications"]),
            sorted(orders),
        )
        compare_tags(
            tally,
            "stock_releases",
            sorted(r.value["order_id"] for r in outputs["stock_releases"]),
            sorted(oid for oid, status in outcomes.items() if status == "CANCELLED"),
        )
        declined = sorted(oid for oid in requests if oid not in charged)
        letters = [
            record.key.decode() for record in outputs[DEAD_LETTERS] if isinstance(record.key, bytes)
        ]
        compare_tags(tally, "dead letters", sorted(letters), declined)
        sold: Counter[str] = Counter()
        for oid, status in outcomes.items():
            if status == "PAID" and oid in orders:
                sold[orders[oid]["sku"]] += orders[oid]["quantity"]
        for sku, count in self._stock(references).items():
            if sold[sku] > count:
                tally.add("mismatches", f"{sku}: {sold[sku]} sold of a stock of {count}")


def _by_key_and_time(records: Iterable[Record]) -> dict[tuple[Any, int], list[Any]]:
    """A join window store's contents: the values of each ``(key, timestamp)``, in order.

    >>> _by_key_and_time([Record(0, 0, "o1", {"a": 1}, 5), Record(0, 1, "o1", {"a": 2}, 5)])
    {('o1', 5): [{'a': 1}, {'a': 2}]}
    """
    out: dict[tuple[Any, int], list[Any]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.timestamp is not None
        out[(record.key, record.timestamp)].append(record.value)
    return dict(out)


def _decimals(value: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """A value with its amounts (``names``; default a user-totals value's) as ``Decimal``.

    So ``"2.5"`` equals ``"2.50"``.
    """
    out = dict(value)
    for name in names or ("total", "last_amount"):
        if name in out:
            out[name] = Decimal(out[name])
    return out


class PageSessions(AppProfile):
    """``apps/page_sessions.py``: session windows over event time, final results only.

    Each generated order becomes a page view of its user, keyed by user (partitioned as
    streamflow partitions, so the repartition by user keeps each input partition's order),
    timed by its ``at`` field: :attr:`step_ms` per event, jittered by up to
    :attr:`jitter_ms` either way, so views arrive out of order, some bridge sessions and
    some are late. The ground truth replays each partition in offset order with stream
    time the highest ``at`` so far: a view joins (and merges) its user's sessions within
    the gap, unless that would end before stream time minus grace or change a closed
    session (late: dropped); after each view every session whose end plus gap plus grace
    stream time has passed is final. ``user_sessions``: exactly those finals, each once,
    per user in order, values exact. Tables: every session (closed ones stay for their
    retention); the closing store: each open session's entry and the stream time.
    ``recent-views`` (sliding windows of :attr:`recent_ms`, with a grace longer than any
    disorder: no view is late) is each user's window set by definition, every view's
    window ending at it and the one right after it when not empty, with exact counts;
    its record buffer the views by user and time that stream time still needs (older
    ones are swept at times of the workers' own).
    """

    _needed_from: dict[int, int]
    _partition_of: dict[str, int]

    name = "page_sessions"
    path = "apps/page_sessions.py"
    input_topic = "page_views"
    output_topics = ("user_sessions",)
    gap_ms: ClassVar[int] = 800
    grace_ms: ClassVar[int] = 100
    step_ms: ClassVar[int] = 10
    jitter_ms: ClassVar[int] = 150
    recent_ms: ClassVar[int] = 500
    recent_grace_ms: ClassVar[int] = 2000
    app_env: ClassVar[dict[str, str]] = {
        "PAGE_SESSIONS_GAP_SECONDS": str(gap_ms / 1000),
        "PAGE_SESSIONS_GRACE_SECONDS": str(grace_ms / 1000),
        "PAGE_SESSIONS_RECENT_SECONDS": str(recent_ms / 1000),
        "PAGE_SESSIONS_RECENT_GRACE_SECONDS": str(recent_grace_ms / 1000),
    }
    pages: ClassVar[tuple[str, ...]] = ("/home", "/search", "/item", "/cart", "/checkout")

    def view_of(self, index: int, order: Mapping[str, Any]) -> dict[str, Any]:
        """The page view made of the ``index``-th generated order.

        Event time starts at the first order's time (the run's start: Kafka's time-based
        retention would delete records timed long ago) and runs :attr:`step_ms` per view.

        >>> PageSessions().view_of(3, {"order_id": "order-1-0000003", "user_id": "u",
        ...                            "timestamp": 1_700_000_000_003})
        {'user_id': 'u', 'page': '/home', 'at': 1700000000175}
        """
        digest = zlib.crc32(order["order_id"].encode())
        jitter = digest % (2 * self.jitter_ms + 1) - self.jitter_ms
        start = order["timestamp"] - index  # the generator times orders 1 ms apart
        return {
            "user_id": order["user_id"],
            "page": self.pages[digest // 7 % len(self.pages)],
            "at": start + index * self.step_ms + jitter,
        }

    def input_of(
        self, index: int, order: Mapping[str, Any], partitions: int
    ) -> tuple[Any, Any, int | None]:
        # Keyed by user, partitioned as streamflow partitions: the repartition by user
        # keeps each input partition's order.
        return order["user_id"], self.view_of(index, order), None

    def simulate(
        self, inputs: Sequence[Record]
    ) -> tuple[dict[str, list[dict[str, Any]]], dict[tuple[str, int, int], dict], dict]:
        """``(finals by user in order, every session, the closing store)``.

        >>> views = [Record(0, i, "u", {"user_id": "u", "page": "/a", "at": at})
        ...          for i, at in enumerate([0, 500, 2000, 100, 4000])]
        >>> finals, sessions, closing = PageSessions().simulate(views)
        >>> [(f["start"], f["end"], f["views"]) for f in finals["u"]]
        [(0, 500, 2), (2000, 2000, 1)]
        >>> sorted(sessions)
        [('u', 0, 500), ('u', 2000, 2000), ('u', 4000, 4000)]
        """
        gap, grace = self.gap_ms, self.grace_ms
        finals: dict[str, list[dict[str, Any]]] = defaultdict(list)
        sessions: dict[tuple[str, int, int], dict[str, Any]] = {}
        by_partition: dict[int, list[Record]] = defaultdict(list)
        for record in inputs:
            by_partition[record.partition].append(record)
        open_by_partition: dict[int, set[tuple[str, int, int]]] = {}
        stream_times: dict[int, int] = {}
        for partition, records in sorted(by_partition.items()):
            now, open_ = -1, open_by_partition.setdefault(partition, set())
            for record in sorted(records, key=lambda r: r.offset):
                view = record.value
                user, at = view["user_id"], view["at"]
                now = max(now, at)
                found = sorted(
                    s for s in sessions if s[0] == user and s[1] <= at + gap and s[2] >= at - gap
                )
                start = min([at, *(s[1] for s in found)])
                end = max([at, *(s[2] for s in found)])
                closed = any(s not in open_ for s in found)
                if end + grace >= now and not closed:
                    views = sum(sessions[s]["views"] for s in found) + 1
                    pages = {view["page"], *(p for s in found for p in sessions[s]["pages"])}
                    for s in found:
                        del sessions[s]
                        open_.discard(s)
                    merged = (user, start, end)
                    sessions[merged] = {"views": views, "pages": sorted(pages)}
                    open_.add(merged)
                due = sorted((s[2] + gap + grace + 1, s) for s in open_)
                for close, s in due:
                    if close > now:
                        break
                    open_.discard(s)
                    finals[s[0]].append({"start": s[1], "end": s[2], **sessions[s]})
            stream_times[partition] = now
        closing: dict[bytes, int] = {}
        if stream_times:
            # One key per partition; the tables of all partitions read as one: the last wins.
            closing[b"\x00"] = stream_times[max(stream_times)]
        codec = SessionWindowedCodec(StrCodec())
        for open_ in open_by_partition.values():
            for user, start, end in open_:
                window = Windowed(user, start, end)
                closing[time_bytes(end + gap + grace + 1) + codec.encode(window)] = 1
        return dict(finals), sessions, closing

    def expected_tables(
        self,
        inputs: Sequence[Record],
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
        outputs: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> dict[str, dict[Any, Any]]:
        _, sessions, closing = self.simulate(inputs)
        views: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        stream_time: dict[int, int] = defaultdict(lambda: -1)
        partition_of: dict[str, int] = {}
        for record in sorted(inputs, key=lambda r: (r.partition, r.offset)):
            views[(record.value["user_id"], record.value["at"])].append(record.value)
            stream_time[record.partition] = max(stream_time[record.partition], record.value["at"])
            partition_of[record.value["user_id"]] = record.partition
        # The record buffer of the sliding windows forgets views no open window can hold,
        # at sweeps whose times depend on the workers' lives: only the views stream time
        # still needs are decided (see table_scope).
        floor = self.recent_ms + self.recent_grace_ms + 1
        self._needed_from = {p: now - floor for p, now in stream_time.items()}
        self._partition_of = partition_of
        return {
            "user-sessions": {Windowed(*s): value for s, value in sessions.items()},
            "user-sessions-closing": closing,
            "recent-views": self.recent_windows(views),
            "recent-views-records": self.table_scope("recent-views-records", dict(views)),
        }

    def table_scope(self, store: str, table: dict[Any, Any]) -> dict[Any, Any]:
        if store != "recent-views-records":
            return table
        needed_from, partition_of = self._needed_from, self._partition_of
        return {
            (user, at): values
            for (user, at), values in table.items()
            if user not in partition_of or at >= needed_from[partition_of[user]]
        }

    def recent_windows(self, views: Mapping[tuple[str, int], list]) -> dict[Windowed, int]:
        """Sliding windows by definition: per view at ``t``, ``[t - size, t]`` and, when
        views fall into it, ``[t + 1, t + 1 + size]``; each with its number of views.

        >>> PageSessions().recent_windows({("u", 1000): [{}], ("u", 1200): [{}, {}]})
        {Windowed(key='u', start=500, end=1000): 1, Windowed(key='u', start=1001, end=1501): 2, \
Windowed(key='u', start=700, end=1200): 3}
        """
        size = self.recent_ms
        times: dict[str, list[int]] = defaultdict(list)
        for (user, at), values in views.items():
            times[user].extend([at] * len(values))
        out: dict[Windowed, int] = {}
        for user, stamps in times.items():
            for at in sorted(set(stamps)):
                for start in (max(0, at - size), at + 1):
                    held = sum(start <= t <= start + size for t in stamps)
                    if held:
                        out[Windowed(user, start, start + size)] = held
        return out

    def check_outputs(
        self,
        inputs: Sequence[Record],
        outputs: Mapping[str, Sequence[Record]],
        tally: Tally,
        references: Mapping[str, Sequence[Record]] = NO_REFERENCES,
    ) -> None:
        expected, _, _ = self.simulate(inputs)
        written = by_key(outputs["user_sessions"])
        for user in sorted(expected.keys() | written.keys()):
            finals = expected.get(user, [])
            compare_sequence(
                tally,
                f"user_sessions[{user}]",
                [((s.get("start"), s.get("end")), s) for s in written.get(user, [])],
                [[(s["start"], s["end"]) for s in finals]],
                {(s["start"], s["end"]): s for s in finals},
            )


PROFILES: dict[str, AppProfile] = {
    p.name: p
    for p in (
        UserSpending(),
        OrderPipeline(),
        OrderEnrichment(),
        UserDigests(),
        OrderFlow(),
        PageSessions(),
    )
}
