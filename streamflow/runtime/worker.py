"""Running an app as a worker process.

Example:
    >>> # from streamflow.runtime.worker import run_worker
    >>> # run_worker(app, WorkerSettings.resolve())   # blocks until Ctrl-C / SIGTERM
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import NoReturn

import faust
from mode import Service

from streamflow.app import App
from streamflow.runtime.admin import ensure_topics
from streamflow.runtime.engine import Runtime
from streamflow.runtime.settings import WorkerSettings
from streamflow.web.server import WebServer

__all__ = [
    "CRASHED",
    "STOPPED_BY_POLICY",
    "STOP_FORCED",
    "CrashWatch",
    "exit_process",
    "free_port",
    "run_worker",
]

#: Exit code of a worker stopped by a record failing under the ``Stop`` error policy.
STOPPED_BY_POLICY = 3
#: Exit code of a worker whose runtime crashed (e.g. fenced by another worker): restart it.
CRASHED = 4
#: Exit code of a worker that did not stop gracefully in time and was exited forcibly.
STOP_FORCED = 5
#: Seconds a stopping worker may take before it exits anyway (``STREAMFLOW_STOP_TIMEOUT``);
#: below the 30 s most supervisors wait before they SIGKILL.
DEFAULT_STOP_TIMEOUT = 25.0
#: Seconds threads left running after a stop get to end before the process exits anyway.
THREAD_GRACE = 5.0

log = logging.getLogger(__name__)


def free_port(start: int, host: str = "127.0.0.1", attempts: int = 100) -> int:
    """The first port from ``start`` on that nothing listens on.

    >>> free_port(0) >= 0
    True
    """
    for port in range(start, start + attempts) if start else [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError(f"no free port in {start}..{start + attempts - 1}")


#: Seconds a worker may hold partitions with its table recovery not started before it
#: exits to be restarted (``STREAMFLOW_RECOVERY_STALL_TIMEOUT``).
DEFAULT_RECOVERY_STALL_TIMEOUT = 60.0
RECOVERY_CHECK_INTERVAL = 5.0


class CrashWatch(Service):
    """Stops the worker process when the faust app crashes, instead of idling forever.

    faust marks the app crashed (and stops processing) on errors such as a fenced
    producer, but the process stays up (and so does one whose table recovery never
    starts after a rebalance); a worker that exits can be restarted by whatever
    supervises it, and recovers its tables from their changelogs.

    >>> # faust.Worker(runtime.faust, CrashWatch(runtime)).execute_from_commandline()
    """

    def __init__(self, runtime: Runtime, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.crash_reason: BaseException | None = None
        self.recovery_stall_timeout = float(
            os.environ.get("STREAMFLOW_RECOVERY_STALL_TIMEOUT") or DEFAULT_RECOVERY_STALL_TIMEOUT
        )

    @Service.task
    async def _watch(self) -> None:
        fapp = self.runtime.faust
        await fapp._crashed.wait()
        self._crash(fapp.crash_reason)

    @Service.task
    async def _watch_recovery(self) -> None:
        # faust was seen to lose its recovery loop (its task cancelled) when a worker joined
        # with no partitions: every later rebalance then waits for a recovery that never
        # runs, and the worker holds partitions without processing them. A restart heals it.
        stalled_for = 0.0
        while not self.should_stop:
            await self.sleep(RECOVERY_CHECK_INTERVAL)
            stalled_for = (
                stalled_for + RECOVERY_CHECK_INTERVAL if self.runtime.recovery_stalled() else 0.0
            )
            if stalled_for >= self.recovery_stall_timeout:
                self._crash(
                    RuntimeError(
                        f"table recovery did not pick up the rebalance within {stalled_for:.0f}s "
                        "(set STREAMFLOW_RECOVERY_STALL_TIMEOUT to wait longer)"
                    )
                )
                return

    def _crash(self, reason: BaseException | None) -> None:
        self.crash_reason = reason
        log.critical(
            "The worker's runtime crashed (%r); stopping the process so it can be restarted",
            reason,
        )
        os.kill(os.getpid(), signal.SIGTERM)


class _Worker(faust.Worker):
    """faust's worker, with a deadline on its graceful stop.

    A stop can hang inside faust (seen stopping the consumer thread while partitions were
    being recovered); past ``stop_timeout`` seconds the process exits anyway. Nothing is
    lost: uncommitted work is aborted and redone by the partitions' next owner.
    """

    def __init__(self, *services, crash_watch: CrashWatch, stop_timeout: float, **kwargs) -> None:
        super().__init__(*services, crash_watch, **kwargs)
        self.crash_watch = crash_watch
        self.stop_timeout = stop_timeout
        self._deadline: threading.Timer | None = None

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if self._deadline is None:
            # A thread: the event loop may be the thing that is stuck.
            self._deadline = threading.Timer(self.stop_timeout, self._exit_now)
            self._deadline.daemon = True
            self._deadline.start()
        super()._schedule_shutdown(signal)

    def _exit_now(self) -> None:
        log.critical("The worker did not stop within %.0fs: exiting", self.stop_timeout)
        reason = self.crash_watch.crash_reason
        if reason is not None:
            print(crash_message(reason), file=sys.stderr, flush=True)
            os._exit(CRASHED)
        print(
            f"streamflow worker stopped forcibly after {self.stop_timeout:.0f}s of graceful "
            "stop; what it had not committed is processed again by the next owner",
            file=sys.stderr,
            flush=True,
        )
        os._exit(STOP_FORCED)


def crash_message(reason: BaseException | None) -> str:
    """What a crashed worker tells its operator on the way out.

    >>> crash_message(RuntimeError("fenced")).startswith("streamflow worker stopped after a crash")
    True
    """
    return (
        f"streamflow worker stopped after a crash: {reason!r}; "
        "start it again (its tables are recovered from their changelogs)"
    )


def run_worker(app: App, settings: WorkerSettings) -> int:
    """Run ``app`` until Ctrl-C or SIGTERM, then shut down gracefully (commit, flush, close).

    Returns the process exit code: 0 after a requested stop, 3 when a record failed under
    the ``Stop`` error policy (the message says which and what to do), 4 when the runtime
    crashed (fenced by another worker, lost its transactions): restart it. A stop that
    takes longer than ``STREAMFLOW_STOP_TIMEOUT`` seconds (25) ends the process with 5.
    """
    runtime = Runtime(app, settings)
    asyncio.run(ensure_topics(settings.bootstrap, runtime.required_topics()))
    crash_watch = CrashWatch(runtime)
    worker = _Worker(
        runtime.faust,
        *runtime.services,
        WebServer(runtime),
        crash_watch=crash_watch,
        stop_timeout=float(os.environ.get("STREAMFLOW_STOP_TIMEOUT") or DEFAULT_STOP_TIMEOUT),
        loglevel=settings.loglevel,
        quiet=True,
        redirect_stdouts=False,
    )
    log.info(
        "streamflow worker for %s on %s (%s), web http://%s:%d",
        app.id,
        settings.broker,
        runtime.guarantee,
        settings.web_host,
        settings.web_port,
    )
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = int(exc.code or 0)
    else:
        code = 0
    if runtime.fatal_error is not None:
        print(f"streamflow worker stopped: {runtime.fatal_error}", file=sys.stderr)
        return STOPPED_BY_POLICY
    if crash_watch.crash_reason is not None:
        print(crash_message(crash_watch.crash_reason), file=sys.stderr)
        return CRASHED
    return code


def exit_process(code: int) -> NoReturn:
    """Exit with ``code`` once the worker has stopped, not waiting on stuck threads.

    faust's consumer thread is not a daemon, and its stop was seen to hang; the worker's
    state is closed and committed by now, so a thread still running after
    :data:`THREAD_GRACE` seconds is left behind rather than keeping the process up.

    >>> # exit_process(run_worker(app, settings))
    """
    deadline = time.monotonic() + THREAD_GRACE
    lingering = [
        thread
        for thread in threading.enumerate()
        if thread is not threading.current_thread() and not thread.daemon
    ]
    for thread in lingering:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in lingering if thread.is_alive()]
    if not stuck:
        sys.exit(code)
    log.warning("Threads still running after the worker stopped (%s): exiting", ", ".join(stuck))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
