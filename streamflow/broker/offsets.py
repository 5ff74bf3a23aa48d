"""Durable committed-offset store (plain and transactional commits).

An append-only JSON-lines log in ``<data_dir>/coordinator/offsets.log``; each line is one of

* ``{"c": [group, topic, partition, offset, metadata]}`` - a committed offset,
* ``{"p": pid, "c": [...]}`` - an offset staged by a transaction (TxnOffsetCommit),
* ``{"e": pid, "ok": true|false}`` - the transaction of ``pid`` committed or aborted.

It is replayed (and rewritten compactly) on startup; a torn last line is ignored.

Example:
    >>> import tempfile
    >>> s = OffsetStore(Path(tempfile.mkdtemp()))
    >>> s.commit("g", [("t", 0, 42, "")])
    >>> s.get("g", "t", 0)
    (42, '')
    >>> s.stage(7, "g", [("t", 0, 50, "")]); s.get("g", "t", 0)[0]
    42
    >>> s.end_transaction(7, commit=True); s.get("g", "t", 0)[0]
    50
    >>> s.close()
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from .log import fsync_dir


def read_journal(path: Path) -> Iterator[dict]:
    """The records of a JSON-lines journal, skipping a torn (unreadable) line.

    >>> list(read_journal(Path("/nonexistent/journal.log")))
    []
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return
    for line in raw.split(b"\n"):
        if not line:
            continue
        try:
            yield json.loads(line)
        except ValueError:
            log.warning("%s: skipping unreadable (torn) line", path.name)


log = logging.getLogger(__name__)

OffsetKey = tuple[str, str, int]
OffsetEntry = tuple[str, int, int, str]  # topic, partition, offset, metadata


class OffsetStore:
    """Committed offsets per (group, topic, partition), persisted as a log.

    Example:
        >>> import tempfile
        >>> OffsetStore(Path(tempfile.mkdtemp())).get("g", "t", 0) is None
        True
    """

    COMPACT_AFTER_LINES = 200_000

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "offsets.log"
        self.offsets: dict[OffsetKey, tuple[int, str]] = {}
        self.pending: dict[int, dict[OffsetKey, tuple[int, str]]] = {}
        self._lines = 0
        self._replay()
        self._rewrite()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def _replay(self) -> None:
        for rec in read_journal(self.path):
            if "e" in rec:
                staged = self.pending.pop(int(rec["e"]), {})
                if rec.get("ok"):
                    self.offsets.update(staged)
            elif "d" in rec:
                for key in [k for k in self.offsets if k[1] == rec["d"]]:
                    del self.offsets[key]
            elif "p" in rec:
                g, t, p, o, m = rec["c"]
                self.pending.setdefault(int(rec["p"]), {})[(g, t, p)] = (o, m)
            elif "c" in rec:
                g, t, p, o, m = rec["c"]
                self.offsets[(g, t, p)] = (o, m)

    def _rewrite(self) -> None:
        lines = [json.dumps({"c": [g, t, p, o, m]}) for (g, t, p), (o, m) in self.offsets.items()]
        for pid, staged in self.pending.items():
            lines.extend(
                json.dumps({"p": pid, "c": [g, t, p, o, m]}) for (g, t, p), (o, m) in staged.items()
            )
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write("".join(line + "\n" for line in lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        self._lines = len(lines)

    def _append(self, lines: list[str]) -> None:
        os.write(self._fd, "".join(line + "\n" for line in lines).encode())
        self._lines += len(lines)
        if self._lines > self.COMPACT_AFTER_LINES:
            os.close(self._fd)
            self._rewrite()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def commit(self, group: str, entries: list[OffsetEntry]) -> None:
        """Record committed offsets (durable once the flusher syncs this store)."""
        lines = []
        for t, p, o, m in entries:
            self.offsets[(group, t, p)] = (o, m)
            lines.append(json.dumps({"c": [group, t, p, o, m]}))
        self._append(lines)

    def stage(self, pid: int, group: str, entries: list[OffsetEntry]) -> None:
        """Stage offsets as part of producer ``pid``'s open transaction."""
        staged = self.pending.setdefault(pid, {})
        lines = []
        for t, p, o, m in entries:
            staged[(group, t, p)] = (o, m)
            lines.append(json.dumps({"p": pid, "c": [group, t, p, o, m]}))
        self._append(lines)

    def end_transaction(self, pid: int, commit: bool) -> None:
        """Apply (commit) or drop (abort) the offsets staged by ``pid``."""
        staged = self.pending.pop(pid, None)
        if staged is None:
            return
        if commit:
            self.offsets.update(staged)
        self._append([json.dumps({"e": pid, "ok": commit})])

    def get(self, group: str, topic: str, partition: int) -> tuple[int, str] | None:
        """The committed ``(offset, metadata)`` or None."""
        return self.offsets.get((group, topic, partition))

    def group_offsets(self, group: str) -> dict[tuple[str, int], tuple[int, str]]:
        """All committed offsets of ``group`` by (topic, partition)."""
        return {(t, p): v for (g, t, p), v in self.offsets.items() if g == group}

    def delete_topic(self, topic: str) -> None:
        """Forget committed offsets of a deleted topic."""
        keys = [k for k in self.offsets if k[1] == topic]
        for key in keys:
            del self.offsets[key]
        if keys:
            self._append([json.dumps({"d": topic})])

    def sync(self) -> None:
        """fdatasync the offsets log."""
        os.fdatasync(self._fd)

    def close(self) -> None:
        """fsync and close the offsets log."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)
