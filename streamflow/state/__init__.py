"""Table state behind one small interface (:class:`TableStore`): RocksDB and in-memory stores.

Example:
    >>> store = MemoryStore()
    >>> isinstance(store, TableStore)
    True
"""

from streamflow.state.base import TableStore
from streamflow.state.memory import MemoryStore
from streamflow.state.rocksdb import STORE_SCHEME, RocksDBStore, register

__all__ = ["STORE_SCHEME", "MemoryStore", "RocksDBStore", "TableStore", "register"]
