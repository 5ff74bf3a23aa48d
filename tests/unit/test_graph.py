"""The topology graph: topic, operator and table nodes, and its JSON, Mermaid and DOT forms.

Mermaid and DOT output are read back with small parsers of their grammar (below), so a
malformed line, an unbalanced block or an edge to an undeclared node fails the tests.
"""

from __future__ import annotations

import doctest
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import streamflow.dsl.graph
from streamflow import App
from streamflow.cli.loader import load_app
from streamflow.dsl.graph import NODE_KINDS, TopologyGraph, topology_graph

ROOT = Path(__file__).resolve().parents[2]
REPARTITION = "topic:user-spending-orders-by-user-repartition"


@pytest.fixture(scope="module")
def spending() -> TopologyGraph:
    return topology_graph(load_app(str(ROOT / "apps" / "user_spending.py")).topology())


def _multi_step_app() -> App:
    """Clicks filtered into page views, read back, counted per page; an audit trail too."""
    app = App("clicks")
    clicks = app.topic("clicks")
    page_views = app.topic("page_views")
    (
        app.stream(clicks)
        .filter(lambda k, v: v["kind"] == "view")
        .map_values(lambda v: {"page": v["page"]})
        .to(page_views)
    )
    counts = (
        app.stream(page_views)
        .group_by(lambda k, v: v["page"], name="by-page")
        .count(name="page-counts")
    )
    counts.to_stream().map_values(str).to(app.topic("page_counts", value="str"))
    app.stream(clicks, name="raw-clicks").peek(lambda k, v: None).to("audit")
    app.stream("audit").group_by_key(name="audit-by-key").reduce(
        lambda old, new: new, name="latest-audit"
    )
    return app


@pytest.fixture(scope="module")
def multi() -> TopologyGraph:
    return topology_graph(_multi_step_app().topology())


def _predecessors(graph: TopologyGraph, node_id: str) -> list[str]:
    return [e.source for e in graph.edges if e.target == node_id]


def _successors(graph: TopologyGraph, node_id: str) -> list[str]:
    return [e.target for e in graph.edges if e.source == node_id]


def _check_well_formed(graph: TopologyGraph) -> None:
    ids = [n.id for n in graph.nodes]
    assert len(ids) == len(set(ids)), "node ids are unique"
    assert {n.kind for n in graph.nodes} <= set(NODE_KINDS)
    for edge in graph.edges:
        assert edge.source in ids and edge.target in ids, edge
    assert len(graph.edges) == len({(e.source, e.target) for e in graph.edges})


def test_user_spending_nodes(spending):
    _check_well_formed(spending)
    kinds = {n.id: n.kind for n in spending.nodes}
    assert kinds == {
        "topic:order_events": "source",
        "step:filter-2": "operator",
        "step:select_key-3": "operator",
        REPARTITION: "repartition",
        "step:user-spending-store": "operator",
        "table:user-spending-store": "table",
        "step:map_values-7": "operator",
        "topic:user_spending_summary": "sink",
    }
    assert spending.app == "user-spending"
    assert spending.node("topic:order_events").topic == "order_events"
    assert spending.node("topic:order_events").subtopology == 0
    assert spending.node("topic:user_spending_summary").subtopology == 1
    assert spending.node("step:user-spending-store").operator == "aggregate"


def test_repartition_topic_joins_the_two_subtopologies(spending):
    node = spending.node(REPARTITION)
    assert node.subtopology is None
    # The internal sink of sub-topology 0 and the internal source of 1 are this one node.
    assert node.steps == ("sink-4", "orders-by-user-source")
    assert _predecessors(spending, REPARTITION) == ["step:select_key-3"]
    assert _successors(spending, REPARTITION) == ["step:user-spending-store"]
    assert spending.node("step:select_key-3").subtopology == 0
    assert spending.node("step:user-spending-store").subtopology == 1


def test_table_hangs_off_its_aggregate(spending):
    table = spending.node("table:user-spending-store")
    assert (table.kind, table.table, table.subtopology) == ("table", "user-spending-store", 1)
    assert _predecessors(spending, table.id) == ["step:user-spending-store"]
    assert _successors(spending, table.id) == []


