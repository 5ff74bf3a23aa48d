"""``streamflow topology APP``: print an app's processing plan.

Example:
    $ streamflow topology apps/user_spending.py
"""

from __future__ import annotations

import click

from streamflow.cli.loader import load_app

__all__ = ["topology"]


@click.command()
@click.argument("app_ref", metavar="APP")
def topology(app_ref: str) -> None:
    """Print the sub-topologies, operators, tables and topics of APP."""
    click.echo(load_app(app_ref).topology().describe())
