"""The processor API of the DSL: ``app.table_store(...)`` and ``stream.process(...)``.

A processor is a plain function ``fn(ctx, key, value)`` run for every record, for logic the
fluent operators cannot say: it reads and writes named stores (RocksDB, with changelogs,
partitioned like its input and visible in table views), forwards any number of records,
and schedules per-key timers fired through ``on_timer(ctx, key, payload)``. The context it
gets is :class:`streamflow.runtime.processor_api.ProcessorContext`.

Example (stock that never goes negative):
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("inventory")
    >>> stock = app.table_store("stock", key="str", value="int", default=int)
    >>> def reserve(ctx, sku, change):
    ...     level = ctx.store("stock")[sku] + change["delta"]
    ...     if level < 0:
    ...         ctx.forward(sku, {"rejected": change["delta"], "stock": level - change["delta"]})
    ...         return
    ...     ctx.store("stock")[sku] = level
    ...     ctx.forward(sku, {"stock": level})
    >>> app.stream(app.topic("stock-changes")).process(reserve, stores=[stock]).to(
    ...     app.topic("stock-events"))
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many("stock-changes", [("apple", {"delta": 2}), ("apple", {"delta": -3})])
    ...     driver.read("stock-events"), driver.table("stock")["apple"]
    ([('apple', {'stock': 2}), ('apple', {'rejected': -3, 'stock': 2})], 2)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamflow.codecs import Codec, JsonCodec, resolve_codec
from streamflow.codecs.timers import TimerKeyCodec
from streamflow.dsl.topology import KeyValueStoreNode, ProcessorNode, SourceNode
from streamflow.topics import Topic

if TYPE_CHECKING:
    from streamflow.dsl.stream import Stream

__all__ = ["StateStore", "add_processor", "store_nodes"]

#: Ticks are only triggers: an hour of them is kept.
TICK_RETENTION_MS = 3_600_000


@dataclass(frozen=True)
class StateStore:
    """A named key-value store for processors and agents, declared with
    ``app.table_store(...)``.

    Processors reach it through ``ctx.store(name)``; an agent that declares it
    (``@app.agent(topic, stores=[store])``) uses the store itself like a dict:
    ``store[key]``, ``store.get(key)``, ``del store[key]``, ``key in store``.
    ``default`` (a function of no arguments, e.g. ``int``) is what a missing key reads as;
    without it reading a missing key with ``store[key]`` raises ``KeyError``.

    >>> from streamflow import App
    >>> App("shop").table_store("stock", key="str", value="int", default=int)
    StateStore(name='stock', key='str', value='int')
    """

    name: str
    key_codec: Codec
    value_codec: Codec
    default: Callable[[], Any] | None = None

    def __repr__(self) -> str:
        key, value = self.key_codec.name, self.value_codec.name
        return f"StateStore(name={self.name!r}, key={key!r}, value={value!r})"

    # In an agent that declares the store, the store reads and writes like a dict: the
    # partition of the record the agent holds, its writes committed with that record.

    def _view(self) -> Any:
        from streamflow.runtime.agents import agent_store

        return agent_store(self)

    def __getitem__(self, key: Any) -> Any:
        return self._view()[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._view()[key] = value

    def __delitem__(self, key: Any) -> None:
        del self._view()[key]

    def __contains__(self, key: Any) -> bool:
        return key in self._view()

    def get(self, key: Any, default: Any = None) -> Any:
        """In an agent: the value of ``key``, or ``default`` (the store's own if it has one)."""
        return self._view().get(key, default)

    def setdefault(self, key: Any, value: Any) -> Any:
        """In an agent: ``store[key]`` if present, else store ``value`` and return it."""
        return self._view().setdefault(key, value)


def make_state_store(
    name: str,
    key: Codec | str,
    value: Codec | str,
    default: Callable[[], Any] | None,
) -> StateStore:
    """A :class:`StateStore`, its codecs resolved and its arguments checked.

    >>> make_state_store("seen", "str", "json", None).value_codec.name
    'json'
    """
    if not name or not isinstance(name, str):
        raise ValueError("a table store needs a name (a non-empty string)")
    if default is not None and not callable(default):
        raise TypeError(
            f"default of table store {name!r} must be a function of no arguments "
            f"(e.g. default=int or default=dict), got {default!r}"
        )
    return StateStore(name, resolve_codec(key), resolve_codec(value), default)


def store_nodes(builder: Any, stores: Sequence[StateStore]) -> list[KeyValueStoreNode]:
    """The plan nodes of ``stores`` (one node per store name, whoever uses it).

    >>> from streamflow.dsl.topology import TopologyBuilder
    >>> store = make_state_store("seen", "str", "int", int)
    >>> [node.store for node in store_nodes(TopologyBuilder("shop"), [store])]
    ['seen']
    """
    nodes = builder.state_store_nodes
    found = []
    for store in stores:
        if not isinstance(store, StateStore):
            raise TypeError(
                f"stores= takes stores declared with app.table_store(...), got {store!r}"
            )
        node = nodes.get(store.name)
        if node is None:
            node = nodes[store.name] = KeyValueStoreNode(
                name=store.name,
                store=store.name,
                key_codec=store.key_codec,
                value_codec=store.value_codec,
                default=store.default,
            )
        found.append(node)
    return found


def add_processor(
    stream: Stream,
    fn: Callable[[Any, Any, Any], Any],
    *,
    stores: Sequence[StateStore],
    on_timer: Callable[[Any, Any, Any], Any] | None,
    name: str | None,
    key: Codec | None,
    value: Codec | None,
    timer_value: Codec,
) -> Stream:
    """Add a :class:`~streamflow.dsl.topology.ProcessorNode` below ``stream``; return its output.

    The input is repartitioned first if its keys were changed (a store must hold one key's
    state in one partition). The output may have new keys: a later join or aggregation
    repartitions it.

    >>> from streamflow import App
    >>> app = App("shop")
    >>> out = add_processor(app.stream("orders"), lambda ctx, k, v: None, stores=[],
    ...                     on_timer=None, name="noop", key=None, value=None,
    ...                     timer_value=resolve_codec("json"))
    >>> out._node.kind
    'process'
    """
    builder = stream._builder
    nodes = store_nodes(builder, stores)
    name = name or builder.unique_name(f"process-{getattr(fn, '__name__', 'fn')}")
    source = stream._partitioned_by_key(name, key=stream._key_codec)
    processor = ProcessorNode(fn=fn, on_timer=on_timer, stores=nodes)
    if on_timer is not None:
        processor.timers = KeyValueStoreNode(
            name=f"{name}-timers",
            store=f"{name}-timers",
            key_codec=TimerKeyCodec(source._key_codec),
            value_codec=timer_value,
        )
        processor.timer_index = KeyValueStoreNode(
            name=f"{name}-timer-index",
            store=f"{name}-timer-index",
            key_codec=source._key_codec,
            value_codec=JsonCodec(),
        )
    out = source._child(processor, name, key_codec=key, value_codec=value, key_changed=True)
    if on_timer is not None:
        # Wall-clock timers: the worker owning a partition writes a tick to the same
        # partition of this topic about every second; processing a tick fires them.
        ticks = Topic(
            f"{builder.app_id}-{name}-ticks",
            key="bytes",
            value="int",
            partitions=source._partitions,
            internal=True,
            config={"cleanup.policy": "delete", "retention.ms": str(TICK_RETENTION_MS)},
        )
        tick_source = SourceNode(topic=ticks, internal=True)
        builder.add(tick_source, name=f"{name}-tick-source")
        tick_source.children.append(processor)
        processor.tick_source = tick_source
    return out