def test_every_path_runs_from_the_source_topic_to_the_sink_topic(spending):
    path, node_id = [], "topic:order_events"
    while node_id:
        path.append(node_id)
        following = [s for s in _successors(spending, node_id) if not s.startswith("table:")]
        node_id = following[0] if following else None
    assert path == [
        "topic:order_events",
        "step:filter-2",
        "step:select_key-3",
        REPARTITION,
        "step:user-spending-store",
        "step:map_values-7",
        "topic:user_spending_summary",
    ]


def test_a_topic_read_twice_is_one_node(multi):
    _check_well_formed(multi)
    clicks = multi.node("topic:clicks")
    assert clicks.kind == "source"
    assert clicks.steps == ("source-1",)  # read once: the second stream shares the source
    assert clicks.subtopology == 0
    assert sorted(_successors(multi, "topic:clicks")) == ["step:filter-2", "step:peek-12"]


def test_a_user_topic_written_then_read_joins_its_writer_and_reader(multi):
    page_views = multi.node("topic:page_views")
    assert page_views.kind == "source"
    assert page_views.subtopology is None
    assert _predecessors(multi, page_views.id) == ["step:map_values-3"]
    assert _successors(multi, page_views.id) == ["step:select_key-6"]
    assert multi.node("topic:page_counts").kind == "sink"


def test_each_group_by_has_its_repartition_topic_and_table(multi):
    repartitions = sorted(n.id for n in multi.nodes if n.kind == "repartition")
    assert repartitions == [
        "topic:clicks-audit-by-key-repartition",
        "topic:clicks-by-page-repartition",
    ]
    assert _predecessors(multi, "topic:clicks-by-page-repartition") == ["step:select_key-6"]
    assert _successors(multi, "topic:clicks-by-page-repartition") == ["step:page-counts"]
    # group_by_key straight after a source: topic to topic.
    assert _predecessors(multi, "topic:clicks-audit-by-key-repartition") == ["topic:audit"]
    assert _successors(multi, "topic:clicks-audit-by-key-repartition") == ["step:latest-audit"]
    tables = {n.id: _predecessors(multi, n.id) for n in multi.nodes if n.kind == "table"}
    assert tables == {
        "table:page-counts": ["step:page-counts"],
        "table:latest-audit": ["step:latest-audit"],
    }
    assert multi.node("step:page-counts").subtopology == multi.node("table:page-counts").subtopology


def test_json_is_plain_and_complete(spending):
    data = spending.to_json()
    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"app", "nodes", "edges"}
    assert [n["id"] for n in data["nodes"]] == [n.id for n in spending.nodes]
    by_id = {n["id"]: n for n in data["nodes"]}
    assert by_id[REPARTITION] == {
        "id": REPARTITION,
        "kind": "repartition",
        "label": "user-spending-orders-by-user-repartition",
        "subtopology": None,
        "topic": "user-spending-orders-by-user-repartition",
        "table": None,
        "operator": None,
        "steps": ["sink-4", "orders-by-user-source"],
    }
    assert {"from": "step:user-spending-store", "to": "table:user-spending-store"} in data["edges"]


# --- Mermaid: a line-by-line reading of the flowchart subset the graph writes ------------

_MERMAID_SHAPES = {"([": "])", "{{": "}}", "[(": ")]", "[": "]"}
_MERMAID_NODE = re.compile(r'^(n\d+)(\(\[|\{\{|\[\(|\[)"([^"]*)"(\]\)|\}\}|\)\]|\])$')
_MERMAID_SHAPE_OF_KIND = {
    "source": "([",
    "sink": "([",
    "repartition": "{{",
    "table": "[(",
    "operator": "[",
}


@dataclass
class Flowchart:
    labels: dict[str, str] = field(default_factory=dict)
    shapes: dict[str, str] = field(default_factory=dict)
    subgraph_of: dict[str, str | None] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    class_defs: set[str] = field(default_factory=set)
    class_of: dict[str, str] = field(default_factory=dict)


