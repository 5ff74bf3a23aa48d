"""Foreign-key table joins (Kafka Streams' KIP-213): the plan behind
``left.join(right, joiner, foreign_key=...)``.

A left row joins the right row whose key is ``foreign_key(left_value)``; the two tables
need not be co-partitioned. The plan has two hops through internal topics:

- ``<app>-<name>-subscription-registration``, partitioned like the right table: each change
  of a left row subscribes it to its foreign key (and unsubscribes it from the one it
  left);
- ``<app>-<name>-subscription-response``, with the left table's partitions: the right side
  answers every subscription, and every change of a subscribed right row, with the right
  value, written to the partition of the left row that subscribed (so the left table's
  topic may have been written with any partitioner).

The right side keeps the subscriptions in the table ``<name>-subscriptions``; the result,
keyed like the left table, is the table ``<name>``.

Example:
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("shop")
    >>> orders = app.table_of(app.topic("orders"), name="orders")
    >>> customers = app.table_of(app.topic("customers"), name="customers")
    >>> enriched = orders.join(customers, lambda o, c: {**o, "region": c["region"]},
    ...                        foreign_key=lambda order: order["customer"], name="enriched")
    >>> with TestDriver(app) as driver:
    ...     driver.pipe("customers", "c1", {"region": "EU"})
    ...     driver.pipe("orders", "o1", {"customer": "c1", "amount": 5})
    ...     driver.pipe("customers", "c1", {"region": "US"})  # o1 follows its customer
    ...     driver.table("enriched")["o1"]
    {'customer': 'c1', 'amount': 5, 'region': 'US'}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from streamflow.codecs import Codec
from streamflow.codecs.foreign_key import (
    ResponseCodec,
    SubscriptionCodec,
    SubscriptionKeyCodec,
    SubscriptionValueCodec,
)
from streamflow.dsl.topology import (
    ForeignKeyJoinNode,
    ForeignKeyLookupNode,
    ForeignKeySubscribeNode,
    ForeignKeySubscriptionNode,
    SinkNode,
    SourceNode,
)
from streamflow.topics import Topic

if TYPE_CHECKING:
    from streamflow.dsl.stream import Table

__all__ = ["foreign_key_join"]


def foreign_key_join(
    left: Table,
    right: Table,
    joiner: Callable[[Any, Any], Any],
    foreign_key: Callable[[Any], Any],
    *,
    how: str,
    name: str | None,
    value_codec: Codec,
) -> ForeignKeyJoinNode:
    """Add the nodes of a foreign-key join of ``left`` with ``right`` to the app's plan.

    ``how`` is ``"inner"`` or ``"left"``; returns the result table's node (named ``name``,
    or ``<left>-<right>-fk-join``).

    >>> from streamflow import App
    >>> app = App("shop")
    >>> orders = app.table_of(app.topic("orders"), name="orders")
    >>> customers = app.table_of(app.topic("customers"), name="customers")
    >>> node = foreign_key_join(orders, customers, lambda o, c: c, lambda o: o["customer"],
    ...                         how="left", name=None, value_codec=customers.value_codec)
    >>> node.store, node.how
    ('orders-customers-fk-join', 'left')
    """
    if how not in ("inner", "left"):
        raise TypeError(
            "a foreign-key join is an inner join or a left join (table.join or "
            "table.left_join with foreign_key=...); an outer join has no left row to key "
            "its result by"
        )
    app = left._app
    builder = app.builder
    name = name or builder.unique_name(f"{left.name}-{right.name}-fk-join")
    registrations = Topic.internal_read_back(
        f"{app.id}-{name}-subscription-registration",
        key=right.key_codec,
        value=SubscriptionCodec(left.key_codec),
        partitions=right._partitions,
    )
    responses = Topic.internal_read_back(
        f"{app.id}-{name}-subscription-response",
        key=left.key_codec,
        value=ResponseCodec(right.value_codec),
        partitions=left._partitions,
    )
    # Left side: changes of a left row become subscriptions (and, without a foreign key,
    # a result at once).
    subscribe = ForeignKeySubscribeNode(foreign_key=foreign_key, value_codec=left.value_codec)
    builder.add(subscribe, parent=left._node, name=f"{name}-subscribe")
    builder.add(SinkNode(topic=registrations, internal=True), parent=subscribe)
    result = ForeignKeyJoinNode(
        left_store=left.name,
        joiner=joiner,
        how=how,
        key_codec=left.key_codec,
        value_codec=value_codec,
        left_value_codec=left.value_codec,
    )
    builder.add(result, parent=subscribe, name=name)
    result.store = name
    # Right side: the subscriptions, answered on registration and on every right update.
    registration_source = SourceNode(topic=registrations, internal=True)
    builder.add(registration_source, name=f"{name}-registration-source")
    key_codec = SubscriptionKeyCodec(right.key_codec, left.key_codec)
    registry = ForeignKeySubscriptionNode(
        right_store=right.name, key_codec=key_codec, value_codec=SubscriptionValueCodec()
    )
    builder.add(registry, parent=registration_source, name=f"{name}-subscriptions")
    registry.store = registry.name
    response_sink = SinkNode(topic=responses, internal=True, routed=True)
    builder.add(response_sink, parent=registry)
    lookup = ForeignKeyLookupNode(
        subscription_store=registry.store, subscription_key_codec=key_codec
    )
    builder.add(lookup, parent=right._node, name=f"{name}-lookup")
    lookup.children.append(response_sink)
    # Back on the left side: answers update the result.
    response_source = SourceNode(topic=responses, internal=True)
    builder.add(response_source, name=f"{name}-response-source")
    response_source.children.append(result)
    return result
