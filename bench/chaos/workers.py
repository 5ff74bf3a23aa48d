"""The worker processes of a chaos run: fixed slots that are started, killed and restarted.

A slot is one ``streamflow worker`` with a fixed web port, hence a fixed local state folder
(``<state>/<app-id>/worker-<port>``): restarting a slot restarts the worker on whatever
state its predecessor left — cleanly committed, dirty after a kill, or wiped.

Example:
    >>> from pathlib import Path
    >>> from bench.chaos.profiles import PROFILES
    >>> run = ChaosRun("127.0.0.1:9192", Path("/tmp/chaos"), profile=PROFILES["order_pipeline"],
    ...                run_id="ab12cd34")
    >>> run.app_id, run.topic_name("region_totals")
    ('chaos-op-ab12cd34', 'region_totals-ab12cd34')
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.profiles import AppProfile
from streamflow.cli.loader import load_app
from streamflow.runtime.worker import free_port
from tests.integration.support import AppRun, WorkerProcess

__all__ = ["ChaosRun", "Slot", "WorkerPool"]


@dataclass
class ChaosRun(AppRun):
    """One isolated run of an app under test: its own app id, topic names and state folder."""

    profile: AppProfile | None = None
    # Another checkout whose streamflow package the workers run (None: this repository's).
    source: Path | None = None

    @property
    def app_id(self) -> str:
        short = "".join(word[0] for word in self.profile.name.split("_"))
        return f"chaos-{short}-{self.run_id}"

    def topic_name(self, declared: str) -> str:
        """The run's name for the topic the app declares as ``declared``."""
        return f"{declared}-{self.run_id}"

    def topic_env(self) -> dict[str, str]:
        """``STREAMFLOW_TOPIC_<NAME>`` renames of the app's input, reference and output topics."""
        names = (
            self.profile.input_topic,
            *self.profile.extra_input_topics,
            *self.profile.reference_topics,
            *self.profile.output_topics,
        )
        return {_topic_variable(name): self.topic_name(name) for name in names}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            STREAMFLOW_APP_ID=self.app_id,
            STREAMFLOW_STATE_DIR=str(self.state_dir),
            STREAMFLOW_BROKER=self.broker,
            **self.topic_env(),
            **self.profile.app_env,
            # Stacks of all threads on SIGABRT (see Slot.abort), for workers that hang.
            PYTHONFAULTHANDLER="1",
        )
        if self.source is not None:
            # The workers import streamflow from ``source``: no current directory on sys.path.
            env.update(PYTHONSAFEPATH="1", PYTHONPATH=str(self.source))
        return env

    def load_app(self):
        """The app as its workers see it (this run's id and topic names)."""
        overrides = {"STREAMFLOW_APP_ID": self.app_id, **self.topic_env(), **self.profile.app_env}
        with _environment(overrides):
            return load_app(self.app_path)


@dataclass
class Slot:
    """One worker position: a fixed port and state folder, a process when running."""

    index: int
    worker: WorkerProcess
    starts: int = 0
    paused_until: float | None = None
    exit_codes: list[int] = field(default_factory=list)

    @property
    def running(self) -> bool:
        """True while its process is alive (paused included)."""
        process = self.worker.process
        return process is not None and process.poll() is None

    @property
    def state_dir(self) -> Path:
        """The worker's local state: ``<state>/<app-id>/worker-<port>``."""
        return self.worker.table_dir.parents[1]

    @property
    def has_state(self) -> bool:
        return self.state_dir.exists()

    def start(self) -> None:
        self.worker.start()
        self.starts += 1

    def kill9(self) -> None:
        """SIGKILL: no commit, no flush, open transactions left to be fenced or to time out."""
        self.resume()
        self.worker.kill()
        self.exit_codes.append(self.worker.process.returncode)

    def term(self, timeout: float) -> int | None:
        """SIGTERM and wait: the exit code, or ``None`` if it hung and was aborted (see below)."""
        self.resume()
        process = self.worker.process
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.abort()
            return None
        self.exit_codes.append(code)
        return code

    def abort(self, grace: float = 10.0) -> None:
        """SIGABRT: the worker writes every thread's stack to its log, then dies (SIGKILL after
        ``grace`` seconds). For workers that hang: the stacks are the evidence."""
        self.resume()
        process = self.worker.process
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGABRT)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.exit_codes.append(process.returncode)

    def pause(self, seconds: float) -> None:
        """SIGSTOP now, SIGCONT once ``seconds`` have passed (see :meth:`resume_if_due`)."""
        self.worker.process.send_signal(signal.SIGSTOP)
        self.paused_until = time.monotonic() + seconds

    def resume(self) -> None:
        if self.paused_until is not None and self.running:
            self.worker.process.send_signal(signal.SIGCONT)
        self.paused_until = None

    def resume_if_due(self) -> None:
        if self.paused_until is not None and time.monotonic() >= self.paused_until:
            self.resume()

    def wipe_state(self) -> None:
        """Delete the stopped worker's local state (tables come back from their changelogs)."""
        if self.running:
            raise RuntimeError(f"slot {self.index} is running: stop it before wiping its state")
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def describe(self) -> str:
        return f"worker {self.index} (port {self.worker.web_port})"


class WorkerPool:
    """The slots of a run; slots are created on demand and kept for the whole run.

    >>> # pool = WorkerPool(run); pool.add().start(); pool.running()
    """

    def __init__(self, run: ChaosRun) -> None:
        self.run = run
        self.slots: list[Slot] = []
        self._believed_running: set[int] = set()

    def add(self) -> Slot:
        """A new slot on a free port, with no state yet."""
        slot = Slot(len(self.slots), self.run.worker(free_port(0)))
        self.slots.append(slot)
        return slot

    def start(self, slot: Slot) -> None:
        slot.start()
        self._believed_running.add(slot.index)

    def stopped(self, slot: Slot) -> None:
        """Record that the harness stopped ``slot`` on purpose."""
        self._believed_running.discard(slot.index)

    def running(self) -> list[Slot]:
        return [s for s in self.slots if s.running]

    def idle(self) -> list[Slot]:
        return [s for s in self.slots if not s.running]

    def crashed(self) -> list[Slot]:
        """Slots whose process exited although nobody stopped it (forgotten once returned)."""
        gone = [s for s in self.slots if s.index in self._believed_running and not s.running]
        for slot in gone:
            self._believed_running.discard(slot.index)
            slot.exit_codes.append(slot.worker.process.returncode)
        return gone

    def kill_all(self) -> None:
        """SIGKILL every live worker (cleanup after an error or Ctrl-C)."""
        for slot in self.slots:
            if slot.running:
                with contextlib.suppress(ProcessLookupError, subprocess.SubprocessError):
                    slot.resume()
                    slot.worker.kill()
            self._believed_running.discard(slot.index)


def _topic_variable(name: str) -> str:
    """The environment variable that renames topic ``name`` (see ``topic_name_override``).

    >>> _topic_variable("order_events")
    'STREAMFLOW_TOPIC_ORDER_EVENTS'
    """
    variable = f"STREAMFLOW_TOPIC_{name.upper()}"
    if not variable.isidentifier():
        raise ValueError(f"topic name {name!r} needs a plain environment override")
    return variable


@contextlib.contextmanager
def _environment(overrides: dict[str, str]):
    """Apply ``overrides`` to ``os.environ`` for the block, restoring it afterwards."""
    saved = dict(os.environ)
    os.environ.update(overrides)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