def parse_mermaid(text: str) -> Flowchart:
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    chart, open_subgraph = Flowchart(), None
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if match := re.fullmatch(r'subgraph (\w+) \["([^"]+)"\]', line):
            assert open_subgraph is None, f"line {number}: nested subgraph"
            open_subgraph = match.group(1)
        elif line == "end":
            assert open_subgraph is not None, f"line {number}: end without subgraph"
            open_subgraph = None
        elif match := _MERMAID_NODE.fullmatch(line):
            node, opening, label, closing = match.groups()
            assert _MERMAID_SHAPES[opening] == closing, f"line {number}: unmatched shape"
            assert node not in chart.labels, f"line {number}: {node} declared twice"
            chart.labels[node], chart.shapes[node] = label, opening
            chart.subgraph_of[node] = open_subgraph
        elif match := re.fullmatch(r"(n\d+) --> (n\d+)", line):
            assert open_subgraph is None, f"line {number}: edge inside a subgraph"
            chart.edges.append(match.groups())
        elif match := re.fullmatch(r"classDef (\w+) (.+)", line):
            for style in match.group(2).split(","):
                assert re.fullmatch(r"[a-z-]+:[^:;]+", style), f"line {number}: bad {style!r}"
            chart.class_defs.add(match.group(1))
        elif match := re.fullmatch(r"class ([\w,]+) (\w+)", line):
            assert match.group(2) in chart.class_defs, f"line {number}: undefined class"
            for node in match.group(1).split(","):
                assert node not in chart.class_of, f"line {number}: {node} classed twice"
                chart.class_of[node] = match.group(2)
        else:
            raise AssertionError(f"line {number}: not Mermaid flowchart syntax: {raw!r}")
    assert open_subgraph is None, "subgraph not closed"
    for source, target in chart.edges:
        assert source in chart.labels and target in chart.labels, (source, target)
    return chart


@pytest.mark.parametrize("graph_name", ["spending", "multi"])
def test_mermaid_is_a_well_formed_flowchart_of_the_graph(graph_name, request):
    graph: TopologyGraph = request.getfixturevalue(graph_name)
    chart = parse_mermaid(graph.to_mermaid())
    mermaid_id = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    assert set(chart.labels) == set(mermaid_id.values())
    assert chart.edges == [(mermaid_id[e.source], mermaid_id[e.target]) for e in graph.edges]
    for node in graph.nodes:
        key = mermaid_id[node.id]
        assert chart.labels[key].split("<br/>")[0] == node.label
        assert chart.shapes[key] == _MERMAID_SHAPE_OF_KIND[node.kind]
        assert chart.class_of[key] == node.kind
        expected = None if node.subtopology is None else f"sub{node.subtopology}"
        assert chart.subgraph_of[key] == expected, node.id


def test_mermaid_markup_characters_are_entities():
    app = App("demo")
    app.stream(app.topic("in")).filter(lambda k, v: True, name='keep "good" <b>#1').to("out")
    chart = parse_mermaid(topology_graph(app.topology()).to_mermaid())
    assert chart.labels["n1"] == "keep #quot;good#quot; #lt;b#gt;#35;1<br/>(filter)"


# --- DOT: a recursive-descent reading of the Graphviz grammar subset the graph writes -----

_DOT_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|->|[{}\[\];,=]|[A-Za-z_][A-Za-z0-9_]*|-?\d+)')


@dataclass
class DotGraph:
    name: str
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    cluster_of: dict[str, str | None] = field(default_factory=dict)
    cluster_labels: dict[str, str] = field(default_factory=dict)


