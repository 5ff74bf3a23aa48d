"""Reading a stopped worker's tables straight from its RocksDB files.

One database per table partition, ``<state>/<app-id>/worker-<port>/v1/tables/<table>-<p>.db``,
keys and values as the table's codecs wrote them; faust's own bookkeeping keys
(``__faust…``) are skipped. A ``.db.dirty`` marker beside a database says its partition had
writes of a transaction that was not known to have committed.

Only ``<table>-<number>.db`` belongs to ``table``: a table whose name extends another's
(``customers-per-region`` and ``customers``) keeps its files in the same folder.

Example:
    >>> from pathlib import Path
    >>> from streamflow.codecs import resolve_codec
    >>> read_table(Path("/nonexistent"), "t", resolve_codec("str"), resolve_codec("json"))
    {}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from streamflow.codecs import Codec
from streamflow.state.files import read_table_files

__all__ = ["dirty_partitions", "read_table"]


def _partitions(table_dir: Path, table: str, suffix: str) -> dict[int, Path]:
    """``{partition: path}`` of the files ``<table>-<partition><suffix>`` under ``table_dir``.

    >>> _partitions(Path("/nonexistent"), "t", ".db")
    {}
    """
    pattern = re.compile(rf"{re.escape(table)}-(\d+){re.escape(suffix)}")
    found = {}
    for path in table_dir.glob(f"{table}-*{suffix}"):
        match = pattern.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def read_table(table_dir: Path, table: str, key_codec: Codec, value_codec: Codec) -> dict[Any, Any]:
    """Every key and value of ``table`` in the RocksDB folders under ``table_dir``, decoded.

    The worker must be stopped (the databases are opened read-only).
    """
    return read_table_files(table_dir, table, key_codec, value_codec)


def dirty_partitions(table_dir: Path, table: str) -> list[int]:
    """Partitions of ``table`` left marked dirty under ``table_dir``.

    >>> dirty_partitions(Path("/nonexistent"), "t")
    []
    """
    return list(_partitions(table_dir, table, ".db.dirty"))
