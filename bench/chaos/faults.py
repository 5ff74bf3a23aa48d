"""Fault injection: what can go wrong, chosen at random (from a seed) while the input flows.

Kinds of fault:

* ``kill9`` — SIGKILL a worker, whatever it is doing (mid-batch, mid-commit);
* ``term`` — SIGTERM a worker: a graceful stop, its partitions move to the others;
* ``start`` — start a worker: a new one, or a stopped one on the state it left behind;
* ``wipe`` — delete a stopped worker's local state, then start it: tables come back from
  their changelogs;
* ``pause`` — SIGSTOP a worker for a few seconds, then SIGCONT (a long GC pause);
* ``broker-restart`` / ``broker-kill9`` — restart the broker gracefully / after SIGKILL.

Besides faults the injector supervises: a worker that exits on its own is recorded as a
crash and started again, and whenever no worker is left one is started after a moment.

Example:
    >>> plan = FaultPlan(kinds=("kill9", "term"), max_workers=2)
    >>> plan.gap(random.Random(1)) >= plan.min_gap
    True
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.chaos.brokers import Broker
from bench.chaos.workers import Slot, WorkerPool

__all__ = ["FAULT_KINDS", "FaultInjector", "FaultPlan"]

FAULT_KINDS = ("kill9", "term", "start", "wipe", "pause", "broker-restart", "broker-kill9")

DEFAULT_WEIGHTS = {
    "kill9": 4.0,
    "term": 2.0,
    "start": 3.0,
    "wipe": 1.5,
    "pause": 1.0,
    "broker-restart": 1.0,
    "broker-kill9": 1.0,
}


@dataclass
class FaultPlan:
    """Which faults, how often, and within which bounds."""

    kinds: tuple[str, ...] = FAULT_KINDS
    max_workers: int = 3
    min_gap: float = 6.0
    max_gap: float = 14.0
    pause_seconds: tuple[float, float] = (2.0, 8.0)
    # Broker restarts need time to settle before the next one is worthwhile.
    broker_quiet: float = 25.0
    stop_timeout: float = 30.0
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")
        if self.max_workers < 1:
            raise ValueError("max_workers must be at least 1")

    def gap(self, rng: random.Random) -> float:
        """Seconds until the next fault."""
        return rng.uniform(self.min_gap, self.max_gap)


class FaultInjector:
    """Injects the faults of ``plan`` into ``pool`` and ``broker``, and supervises workers.

    ``note(message)`` receives one line per action, for the run's log.
    """

    def __init__(
        self,
        rng: random.Random,
        pool: WorkerPool,
        broker: Broker,
        plan: FaultPlan,
        note: Callable[[str], None],
    ) -> None:
        self.rng = rng
        self.pool = pool
        self.broker = broker
        self.plan = plan
        self.note = note
        self.faults: Counter[str] = Counter()
        self.supervision: Counter[str] = Counter()
        self.warnings: list[str] = []
        self._next_fault: float | None = None
        self._auto_start_at: float | None = None
        self._last_broker_restart = float("-inf")

    # --- supervision ----------------------------------------------------------------------

    def tend(self) -> None:
        """Resume paused workers that are due, restart crashed ones, keep one worker alive."""
        for slot in self.pool.slots:
            slot.resume_if_due()
        for slot in self.pool.crashed():
            code = slot.exit_codes[-1]
            self.supervision["crash"] += 1
            self.warnings.append(
                f"{slot.describe()} exited on its own with code {code}; see {slot.worker.log_path}"
            )
            self.note(f"{slot.describe()} exited on its own (code {code}): restarting it")
            self.pool.start(slot)
        now = time.monotonic()
        if self.pool.running():
            self._auto_start_at = None
        elif self._auto_start_at is None:
            self._auto_start_at = now + self.rng.uniform(1.0, 3.0)
        elif now >= self._auto_start_at:
            self._auto_start_at = None
            slot = self.idle_or_new()
            self.supervision["restart-last"] += 1
            self.note(f"no worker left: starting {slot.describe()}")
            self.pool.start(slot)

    # --- faults ---------------------------------------------------------------------------

    def maybe_inject(self) -> str | None:
        """Inject a fault if one is due; return its kind."""
        now = time.monotonic()
        if self._next_fault is None:
            self._next_fault = now + self.plan.gap(self.rng)
            return None
        if now < self._next_fault:
            return None
        self._next_fault = None
        choices = [kind for kind in self.plan.kinds if self._eligible(kind, now)]
        if not choices:
            return None
        kind = self.rng.choices(choices, [self.plan.weights.get(k, 1.0) for k in choices])[0]
        self.inject(kind)
        return kind

    def _eligible(self, kind: str, now: float) -> bool:
        running = self.pool.running()
        if kind in ("kill9", "term"):
            return bool(running)
        if kind == "pause":
            return any(s.paused_until is None for s in running)
        if kind == "start":
            return len(running) < self.plan.max_workers
        if kind == "wipe":
            return len(running) < self.plan.max_workers and any(
                s.has_state for s in self.pool.idle()
            )
        return (
            kind in self.broker.restart_kinds
            and now - self._last_broker_restart > self.plan.broker_quiet
        )

    def inject(self, kind: str) -> None:
        """Inject one fault of ``kind`` now."""
        self.faults[kind] += 1
        if kind.startswith("broker-"):
            self.note(f"{kind}: {self.broker.describe()}")
            self.broker.restart(kind)
            self._last_broker_restart = time.monotonic()
            self.note(f"{kind}: broker back")
            return
        if kind == "start":
            slot = self.idle_or_new()
            self.note(
                f"start {slot.describe()} ({'on its old state' if slot.has_state else 'new'})"
            )
            self.pool.start(slot)
            return
        if kind == "wipe":
            slot = self.rng.choice([s for s in self.pool.idle() if s.has_state])
            self.note(f"wipe {slot.describe()}: delete {slot.state_dir}, then start it")
            slot.wipe_state()
            self.pool.start(slot)
            return
        slot = self.rng.choice(self.pool.running())
        if kind == "kill9":
            self.note(f"kill9 {slot.describe()}")
            self.pool.stopped(slot)
            slot.kill9()
        elif kind == "term":
            self.note(f"term {slot.describe()}")
            self.pool.stopped(slot)
            self.stop(slot)
        elif kind == "pause":
            seconds = self.rng.uniform(*self.plan.pause_seconds)
            self.note(f"pause {slot.describe()} for {seconds:.1f}s")
            slot.pause(seconds)

    def stop(self, slot: Slot) -> int | None:
        """Stop ``slot`` gracefully; a non-zero exit or a timeout becomes a warning."""
        self.pool.stopped(slot)
        code = slot.term(self.plan.stop_timeout)
        if code is None:
            self.supervision["stop-timeout"] += 1
            self.warnings.append(
                f"{slot.describe()} did not stop within {self.plan.stop_timeout}s of SIGTERM "
                f"(aborted: thread stacks in {slot.worker.log_path})"
            )
        elif code != 0:
            self.supervision["stop-exit-nonzero"] += 1
            self.warnings.append(
                f"{slot.describe()} exited with code {code} after SIGTERM; "
                f"see {slot.worker.log_path}"
            )
        return code

    def restart_hung(self, why: str) -> None:
        """Abort every running worker (their stacks go to their logs) and start them again.

        For workers that are alive but do nothing: a supervisor with a liveness check
        would replace them too.
        """
        for slot in self.pool.running():
            self.supervision["hung"] += 1
            self.warnings.append(
                f"{slot.describe()} hung ({why}); thread stacks in {slot.worker.log_path}"
            )
            self.note(f"{slot.describe()} hung ({why}): abort (stacks to its log), restart")
            self.pool.stopped(slot)
            slot.abort()
            self.pool.start(slot)

    def idle_or_new(self) -> Slot:
        """A stopped slot (mostly one with state left behind) or, now and then, a new one."""
        idle = self.pool.idle()
        if idle and (len(self.pool.slots) > self.plan.max_workers or self.rng.random() < 0.7):
            return self.rng.choice(idle)
        return self.pool.add()
