"""Running an app as a worker process.

Example:
    >>> # from streamflow.runtime.worker import run_worker
    >>> # run_worker(app, WorkerSettings.resolve())   # blocks until Ctrl-C / SIGTERM
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys

import faust

from streamflow.app import App
from streamflow.runtime.admin import ensure_topics
from streamflow.runtime.engine import Runtime
from streamflow.runtime.settings import WorkerSettings
from streamflow.web.server import WebServer

__all__ = ["STOPPED_BY_POLICY", "free_port", "run_worker"]

#: Exit code of a worker stopped by a record failing under the ``Stop`` error policy.
STOPPED_BY_POLICY = 3

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


def run_worker(app: App, settings: WorkerSettings) -> int:
    """Run ``app`` until Ctrl-C or SIGTERM, then shut down gracefully (commit, flush, close).

    Returns the process exit code: 0 after a requested stop, 3 when a record failed under
    the ``Stop`` error policy (the message says which and what to do).
    """
    runtime = Runtime(app, settings)
    asyncio.run(ensure_topics(settings.bootstrap, runtime.required_topics()))
    worker = faust.Worker(
        runtime.faust,
        WebServer(runtime),
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
    return code
