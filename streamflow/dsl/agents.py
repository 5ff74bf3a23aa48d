"""Agents in the plan: ``@app.agent(topic)`` declares one (see :meth:`streamflow.App.agent`).

An agent is an async function over a stream of its topic's records, for logic that is
more naturally a loop than a chain of operators: it calls out to services, sends to
topics (``await topic.send(key, value)``), or yields ``(key, value)`` into its ``sink``,
and keeps state in stores declared with ``app.table_store(...)``. In the plan it is a
leaf below its topic's source, so it shares the topic's partitions, transactions and
error policy with every stream of the topic.

Example:
    >>> from streamflow import App
    >>> app = App("shop")
    >>> @app.agent(app.topic("orders"), sink=app.topic("paid"))
    ... async def paid(stream):
    ...     async for order_id, order in stream.items():
    ...         if order["status"] == "PAID":
    ...             yield order_id, order
    >>> print(app.topology().describe())
    Topology shop
      Sub-topology 0
        source-1 (source: orders)
          paid (agent; sink: paid)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from streamflow.dsl.processing import StateStore, store_nodes
from streamflow.dsl.topology import AgentNode
from streamflow.topics import Topic

if TYPE_CHECKING:
    from streamflow.dsl.stream import Stream

__all__ = ["add_agent"]


def add_agent(
    stream: Stream,
    fn: Callable[[Any], Any],
    *,
    name: str,
    concurrency: int,
    sink: Topic | None,
    stores: Sequence[StateStore],
) -> AgentNode:
    """Add an :class:`~streamflow.dsl.topology.AgentNode` below ``stream``'s source.

    >>> from streamflow import App
    >>> app = App("shop")
    >>> async def audit(stream):
    ...     async for order in stream:
    ...         pass
    >>> add_agent(app.stream("orders"), audit, name="audit", concurrency=1, sink=None,
    ...           stores=[]).kind
    'agent'
    """
    generator = inspect.isasyncgenfunction(fn)
    if not generator and not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"agent {name!r} must be an async function iterating its stream: "
            f"async def {name}(stream): async for value in stream: ..."
        )
    if sink is not None and not generator:
        raise TypeError(
            f"agent {name!r} has sink={sink.name!r} but does not yield: a sink takes what an "
            "agent yields (`yield key, value` inside its loop); or drop sink= and send with "
            "`await topic.send(key, value)`"
        )
    if generator and sink is None:
        raise TypeError(
            f"agent {name!r} yields, but has no sink: declare @app.agent(topic, "
            "sink=out_topic) for what it yields"
        )
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"agent {name!r}: concurrency must be an integer of at least 1")
    node = AgentNode(
        fn=fn, concurrency=concurrency, stores=store_nodes(stream._builder, stores), sink=sink
    )
    return stream._builder.add(node, parent=stream._node, name=name)
