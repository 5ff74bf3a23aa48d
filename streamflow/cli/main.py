"""The ``streamflow`` command.

Example:
    $ streamflow --help
"""

from __future__ import annotations

import click

from streamflow.cli.consume import consume
from streamflow.cli.dlq import dlq
from streamflow.cli.produce import produce
from streamflow.cli.schemas import schemas
from streamflow.cli.table import table
from streamflow.cli.topology import topology
from streamflow.cli.worker import worker

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="streamflow")
def cli() -> None:
    """streamflow: declarative stream processing with RocksDB tables and exactly-once."""


cli.add_command(worker)
cli.add_command(produce)
cli.add_command(consume)
cli.add_command(topology)
cli.add_command(schemas)
cli.add_command(dlq)
cli.add_command(table)

try:
    from streamflow.broker.cli import broker
except ImportError:  # the embedded broker is optional at import time
    pass
else:
    cli.add_command(broker)


def main() -> None:
    """Entry point of the ``streamflow`` console script."""
    cli(prog_name="streamflow")