class DotParser:
    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        position = 0
        while text[position:].strip():
            match = _DOT_TOKEN.match(text, position)
            assert match, f"unexpected DOT text at {text[position : position + 30]!r}"
            self.tokens.append(match.group(1))
            position = match.end()
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        assert token is not None, "DOT text ends early"
        assert expected is None or token == expected, f"expected {expected!r}, got {token!r}"
        self.at += 1
        return token

    def identifier(self) -> str:
        token = self.take()
        assert token not in "{}[];,=->", f"expected an identifier, got {token!r}"
        if token.startswith('"'):
            return re.sub(
                r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), token[1:-1]
            )
        return token

    def parse(self) -> DotGraph:
        self.take("digraph")
        graph = DotGraph(self.identifier())
        self.block(graph, None)
        assert self.peek() is None, f"text after the graph: {self.peek()!r}"
        return graph

    def block(self, graph: DotGraph, cluster: str | None) -> None:
        self.take("{")
        while self.peek() != "}":
            self.statement(graph, cluster)
            if self.peek() == ";":
                self.take()
        self.take("}")

    def attributes(self) -> dict[str, str]:
        self.take("[")
        attributes = {}
        while self.peek() != "]":
            name = self.identifier()
            self.take("=")
            attributes[name] = self.identifier()
            if self.peek() in (",", ";"):
                self.take()
        self.take("]")
        return attributes

    def statement(self, graph: DotGraph, cluster: str | None) -> None:
        if self.peek() == "subgraph":
            self.take()
            name = self.identifier()
            assert cluster is None, "nested clusters"
            self.block(graph, name)
        elif self.peek() in ("graph", "node", "edge"):
            self.take()
            self.attributes()
        else:
            first = self.identifier()
            if self.peek() == "=":
                self.take()
                value = self.identifier()
                if first == "label" and cluster is not None:
                    graph.cluster_labels[cluster] = value
            elif self.peek() == "->":
                chain = [first]
                while self.peek() == "->":
                    self.take()
                    chain.append(self.identifier())
                if self.peek() == "[":
                    self.attributes()
                graph.edges += list(itertools.pairwise(chain))
            else:
                attributes = self.attributes() if self.peek() == "[" else {}
                assert first not in graph.nodes, f"node {first!r} declared twice"
                graph.nodes[first] = attributes
                graph.cluster_of[first] = cluster


_DOT_SHAPE_OF_KIND = {
    "source": "box",
    "sink": "box",
    "repartition": "hexagon",
    "table": "cylinder",
    "operator": "box",
}


@pytest.mark.parametrize("graph_name", ["spending", "multi"])
def test_dot_is_a_well_formed_digraph_of_the_graph(graph_name, request):
    graph: TopologyGraph = request.getfixturevalue(graph_name)
    dot = DotParser(graph.to_dot()).parse()
    assert dot.name == graph.app
    assert set(dot.nodes) == {n.id for n in graph.nodes}
    assert dot.edges == [(e.source, e.target) for e in graph.edges]
    for node in graph.nodes:
        attributes = dot.nodes[node.id]
        assert attributes["label"].split("\n")[0] == node.label
        assert attributes["shape"] == _DOT_SHAPE_OF_KIND[node.kind]
        expected = None if node.subtopology is None else f"cluster_{node.subtopology}"
        assert dot.cluster_of[node.id] == expected, node.id
    for index in {n.subtopology for n in graph.nodes if n.subtopology is not None}:
        assert dot.cluster_labels[f"cluster_{index}"] == f"Sub-topology {index}"


def test_dot_escapes_quotes_and_backslashes():
    app = App('odd "app" \\ name')
    app.stream(app.topic("in")).to("out")
    dot = DotParser(topology_graph(app.topology()).to_dot()).parse()
    assert dot.name == 'odd "app" \\ name'
    assert dot.edges == [("topic:in", "topic:out")]


def test_the_dot_reader_rejects_broken_dot():
    with pytest.raises(AssertionError):
        DotParser('digraph "x" { "a" -> ; }').parse()
    with pytest.raises(AssertionError):
        DotParser('digraph "x" { "a" [label="a"] ').parse()


def test_the_mermaid_reader_rejects_broken_flowcharts():
    with pytest.raises(AssertionError):
        parse_mermaid('flowchart LR\n  subgraph s ["x"]\n    n0["a"]\n')
    with pytest.raises(AssertionError):
        parse_mermaid('flowchart LR\n  n0["a")\n')
    with pytest.raises(AssertionError):
        parse_mermaid('flowchart LR\n  n0["a"]\n  n0 --> n1\n')


def test_docstring_examples():
    result = doctest.testmod(streamflow.dsl.graph, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
