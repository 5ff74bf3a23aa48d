"""Reading a stopped worker's table files directly (checks, debugging, tests).

Example:
    >>> from pathlib import Path
    >>> from streamflow.codecs import resolve_codec
    >>> read_table_files(Path("/nonexistent"), "t", resolve_codec("str"), resolve_codec("json"))
    {}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamflow.codecs import Codec

__all__ = ["read_table_files"]


def read_table_files(
    table_dir: Path, table: str, key_codec: Codec, value_codec: Codec
) -> dict[Any, Any]:
    """Every key and value of ``table`` in the RocksDB folders under ``table_dir``, decoded.

    The worker must be stopped (the databases are opened read-only); ``table_dir`` is
    ``state/<app-id>/worker-<port>/v1/tables``.
    """
    from rocksdict import AccessType, Options, Rdict

    values: dict[Any, Any] = {}
    for db_path in sorted(table_dir.glob(f"{table}-*.db")):
        if not db_path.name[len(table) + 1 : -len(".db")].isdigit():
            continue  # another table whose name starts with this one's (t-per-region-3.db)
        db = Rdict(str(db_path), options=Options(raw_mode=True), access_type=AccessType.read_only())
        try:
            for key, value in db.items():
                if key.startswith(b"__faust"):  # faust's own bookkeeping keys
                    continue
                values[key_codec.decode(key)] = value_codec.decode(value)
        finally:
            db.close()
    return values
