"""Comparing what a run produced with what it should have produced, violation by violation.

A :class:`Tally` counts violations by kind — ``duplicates`` (an output seen twice),
``losses`` (an expected output or table entry missing), ``mismatches`` (a wrong value, an
unexpected record, records out of order) — and keeps a few examples of each for the report.

Example:
    >>> tally = Tally()
    >>> compare_sequence(tally, "out[u1]", [("a", 1), ("a", 1), ("c", 3)], [["a", "b", "c"]])
    >>> tally.counts()
    {'duplicates': 1, 'losses': 1, 'mismatches': 0}
    >>> compare_mapping(tally, "table t", {"u1": 2}, {"u1": 3, "u2": 1})
    >>> tally.counts()
    {'duplicates': 1, 'losses': 2, 'mismatches': 1}
    >>> compare_tags(tally, "other[u1]", [10, 10, 12], [10, 11, 12])
    >>> tally.counts()
    {'duplicates': 2, 'losses': 3, 'mismatches': 1}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "Tally", "compare_mapping", "compare_sequence", "compare_tags"]

KINDS = ("duplicates", "losses", "mismatches")

# Examples kept per kind: enough to start an investigation, small enough to print.
MAX_EXAMPLES = 25


@dataclass
class Tally:
    """Violations found so far, by kind, with the first examples of each.

    >>> tally = Tally()
    >>> tally.add("losses", "table t: key 'u1' missing")
    >>> tally.total, tally.examples["losses"]
    (1, ["table t: key 'u1' missing"])
    """

    by_kind: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=lambda: {kind: [] for kind in KINDS})

    def add(self, kind: str, example: str, count: int = 1) -> None:
        """Count ``count`` violations of ``kind`` (see :data:`KINDS`), described by ``example``."""
        if kind not in KINDS:
            raise ValueError(f"unknown violation kind {kind!r}")
        if count <= 0:
            return
        self.by_kind[kind] += count
        if len(self.examples[kind]) < MAX_EXAMPLES:
            self.examples[kind].append(example)

    def counts(self) -> dict[str, int]:
        """``{kind: count}`` for every kind, zeros included."""
        return {kind: self.by_kind[kind] for kind in KINDS}

    @property
    def total(self) -> int:
        """All violations counted."""
        return sum(self.by_kind.values())


def compare_sequence(
    tally: Tally,
    where: str,
    actual: Sequence[tuple[Hashable, Any]],
    chains: Iterable[Sequence[Hashable]],
    expected_values: Mapping[Hashable, Any] | None = None,
) -> None:
    """Check one key's output records, given as ``(identity, value)`` in the order written.

    Every identity of ``chains`` must appear exactly once; identities of one chain must
    appear in the chain's order (different chains may interleave freely: a total order is
    one chain). With ``expected_values`` each record's value must equal the one expected for
    its identity.

    >>> tally = Tally()
    >>> compare_sequence(tally, "k", [("b", 0), ("a", 0)], [["a", "b"]])
    >>> tally.counts()["mismatches"], tally.examples["mismatches"][0]
    (1, "k: out of order: ['b', 'a'] where ['a', 'b'] was expected")
    """
    seen = Counter(identity for identity, _ in actual)
    chains = [list(chain) for chain in chains]
    expected = {identity for chain in chains for identity in chain}
    for identity, times in seen.items():
        if times > 1:
            tally.add("duplicates", f"{where}: {identity!r} written {times} times", times - 1)
        if identity not in expected:
            tally.add("mismatches", f"{where}: unexpected record {identity!r}", times)
    missing = [identity for chain in chains for identity in chain if identity not in seen]
    if missing:
        tally.add(
            "losses",
            f"{where}: {len(missing)} missing, first {_preview(missing)}",
            len(missing),
        )
    first_seen: dict[Hashable, int] = {}
    for position, (identity, _) in enumerate(actual):
        first_seen.setdefault(identity, position)
    for chain in chains:
        present = [identity for identity in chain if identity in first_seen]
        written = sorted(present, key=first_seen.__getitem__)
        if written != present:
            tally.add(
                "mismatches",
                f"{where}: out of order: {_preview(written)} where {_preview(present)} "
                "was expected",
            )
    if expected_values is not None:
        for identity, value in actual:
            if identity in expected_values and value != expected_values[identity]:
                tally.add(
                    "mismatches",
                    f"{where}: {identity!r} has {value!r}, expected {expected_values[identity]!r}",
                )


def compare_tags(
    tally: Tally, where: str, actual: Sequence[Hashable], expected: Sequence[Hashable]
) -> None:
    """Check one key's output records by tags that may repeat, in the order written.

    For outputs whose value names no input (the record timestamp is then the best tag, and
    two inputs may share one): each tag must appear as often as in ``expected``; with no
    such difference, the tags must come in the order of ``expected``.

    >>> tally = Tally()
    >>> compare_tags(tally, "k", [5, 5, 7], [5, 5, 7])
    >>> tally.total
    0
    >>> compare_tags(tally, "k", [7, 5, 9], [5, 7])
    >>> tally.examples["mismatches"]
    ['k: unexpected record tagged 9']
    >>> compare_tags(tally, "k", [7, 5], [5, 7])
    >>> tally.examples["mismatches"][-1]
    'k: out of order: [7, 5] where [5, 7] was expected'
    """
    seen, wanted = Counter(actual), Counter(expected)
    missing: list[Hashable] = []
    for tag in sorted(seen.keys() | wanted.keys(), key=repr):
        extra = seen[tag] - wanted[tag]
        if extra > 0 and not wanted[tag]:
            tally.add("mismatches", f"{where}: unexpected record tagged {tag!r}", extra)
        elif extra > 0:
            tally.add(
                "duplicates",
                f"{where}: tag {tag!r} written {seen[tag]} times, expected {wanted[tag]}",
                extra,
            )
        elif extra < 0:
            missing.extend([tag] * -extra)
    if missing:
        tally.add(
            "losses",
            f"{where}: {len(missing)} missing, first tags {_preview(missing)}",
            len(missing),
        )
    if seen == wanted and list(actual) != list(expected):
        tally.add(
            "mismatches",
            f"{where}: out of order: {_preview(list(actual))} where {_preview(list(expected))} "
            "was expected",
        )


def compare_mapping(
    tally: Tally, where: str, actual: Mapping[Hashable, Any], expected: Mapping[Hashable, Any]
) -> None:
    """Check a table's contents: same keys, equal values.

    >>> tally = Tally()
    >>> compare_mapping(tally, "t", {"a": 1, "b": 2}, {"a": 1, "b": 2})
    >>> tally.total
    0
    """
    for key, value in expected.items():
        if key not in actual:
            tally.add("losses", f"{where}: key {key!r} missing (expected {value!r})")
        elif actual[key] != value:
            tally.add("mismatches", f"{where}: key {key!r} is {actual[key]!r}, expected {value!r}")
    for key in actual.keys() - expected.keys():
        tally.add("mismatches", f"{where}: unexpected key {key!r} = {actual[key]!r}")


def _preview(items: Sequence[Any], limit: int = 5) -> str:
    shown = [*items[:limit], "..."] if len(items) > limit else list(items)
    return repr(shown).replace("'...'", "...")
