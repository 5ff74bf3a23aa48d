"""Fixtures shared by unit tests."""

from __future__ import annotations

import faust
import pytest

from streamflow.state import rocksdb


@pytest.fixture
def store(tmp_path):
    """A streamflow RocksDB store of a 4-partition table, as a worker creates it."""
    rocksdb.register()
    app = faust.App("metrics-test", datadir=str(tmp_path), store=f"{rocksdb.STORE_SCHEME}://")
    table = app.Table("totals", partitions=4, key_type=bytes, value_type=bytes)
    return table.data
