"""``streamflow worker APP``: run an app as a worker process.

Example:
    $ streamflow worker apps/user_spending.py --web-port 6067
"""

from __future__ import annotations

import os

import click

from streamflow.cli.common import broker_errors, broker_option, resolve_broker
from streamflow.cli.loader import load_app
from streamflow.runtime.settings import DEFAULT_WEB_PORT, WorkerSettings
from streamflow.runtime.worker import exit_process, free_port, run_worker

__all__ = ["worker"]


@click.command()
@click.argument("app_ref", metavar="APP")
@broker_option
@click.option(
    "--web-port",
    type=int,
    help=f"Port of the worker's HTTP server (env STREAMFLOW_WEB_PORT; default {DEFAULT_WEB_PORT}, "
    "or the next free one).",
)
@click.option(
    "--loglevel",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def worker(app_ref: str, broker: str | None, web_port: int | None, loglevel: str) -> None:
    """Run APP (a file like apps/user_spending.py or a module like apps.user_spending:app).

    Start it several times to share the partitions among processes.
    """
    app = load_app(app_ref)
    explicit_port = web_port or os.environ.get("STREAMFLOW_WEB_PORT")
    port = int(explicit_port) if explicit_port else free_port(DEFAULT_WEB_PORT)
    settings = WorkerSettings.resolve(
        broker=resolve_broker(broker, app), web_port=port, loglevel=loglevel
    )
    with broker_errors(settings.bootstrap):
        code = run_worker(app, settings)
    exit_process(code)
