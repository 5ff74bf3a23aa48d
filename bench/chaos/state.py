"""Reading a stopped worker's tables straight from its RocksDB files.

One database per table partition, ``<state>/<app-id>/worker-<port>/v1/tables/<table>-<p>.db``,
keys and values as the table's codecs wrote them; faust's own bookkeeping keys
(``__faust…``) are skipped. A ``.db.dirty`` marker beside a database says its partition had
writes of a transaction that was not known to have committed.

Example:
    >>> from pathlib import Path
    >>> from streamflow.codecs import resolve_codec
    >>> read_table(Path("/nonexistent"), "t", resolve_codec("str"), resolve_codec("json"))
    {}
"""

from __future__ import annotations

from pathlib import Path

from streamflow.state.files import read_table_files

__all__ = ["dirty_partitions", "read_table"]

#: The tables of a stopped worker, read from its RocksDB files.
read_table = read_table_files


def dirty_partitions(table_dir: Path, table: str) -> list[int]:
    """Partitions of ``table`` left marked dirty under ``table_dir``.

    >>> dirty_partitions(Path("/nonexistent"), "t")
    []
    """
    prefix = f"{table}-"
    return sorted(
        int(marker.name[len(prefix) : -len(".db.dirty")])
        for marker in table_dir.glob(f"{table}-*.db.dirty")
    )
