"""Table state: RocksDB stores (one database per partition) with exactly-once checkpoints."""

from streamflow.state.rocksdb import STORE_SCHEME, RocksDBStore, register

__all__ = ["STORE_SCHEME", "RocksDBStore", "register"]
