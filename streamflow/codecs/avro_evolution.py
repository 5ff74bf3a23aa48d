"""Schema evolution across the versions of a record kept in a schemas folder.

A folder keeps the current schema of a record as ``<name>.avsc`` and the versions
older data was written with as ``<name>.v<N>.avsc`` (any file name works: versions
are matched by record full name). The current schema must read every kept version
(BACKWARD), so consumers upgraded first keep reading old data; with FORWARD, every
kept version must read the current one, so consumers not yet upgraded keep reading
new data; FULL is both.

>>> v1 = parse_avro_schema({"type": "record", "name": "Order", "fields": [
...     {"name": "id", "type": "string"}]}, source="order.v1.avsc")
>>> v2 = parse_avro_schema({"type": "record", "name": "Order", "fields": [
...     {"name": "id", "type": "string"}, {"name": "note", "type": "string"}]},
...     source="order.avsc")
>>> [c.describe() for c in check_versions([v2], [v1, v2], "full")]
['order.avsc cannot read order.v1.avsc', 'order.v1.avsc reads order.avsc']
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .avro_compat import check_compatibility
from .avro_schema import AvroSchema, load_schema_file, parse_avro_schema
from .errors import SchemaError

__all__ = [
    "MODES",
    "EvolutionCheck",
    "SchemaSet",
    "check_versions",
    "current_schemas",
    "next_version_name",
]

#: Compatibility modes: who must read whom, as in Schema Registry's levels.
MODES = ("backward", "forward", "full")

_VERSIONED = re.compile(r"^(?P<stem>.+)\.v(?P<number>\d+)\.avsc$")


@dataclass
class SchemaSet:
    """Record schemas read from one place, and why the unreadable ones are not here.

    >>> found = SchemaSet()
    >>> found.add("a.avsc", '{"type": "record", "name": "A", "fields": []}')
    >>> found.add("b.avsc", "{oops")
    >>> [s.fullname for s in found.schemas], [str(e)[:22] for e in found.errors]
    (['A'], ['b.avsc: invalid JSON: '])
    """

    schemas: list[AvroSchema] = field(default_factory=list)
    errors: list[SchemaError] = field(default_factory=list)

    def add(self, source: str, schema: Mapping[str, Any] | str) -> None:
        """Parse ``schema`` (JSON text or a dict) read from ``source``; keep the error if any."""
        try:
            self.schemas.append(parse_avro_schema(schema, source=source))
        except SchemaError as exc:
            self.errors.append(exc)

    @classmethod
    def from_folder(cls, directory: str | os.PathLike[str]) -> SchemaSet:
        """Every ``*.avsc`` file of ``directory`` (not its subfolders), in name order.

        >>> SchemaSet.from_folder("schemas").schemas[0].fullname  # from the repo root
        'streamflow.examples.OrderEvent'
        """
        found = cls()
        for path in sorted(Path(directory).glob("*.avsc")):
            try:
                raw = load_schema_file(path)
            except SchemaError as exc:
                found.errors.append(exc)
                continue
            found.add(str(path), raw)
        return found


@dataclass(frozen=True)
class EvolutionCheck:
    """Whether ``reader`` reads data written with ``writer``; ``problems`` say why not.

    >>> s = parse_avro_schema({"type": "record", "name": "R", "fields": []}, source="r.avsc")
    >>> EvolutionCheck(reader=s, writer=s, problems=()).describe()
    'r.avsc reads r.avsc'
    """

    reader: AvroSchema
    writer: AvroSchema
    problems: tuple[str, ...]

    @property
    def compatible(self) -> bool:
        """True when nothing stops the reader."""
        return not self.problems

    def describe(self) -> str:
        """``"<reader> reads <writer>"`` or ``"<reader> cannot read <writer>"``."""
        verb = "reads" if self.compatible else "cannot read"
        return f"{self.reader.source} {verb} {self.writer.source}"


def _version_number(source: str) -> int | None:
    match = _VERSIONED.match(Path(source).name)
    return int(match["number"]) if match else None


def current_schemas(schemas: Iterable[AvroSchema]) -> list[AvroSchema]:
    """The current schema(s) of each record: files without a ``.v<N>`` suffix.

    A record kept only in versioned files has its highest version as current.

    >>> def s(source):
    ...     return parse_avro_schema({"type": "record", "name": "R", "fields": []}, source)
    >>> [c.source for c in current_schemas([s("r.avsc"), s("r.v1.avsc")])]
    ['r.avsc']
    >>> [c.source for c in current_schemas([s("r.v2.avsc"), s("r.v10.avsc")])]
    ['r.v10.avsc']
    """
    by_record: dict[str, list[AvroSchema]] = {}
    for schema in schemas:
        by_record.setdefault(schema.fullname, []).append(schema)
    current = []
    for versions in by_record.values():
        unversioned = [s for s in versions if _version_number(s.source) is None]
        current.extend(unversioned or [max(versions, key=lambda s: _version_number(s.source) or 0)])
    return current


def _same_file(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # not both files on disk (e.g. a committed version)
        return False


def check_versions(
    readers: Iterable[AvroSchema], versions: Iterable[AvroSchema], mode: str = "backward"
) -> list[EvolutionCheck]:
    """Check each reader against every other version of its record, in ``mode``.

    ``backward``: the reader reads each version; ``forward``: each version reads the
    reader; ``full``: both. A version from the reader's own file is skipped.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    versions = list(versions)
    checks = []
    for reader in readers:
        for version in versions:
            if version.fullname != reader.fullname or _same_file(version.source, reader.source):
                continue
            pairs = []
            if mode in ("backward", "full"):
                pairs.append((reader, version))
            if mode in ("forward", "full"):
                pairs.append((version, reader))
            checks.extend(EvolutionCheck(r, w, tuple(check_compatibility(r, w))) for r, w in pairs)
    return checks


def next_version_name(current: AvroSchema, kept: Iterable[AvroSchema]) -> str:
    """The file name for the next kept version of ``current``'s record.

    >>> def s(source):
    ...     return parse_avro_schema({"type": "record", "name": "R", "fields": []}, source)
    >>> next_version_name(s("schemas/r.avsc"), [s("schemas/r.avsc"), s("schemas/r.v1.avsc")])
    'r.v2.avsc'
    """
    name = Path(current.source).name
    match = _VERSIONED.match(name)
    stem = match["stem"] if match else name.removesuffix(".avsc")
    numbers = [_version_number(s.source) or 0 for s in kept if s.fullname == current.fullname]
    return f"{stem}.v{max(numbers, default=0) + 1}.avsc"
