"""Read-only views of the driver's tables: committed state, decoded, across all partitions.

Example:
    >>> from streamflow.codecs import resolve_codec
    >>> from streamflow.dsl.topology import AggregateNode
    >>> from streamflow.runtime.tasks import TableRuntime
    >>> from streamflow.state.memory import MemoryStore
    >>> store = MemoryStore()
    >>> store.write_raw(2, {b"alice": b"5"}); store.checkpoint(2)
    >>> node = AggregateNode(store="counts", key_codec=resolve_codec("str"),
    ...                      value_codec=resolve_codec("json"))
    >>> view = TableView(TableRuntime(node, lambda: store, "app-counts-changelog", 8))
    >>> view["alice"], len(view), dict(view.items())
    (5, 1, {'alice': 5})
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from streamflow.runtime.global_tables import GlobalTableState
from streamflow.runtime.tasks import TableRuntime

__all__ = ["GlobalTableView", "TableView"]


class TableView(Mapping):
    """A table as a read-only mapping: ``view[key]``, ``get``, ``items()``, ``len``, ``in``.

    Reads see what the last commit left (the driver commits after every record), in
    stored-key order, partition after partition. Windowed tables are keyed by
    :class:`~streamflow.dsl.windows.Windowed`.
    """

    def __init__(self, table: TableRuntime) -> None:
        self._table = table
        self._encode_key = table.node.key_codec.encode
        self._decode_key = table.node.key_codec.decode
        self._decode_value = table.node.value_codec.decode

    @property
    def name(self) -> str:
        """The table's name."""
        return self._table.name

    def _raw_items(self) -> Iterator[tuple[bytes, bytes]]:
        store = self._table.store
        for partition in range(self._table.partitions):
            yield from store.iter_committed(partition)

    def __getitem__(self, key: Any) -> Any:
        try:
            raw_key = self._encode_key(key)
        except Exception as exc:
            raise KeyError(key) from exc
        store = self._table.store
        for partition in range(self._table.partitions):
            raw = store.get_committed(partition, raw_key)
            if raw is not None:
                return self._decode_value(raw)
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        return (self._decode_key(raw) for raw, _ in self._raw_items())

    def __len__(self) -> int:
        return sum(1 for _ in self._raw_items())

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        """Every ``(key, value)`` pair, decoded, in stored-key order per partition."""
        return [
            (self._decode_key(raw_key), self._decode_value(raw_value))
            for raw_key, raw_value in self._raw_items()
        ]

    def __repr__(self) -> str:
        return f"TableView({self.name!r}, {len(self)} keys)"


class GlobalTableView(Mapping):
    """A global table as a read-only mapping (what every worker holds).

    >>> from streamflow.codecs import resolve_codec
    >>> state = GlobalTableState("regions", resolve_codec("str"), resolve_codec("str"), {})
    >>> state.apply(b"eu", b"Europe")
    >>> dict(GlobalTableView(state))
    {'eu': 'Europe'}
    """

    def __init__(self, state: GlobalTableState) -> None:
        self._state = state

    def __getitem__(self, key: Any) -> Any:
        value = self._state.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[Any]:
        return (key for key, _ in self._state.items())

    def __len__(self) -> int:
        return len(self._state)

    def items(self) -> list[tuple[Any, Any]]:  # type: ignore[override]
        """Every ``(key, value)`` pair, decoded."""
        return list(self._state.items())
