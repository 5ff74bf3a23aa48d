"""``streamflow topology APP``: print or save an app's processing plan.

Formats: ``text`` (the indented plan of ``Topology.describe()``), ``mermaid`` (a flowchart),
``dot`` (Graphviz) and ``json`` (what a worker serves at ``GET /topology``).

Example:
    $ streamflow topology apps/user_spending.py
    $ streamflow topology apps/user_spending.py --format dot | dot -Tsvg > plan.svg
    $ streamflow topology apps/user_spending.py --format mermaid --output plan.mmd
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from streamflow.cli.loader import load_app
from streamflow.dsl.graph import topology_graph
from streamflow.dsl.topology import Topology

__all__ = ["FORMATS", "render", "topology"]

FORMATS: dict[str, Callable[[Topology], str]] = {
    "text": lambda plan: plan.describe(),
    "mermaid": lambda plan: topology_graph(plan).to_mermaid(),
    "dot": lambda plan: topology_graph(plan).to_dot(),
    "json": lambda plan: json.dumps(topology_graph(plan).to_json(), indent=2),
}


def render(plan: Topology, fmt: str) -> str:
    """``plan`` in the format ``fmt`` (a key of :data:`FORMATS`).

    >>> from streamflow import App
    >>> app = App("demo")
    >>> app.stream(app.topic("a")).to(app.topic("b"))
    >>> print(render(app.topology(), "dot").splitlines()[-2])
      "topic:a" -> "topic:b";
    """
    return FORMATS[fmt](plan)


@click.command()
@click.argument("app_ref", metavar="APP")
@click.option(
    "--format",
    "-f",
    "fmt",
    type=click.Choice(list(FORMATS)),
    default="text",
    show_default=True,
    help="text: indented plan; mermaid: flowchart; dot: Graphviz; json: nodes and edges.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
def topology(app_ref: str, fmt: str, output: Path | None) -> None:
    """Print the sub-topologies, operators, tables and topics of APP."""
    app = load_app(app_ref)
    try:
        plan = app.topology()
    except ValueError as exc:
        raise click.ClickException(f"{app_ref}: {exc}") from None
    text = render(plan, fmt)
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
