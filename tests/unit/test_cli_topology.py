"""``streamflow topology``: every format, writing to a file, and readable mistakes."""

from __future__ import annotations

import doctest
import json

import pytest
from click.testing import CliRunner

import streamflow.cli.topology
from streamflow.cli.loader import load_app
from streamflow.cli.main import cli
from streamflow.dsl.graph import topology_graph

APP = "apps/user_spending.py"


def _run(*args: str):
    result = CliRunner().invoke(cli, ["topology", *args])
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


@pytest.fixture
def app_path(project_root) -> str:
    return str(project_root / APP)


def test_text_is_the_default_and_is_the_described_plan(app_path):
    result = _run(app_path)
    assert result.exit_code == 0
    assert result.output == load_app(app_path).topology().describe() + "\n"
    assert _run(app_path, "--format", "text").output == result.output


def test_json_is_the_graph(app_path):
    result = _run(app_path, "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data == topology_graph(load_app(app_path).topology()).to_json()
    kinds = {node["id"]: node["kind"] for node in data["nodes"]}
    assert kinds["topic:user-spending-orders-by-user-repartition"] == "repartition"
    assert kinds["table:user-spending-store"] == "table"


@pytest.mark.parametrize(
    ("fmt", "first_line", "expected"),
    [
        ("mermaid", "flowchart LR", '{{"user-spending-orders-by-user-repartition'),
        ("dot", 'digraph "user-spending" {', '-> "table:user-spending-store";'),
    ],
)
def test_mermaid_and_dot(app_path, fmt, first_line, expected):
    result = _run(app_path, "-f", fmt)
    assert result.exit_code == 0
    assert result.output.splitlines()[0] == first_line
    assert expected in result.output


def test_output_writes_the_file_and_prints_nothing(app_path, tmp_path):
    target = tmp_path / "plan.dot"
    result = _run(app_path, "--format", "dot", "--output", str(target))
    assert result.exit_code == 0
    assert result.output == ""
    graph = topology_graph(load_app(app_path).topology())
    assert target.read_text(encoding="utf-8") == graph.to_dot() + "\n"


def test_unwritable_output_is_explained(app_path, tmp_path):
    result = _run(app_path, "-o", str(tmp_path / "missing" / "plan.txt"))
    assert result.exit_code == 1
    assert f"cannot write {tmp_path / 'missing' / 'plan.txt'}" in result.output
    assert "No such file or directory" in result.output


def test_output_to_a_directory_is_refused(app_path, tmp_path):
    result = _run(app_path, "-o", str(tmp_path))
    assert result.exit_code == 2
    assert "is a directory" in result.output


def test_unknown_format_lists_the_choices(app_path):
    result = _run(app_path, "--format", "svg")
    assert result.exit_code == 2
    assert "'svg' is not one of 'text', 'mermaid', 'dot', 'json'" in result.output


def test_an_invalid_plan_is_explained(tmp_path):
    # The DSL names an aggregate step after its table, so only the builder itself can
    # declare one table twice.
    dup = tmp_path / "dup.py"
    dup.write_text(
        "import streamflow\n"
        "from streamflow.dsl.topology import AggregateNode\n"
        "app = streamflow.App('dup')\n"
        "app.stream('a').group_by_key(name='g1').count(name='n')\n"
        "grouped = app.stream('b').group_by_key(name='g2')\n"
        "node = AggregateNode(store='n', initializer=int, aggregator=lambda k, v, a: a)\n"
        "app.builder.add(node, parent=app.builder.sources[-1], name='n-again')\n"
    )
    result = _run(str(dup))
    assert result.exit_code == 1
    assert f"{dup}: table name(s) used twice: n" in result.output


def test_missing_app_is_explained(tmp_path):
    result = _run(str(tmp_path / "nowhere.py"), "--format", "json")
    assert result.exit_code == 1
    assert "does not exist" in result.output


def test_docstring_examples():
    result = doctest.testmod(streamflow.cli.topology, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
