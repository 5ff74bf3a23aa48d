"""``streamflow table get|list``: query a running app's tables from the shell.

Any worker of the app answers (it forwards to the worker holding the key); the default
is the local worker (``STREAMFLOW_URL``, else port ``STREAMFLOW_WEB_PORT`` or 6066).

Example:
    $ streamflow table get apps/user_spending.py user-spending-store user-007
    1234.50
    $ streamflow table list apps/user_spending.py user-spending-store --prefix user-00
    user-000	904.64
    user-001	2798.16
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import islice
from typing import Any

import click
import orjson

from streamflow.cli.loader import load_app
from streamflow.client import Client, ClientError, KeyNotFound, default_url

__all__ = ["table"]

# How long a command waits out a rebalance (503) before giving up.
CLI_RETRY_SECONDS = 10.0


def _url_option(fn):
    return click.option(
        "--url",
        help="URL of any worker of the app (env STREAMFLOW_URL; default "
        "http://127.0.0.1:$STREAMFLOW_WEB_PORT, port 6066).",
    )(fn)


def _check_table(app_ref: str, name: str) -> None:
    stores = [node.store for node in load_app(app_ref).topology().stores]
    if name not in stores:
        known = ", ".join(stores) or "none"
        raise click.UsageError(f"{app_ref} has no table {name!r} (tables: {known})")


def _show(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


@contextmanager
def _client_errors(url: str, app_ref: str) -> Iterator[None]:
    try:
        yield
    except KeyNotFound as exc:
        raise click.ClickException(str(exc)) from None
    except ClientError as exc:
        hint = ""
        if exc.status in (0, 503):
            hint = (
                f"\nIs a worker of the app running and ready? Start one with "
                f"`streamflow worker {app_ref}`, or point --url at one."
            )
        raise click.ClickException(f"{exc} (worker {url}){hint}") from None


@click.group()
def table() -> None:
    """Query the tables of a running app."""


@table.command("get")
@click.argument("app_ref", metavar="APP")
@click.argument("name", metavar="TABLE")
@click.argument("key")
@_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the whole answer as JSON.")
def get(app_ref: str, name: str, key: str, url: str | None, as_json: bool) -> None:
    """Print the value of KEY in TABLE (non-text keys as JSON, e.g. 42)."""
    _check_table(app_ref, name)
    client = Client(url or default_url(), retry_for=CLI_RETRY_SECONDS)
    with _client_errors(client.url, app_ref):
        answer = client.lookup(name, key)
    click.echo(orjson.dumps(answer).decode() if as_json else _show(answer["value"]))


@table.command("list")
@click.argument("app_ref", metavar="APP")
@click.argument("name", metavar="TABLE")
@click.option("--prefix", default="", help="Only keys whose text starts with this.")
@click.option("--limit", type=int, default=None, help="Print at most this many entries.")
@_url_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_entries(
    app_ref: str, name: str, prefix: str, limit: int | None, url: str | None, as_json: bool
) -> None:
    """Print the entries of TABLE in key order, one per line (key TAB value)."""
    _check_table(app_ref, name)
    client = Client(url or default_url(), retry_for=CLI_RETRY_SECONDS)
    with _client_errors(client.url, app_ref):
        for key, value in islice(client.items(name, prefix=prefix), limit):
            if as_json:
                click.echo(orjson.dumps({"key": key, "value": value}).decode())
            else:
                click.echo(f"{_show(key)}\t{_show(value)}")
