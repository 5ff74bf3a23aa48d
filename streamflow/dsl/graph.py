"""The plan of a built :class:`~streamflow.dsl.topology.Topology` as a graph of nodes and edges.

Operators become ``operator`` nodes; topics become nodes of their own (``source`` for a user
topic the app reads, ``sink`` for one it only writes, ``repartition`` for an internal topic,
which joins the sub-topology writing it to the one reading it, ``retry`` for a retry topic
feeding failed records back to the operators they failed in); every aggregate's store
hangs off its operator as a ``table`` node. The graph renders as JSON (what the worker's
``GET /topology`` serves), Mermaid and Graphviz DOT; ``Topology.describe()`` stays the text
form.

Example:
    >>> from streamflow import App
    >>> app = App("demo")
    >>> _ = app.stream(app.topic("words")).filter(lambda k, v: True).to(app.topic("out"))
    >>> graph = topology_graph(app.topology())
    >>> [(n.id, n.kind) for n in graph.nodes]
    [('topic:words', 'source'), ('step:filter-2', 'operator'), ('topic:out', 'sink')]
    >>> [(e.source, e.target) for e in graph.edges]
    [('topic:words', 'step:filter-2'), ('step:filter-2', 'topic:out')]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamflow.dsl.topology import (
    Node,
    SinkNode,
    SourceNode,
    StoreNode,
    Topology,
)

__all__ = ["NODE_KINDS", "GraphEdge", "GraphNode", "TopologyGraph", "topology_graph"]

NODE_KINDS = ("source", "operator", "repartition", "retry", "table", "sink")

# Mermaid shape brackets and Graphviz node attributes per node kind.
_MERMAID_SHAPES = {
    "source": ("([", "])"),
    "sink": ("([", "])"),
    "repartition": ("{{", "}}"),
    "retry": ("{{", "}}"),
    "table": ("[(", ")]"),
    "operator": ("[", "]"),
}
_MERMAID_STYLES = {
    "source": "fill:#e3f4e1,stroke:#2e7d32",
    "sink": "fill:#e1ecf8,stroke:#1565c0",
    "repartition": "fill:#fdf0dc,stroke:#e08a00,stroke-dasharray:4 3",
    "retry": "fill:#fbe3e3,stroke:#c62828,stroke-dasharray:4 3",
    "table": "fill:#efe5f7,stroke:#6a1b9a",
    "operator": "fill:#f4f4f4,stroke:#555555",
}
_DOT_ATTRIBUTES = {
    "source": 'shape=box, style="rounded,filled", fillcolor="#e3f4e1", color="#2e7d32"',
    "sink": 'shape=box, style="rounded,filled", fillcolor="#e1ecf8", color="#1565c0"',
    "repartition": 'shape=hexagon, style="dashed,filled", fillcolor="#fdf0dc", color="#e08a00"',
    "retry": 'shape=hexagon, style="dashed,filled", fillcolor="#fbe3e3", color="#c62828"',
    "table": 'shape=cylinder, style=filled, fillcolor="#efe5f7", color="#6a1b9a"',
    "operator": 'shape=box, style=filled, fillcolor="#f4f4f4", color="#555555"',
}


@dataclass(frozen=True)
class GraphNode:
    """One node of a :class:`TopologyGraph`.

    ``kind`` is one of :data:`NODE_KINDS`. ``subtopology`` is the index of the sub-topology
    the node belongs to, or ``None`` for a topic shared by several sub-topologies (a
    repartition topic, or a user topic one sub-topology writes and another reads).
    ``topic`` names the topic of a topic node, ``table`` the store of a table node,
    ``operator`` the DSL step kind of an operator node (``filter``, ``aggregate`` …), and
    ``steps`` the names of the DSL steps (as printed by ``streamflow topology``) the node
    stands for.

    >>> node = GraphNode("step:filter-2", "operator", "filter-2", 0, operator="filter",
    ...                  steps=("filter-2",))
    >>> node.to_json()["operator"]
    'filter'
    """

    id: str
    kind: str
    label: str
    subtopology: int | None
    topic: str | None = None
    table: str | None = None
    operator: str | None = None
    steps: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The node as a plain dict (``steps`` as a list).

        >>> GraphNode("table:t", "table", "t", 1, table="t").to_json()["steps"]
        []
        """
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "subtopology": self.subtopology,
            "topic": self.topic,
            "table": self.table,
            "operator": self.operator,
            "steps": list(self.steps),
        }


@dataclass(frozen=True)
class GraphEdge:
    """Records flow from node ``source`` to node ``target`` (both node ids).

    >>> GraphEdge("topic:words", "step:filter-2").to_json()
    {'from': 'topic:words', 'to': 'step:filter-2'}
    """

    source: str
    target: str

    def to_json(self) -> dict[str, str]:
        """The edge as ``{"from": ..., "to": ...}``."""
        return {"from": self.source, "to": self.target}


