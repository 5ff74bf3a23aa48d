"""The outcome of a chaos run: violations, faults, warnings, and the one-line summary.

Violations break exactly-once and fail the run: ``duplicates``, ``losses`` and ``mismatches``
(in outputs, tables, local state), ``hanging`` (partitions whose last stable offset stays
behind the high watermark: a transaction left open), ``stalled`` (input not fully processed
in time) and ``dlq`` (records dead-lettered although every input record is valid).
Warnings (a worker that exited on its own — ``crashes`` —, one alive but doing nothing —
``hung`` —, a stop that timed out, a dirty partition after a clean stop) are reported but do
not fail the run.

Example:
    >>> report = Report(app="user_spending", broker="embedded", seed=7, run_id="ab12cd34")
    >>> report.events = 1000
    >>> report.faults.update({"kill9": 2, "term": 1})
    >>> import textwrap
    >>> print(textwrap.fill(report.summary_line(), 70))
    app=user_spending broker=embedded events=1000 faults=kill9:2,term:1
    duplicates=0 losses=0 mismatches=0 hanging=0 stalled=0 dlq=0 crashes=0
    hung=0 warnings=0 seed=7 run=ab12cd34 OK
    >>> report.ok
    True
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos.checks import Tally

__all__ = ["Report"]


@dataclass
class Report:
    """Everything a run found; :attr:`ok` when no violation was found."""

    app: str
    broker: str
    seed: int
    run_id: str
    events: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    supervision: Counter[str] = field(default_factory=Counter)
    tally: Tally = field(default_factory=Tally)
    hanging: list[str] = field(default_factory=list)
    stalled: list[str] = field(default_factory=list)
    dlq: int = 0
    #: The profile expects dead letters and checks them itself (one per invalid input).
    dlq_checked: bool = False
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def violations(self) -> int:
        """Every violation found, all kinds together."""
        unexpected_letters = 0 if self.dlq_checked else self.dlq
        return self.tally.total + len(self.hanging) + len(self.stalled) + unexpected_letters

    @property
    def ok(self) -> bool:
        """No violation, and the run itself completed."""
        return self.violations == 0 and self.error is None

    def summary_line(self) -> str:
        """``app=… broker=… events=… faults=kill9:2,… duplicates=0 … seed=… run=… OK``."""
        faults = ",".join(f"{k}:{n}" for k, n in sorted(self.faults.items())) or "none"
        counts = " ".join(f"{kind}={n}" for kind, n in self.tally.counts().items())
        verdict = "OK" if self.ok else ("ERROR" if self.error else "VIOLATIONS")
        return (
            f"app={self.app} broker={self.broker} events={self.events} faults={faults} "
            f"{counts} hanging={len(self.hanging)} stalled={len(self.stalled)} dlq={self.dlq} "
            f"crashes={self.supervision['crash']} hung={self.supervision['hung']} "
            f"warnings={len(self.warnings)} seed={self.seed} run={self.run_id} {verdict}"
        )

    def details(self) -> str:
        """Examples of every violation, the warnings and the error, as text lines."""
        lines = []
        for kind, examples in self.tally.examples.items():
            lines.extend(f"{kind}: {example}" for example in examples)
        lines.extend(f"hanging: {item}" for item in self.hanging)
        lines.extend(f"stalled: {item}" for item in self.stalled)
        if self.dlq:
            checked = " (expected ones, checked against the input)" if self.dlq_checked else ""
            lines.append(f"dlq: {self.dlq} record(s) dead-lettered{checked}")
        lines.extend(f"warning: {item}" for item in self.warnings)
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-friendly data."""
        return {
            "app": self.app,
            "broker": self.broker,
            "seed": self.seed,
            "run_id": self.run_id,
            "ok": self.ok,
            "events": self.events,
            "faults": dict(self.faults),
            "supervision": dict(self.supervision),
            "violations": {
                **self.tally.counts(),
                "hanging": len(self.hanging),
                "stalled": len(self.stalled),
                "dlq": self.dlq,
            },
            "examples": self.tally.examples,
            "hanging": self.hanging,
            "stalled": self.stalled,
            "warnings": self.warnings,
            "notes": self.notes,
            "error": self.error,
            "summary": self.summary_line(),
        }

    def save(self, path: Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
