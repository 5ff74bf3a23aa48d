"""Command line: ``broker`` (foreground), ``broker stop``, ``broker status``.

The default data directory is ``$STREAMFLOW_STATE_DIR/broker`` if that variable is set,
else ``./state/broker``; the default address is ``127.0.0.1:9192``.

Example:
    $ python -m streamflow.broker --listen 127.0.0.1:9192 --data ./state/broker
    $ python -m streamflow.broker status
    $ python -m streamflow.broker stop
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from .config import DEFAULT_PORT, BrokerConfig
from .local import BROKER_FILE, probe, read_broker_file, stop_local_broker
from .server import Broker, BrokerStartError


def default_data_dir() -> Path:
    """``$STREAMFLOW_STATE_DIR/broker`` or ``./state/broker``.

    Example:
        >>> isinstance(default_data_dir(), Path)
        True
    """
    base = os.environ.get("STREAMFLOW_STATE_DIR")
    return Path(base) / "broker" if base else Path("state") / "broker"


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (port 0 picks a free port).

    Example:
        >>> parse_listen("127.0.0.1:9192")
        ('127.0.0.1', 9192)
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def _coerce(name: str, raw: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(BrokerConfig)}
    if name not in fields or name in ("data_dir", "host", "port", "extra"):
        raise click.BadParameter(f"unknown broker option {name!r}")
    default = getattr(BrokerConfig(), name)
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    return raw


@click.group(name="broker", invoke_without_command=True)
@click.option("--listen", default=f"127.0.0.1:{DEFAULT_PORT}", show_default=True, help="HOST:PORT")
@click.option(
    "--data", "data", type=click.Path(path_type=Path), default=None, help="data directory"
)
@click.option(
    "--option",
    "-o",
    "options",
    multiple=True,
    help="broker option NAME=VALUE (e.g. num_partitions=3, fsync_policy=interval)",
)
@click.option("--log-level", default="INFO", show_default=True)
@click.pass_context
def broker(
    ctx: click.Context, listen: str, data: Path | None, options: tuple[str, ...], log_level: str
) -> None:
    """Run the streamflow broker in the foreground (Ctrl-C / SIGTERM stop it gracefully)."""
    ctx.ensure_object(dict)
    ctx.obj["data"] = data or default_data_dir()
    if ctx.invoked_subcommand is not None:
        return
    host, port = parse_listen(listen)
    opts: dict[str, Any] = {}
    for item in options:
        name, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}")
        opts[name.strip()] = _coerce(name.strip(), raw.strip())
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_run_foreground(host, port, ctx.obj["data"], opts))
    except BrokerStartError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except ValueError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)


async def _run_foreground(host: str, port: int, data: Path, opts: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    b = Broker(host=host, port=port, data_dir=data, **opts)
    await b.start()
    info_path = data / BROKER_FILE
    tmp = info_path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"host": b.config.advertised, "port": b.port, "pid": os.getpid()}))
    os.replace(tmp, info_path)
    try:
        await stop.wait()
    finally:
        await b.stop()
        info = read_broker_file(data)
        if info and info.get("pid") == os.getpid():
            info_path.unlink(missing_ok=True)


@broker.command()
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the background broker recorded in the data directory."""
    data: Path = ctx.obj["data"]
    if stop_local_broker(data):
        click.echo("broker stopped")
    else:
        click.echo("no broker running")


@broker.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Tell whether a broker is running for the data directory."""
    data: Path = ctx.obj["data"]
    info = read_broker_file(data)
    if info and probe(info["host"], int(info["port"])):
        click.echo(f"running (pid {info['pid']}) on {info['host']}:{info['port']}, data {data}")
    else:
        click.echo(f"not running (data {data})")
        sys.exit(3)


def main() -> None:
    """Entry point for ``python -m streamflow.broker``.

    Example:
        $ python -m streamflow.broker --listen 127.0.0.1:9192 --data state/broker
    """
    broker(prog_name="python -m streamflow.broker")