@dataclass
class TopologyGraph:
    """Nodes and edges of an app's plan, with its JSON, Mermaid and DOT forms.

    Build one with :func:`topology_graph`.

    >>> from streamflow import App
    >>> app = App("demo")
    >>> app.stream(app.topic("a")).to(app.topic("b"))
    >>> print(topology_graph(app.topology()).to_mermaid().splitlines()[0])
    flowchart LR
    """

    app: str
    nodes: list[GraphNode] = field(default_factory=list)
    edges: list[GraphEdge] = field(default_factory=list)

    def node(self, node_id: str) -> GraphNode:
        """The node with id ``node_id`` (``KeyError`` when absent).

        >>> TopologyGraph("demo", [GraphNode("topic:a", "source", "a", 0, topic="a")]).node(
        ...     "topic:a").topic
        'a'
        """
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def to_json(self) -> dict[str, Any]:
        """``{"app": ..., "nodes": [...], "edges": [...]}`` of plain values.

        >>> TopologyGraph("demo").to_json()
        {'app': 'demo', 'nodes': [], 'edges': []}
        """
        return {
            "app": self.app,
            "nodes": [node.to_json() for node in self.nodes],
            "edges": [edge.to_json() for edge in self.edges],
        }

    def to_mermaid(self) -> str:
        """A Mermaid ``flowchart LR``: one subgraph per sub-topology, a class per node kind.

        Mermaid ids are ``n0``, ``n1`` … in node order; labels carry the names.

        >>> graph = TopologyGraph("demo", [GraphNode("topic:a", "source", "a", 0, topic="a")])
        >>> print(graph.to_mermaid())
        flowchart LR
          subgraph sub0 ["Sub-topology 0"]
            n0(["a<br/>(source topic)"])
          end
          classDef source fill:#e3f4e1,stroke:#2e7d32
          class n0 source
        """
        ids = {node.id: f"n{i}" for i, node in enumerate(self.nodes)}

        def declare(node: GraphNode) -> str:
            opening, closing = _MERMAID_SHAPES[node.kind]
            return f'{ids[node.id]}{opening}"{_mermaid_text(_caption(node))}"{closing}'

        lines = ["flowchart LR"]
        lines += _grouped(
            self.nodes, declare, lambda i: [f'subgraph sub{i} ["Sub-topology {i}"]'], "end"
        )
        lines += [f"  {ids[e.source]} --> {ids[e.target]}" for e in self.edges]
        kinds = [kind for kind in NODE_KINDS if any(n.kind == kind for n in self.nodes)]
        lines += [f"  classDef {kind} {_MERMAID_STYLES[kind]}" for kind in kinds]
        for kind in kinds:
            members = ",".join(ids[n.id] for n in self.nodes if n.kind == kind)
            lines.append(f"  class {members} {kind}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """A Graphviz ``digraph`` (left to right), one ``cluster_<i>`` per sub-topology.

        >>> graph = TopologyGraph("demo", [GraphNode("topic:a", "source", "a", 0, topic="a")])
        >>> print(graph.to_dot().splitlines()[0])
        digraph "demo" {
        """

        def declare(node: GraphNode) -> str:
            label = _dot_string("\n".join(_caption(node)))
            return f"{_dot_string(node.id)} [label={label}, {_DOT_ATTRIBUTES[node.kind]}];"

        lines = [
            f"digraph {_dot_string(self.app)} {{",
            "  rankdir=LR;",
            '  node [fontname="Helvetica", fontsize=11];',
            '  edge [color="#666666"];',
        ]
        lines += _grouped(
            self.nodes,
            declare,
            lambda i: [f"subgraph cluster_{i} {{", f"  label={_dot_string(f'Sub-topology {i}')};"],
            "}",
        )
        lines += [f"  {_dot_string(e.source)} -> {_dot_string(e.target)};" for e in self.edges]
        lines.append("}")
        return "\n".join(lines)


def topology_graph(topology: Topology) -> TopologyGraph:
    """The graph of ``topology``: operator, topic and table nodes joined by edges.

    >>> from decimal import Decimal
    >>> from streamflow import App
    >>> app = App("shop")
    >>> totals = (app.stream(app.topic("orders"))
    ...           .group_by(lambda k, v: v["user_id"], name="by-user")
    ...           .aggregate(lambda: Decimal(0), lambda k, v, t: t + 1, name="totals"))
    >>> graph = topology_graph(app.topology())
    >>> graph.node("topic:shop-by-user-repartition").kind
    'repartition'
    >>> graph.node("table:totals").kind
    'table'
    """
    builder = _GraphBuilder(topology.app_id)
    for sub in topology.subtopologies:
        if sub.source.retry_attempt:
            # A retry topic feeds the operators of the sub-topology it retries.
            builder.add_step(sub.source, sub.index)
            continue
        for node in sub.nodes():
            builder.add_step(node, sub.index)
    return builder.build()


class _GraphBuilder:
    """Accumulates nodes (topic nodes merged across steps) and de-duplicated edges."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.built: dict[str, GraphNode] = {}  # operator and table nodes by id
        self.topics: dict[str, _TopicUse] = {}
        self.order: dict[str, None] = {}  # node ids, first seen first
        self.edges: dict[tuple[str, str], None] = {}

    def add_step(self, node: Node, subtopology: int) -> None:
        node_id = self._register(node, subtopology)
        for child in node.children:
            self.edges[(node_id, _node_id(child))] = None
        if isinstance(node, StoreNode):
            table_id = f"table:{node.store}"
            self._remember(table_id)
            self.built[table_id] = GraphNode(
                table_id, "table", node.store, subtopology, table=node.store, steps=(node.name,)
            )
            self.edges[(node_id, table_id)] = None
        for table in node.tables_read():  # a join reads the table
            self.edges[(f"table:{table}", node_id)] = None

    def _register(self, node: Node, subtopology: int) -> str:
        node_id = _node_id(node)
        self._remember(node_id)
        if isinstance(node, SourceNode | SinkNode):
            use = self.topics.setdefault(node.topic.name, _TopicUse(node.topic.name))
            use.add(node, subtopology)
        else:
            self.built[node_id] = GraphNode(
                node_id, "operator", node.name, subtopology, operator=node.kind, steps=(node.name,)
            )
        return node_id

    def _remember(self, node_id: str) -> None:
        self.order.setdefault(node_id, None)

    def build(self) -> TopologyGraph:
        topics = {f"topic:{name}": use.node() for name, use in self.topics.items()}
        nodes = [self.built.get(node_id) or topics[node_id] for node_id in self.order]
        edges = [GraphEdge(source, target) for source, target in self.edges]
        return TopologyGraph(self.app_id, nodes, edges)


@dataclass
class _TopicUse:
    """How the plan uses one topic: which steps read or write it, from which sub-topologies."""

    name: str
    internal: bool = False
    retry: bool = False
    read: bool = False
    steps: list[str] = field(default_factory=list)
    subtopologies: set[int] = field(default_factory=set)

    def add(self, node: SourceNode | SinkNode, subtopology: int) -> None:
        self.internal = self.internal or node.internal or node.topic.internal
        self.retry = self.retry or (isinstance(node, SourceNode) and node.retry_attempt > 0)
        self.read = self.read or isinstance(node, SourceNode)
        self.steps.append(node.name)
        self.subtopologies.add(subtopology)

    def node(self) -> GraphNode:
        kind = (
            "retry"
            if self.retry
            else "repartition"
            if self.internal
            else "source"
            if self.read
            else "sink"
        )
        owner = next(iter(self.subtopologies)) if len(self.subtopologies) == 1 else None
        return GraphNode(
            f"topic:{self.name}", kind, self.name, owner, topic=self.name, steps=tuple(self.steps)
        )


def _node_id(node: Node) -> str:
    if isinstance(node, SourceNode | SinkNode):
        return f"topic:{node.topic.name}"
    return f"step:{node.name}"


def _caption(node: GraphNode) -> list[str]:
    """The label and, on a line of its own, what the node is: ``orders``, ``(source topic)``.

    Operators whose generated name already says what they are (``filter-2``) get one line.
    """
    if node.kind == "operator":
        if node.operator and node.operator not in node.label:
            return [node.label, f"({node.operator})"]
        return [node.label]
    what = "table" if node.kind == "table" else f"{node.kind} topic"
    return [node.label, f"({what})"]


def _grouped(
    nodes: list[GraphNode],
    declare: Callable[[GraphNode], str],
    opening: Callable[[int], list[str]],
    closing: str,
) -> list[str]:
    """Node declarations, those of one sub-topology inside its own block, shared ones after."""
    lines: list[str] = []
    indexes = sorted({n.subtopology for n in nodes if n.subtopology is not None})
    for index in indexes:
        lines += ["  " + line for line in opening(index)]
        lines += [f"    {declare(n)}" for n in nodes if n.subtopology == index]
        lines.append("  " + closing)
    lines += [f"  {declare(n)}" for n in nodes if n.subtopology is None]
    return lines


def _mermaid_text(lines: list[str]) -> str:
    # Mermaid labels are HTML: entities for markup characters, <br/> between lines.
    entities = {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;"}
    return "<br/>".join("".join(entities.get(c, c) for c in line) for line in lines)


def _dot_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
