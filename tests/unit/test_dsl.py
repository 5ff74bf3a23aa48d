"""The DSL builds the right plan; mistakes fail early with clear messages."""

from decimal import Decimal

import pytest

from streamflow import App
from streamflow.dsl.topology import AggregateNode, FilterNode, SelectKeyNode, SinkNode


def _user_spending(app: App):
    orders = app.topic("order_events", value="json")
    summary = app.topic("user_spending_summary", value="str")
    table = (
        app.stream(orders)
        .filter(lambda k, o: o["status"] == "PAID")
        .group_by(lambda k, o: o["user_id"], name="by-user")
        .aggregate(
            lambda: Decimal("0.00"),
            lambda user, o, total: total + Decimal(o["amount"]),
            name="user-spending-store",
            value="decimal",
        )
    )
    table.to_stream().map_values(str).to(summary)
    return table


def test_group_by_splits_into_two_subtopologies_through_a_repartition_topic():
    app = App("shop")
    _user_spending(app)
    first, second = app.topology().subtopologies
    assert first.source.topic.name == "order_events"
    kinds = [type(n) for n in first.nodes()]
    assert kinds[1:] == [FilterNode, SelectKeyNode, SinkNode]
    assert first.sinks[0].topic.name == "shop-by-user-repartition"
    assert first.sinks[0].internal
    assert second.source.topic.name == "shop-by-user-repartition"
    assert [n.store for n in second.stores] == ["user-spending-store"]
    assert second.sinks[0].topic.name == "user_spending_summary"
    assert app.topology().internal_topics[0].name == "shop-by-user-repartition"


def test_decorated_table_builds_the_same_shape_as_the_fluent_form():
    app = App("shop")
    orders = app.topic("order_events")

    @app.table(
        source=orders,
        where=lambda k, o: o["status"] == "PAID",
        key_by=lambda k, o: o["user_id"],
        initial=Decimal("0.00"),
        name="user-spending-store",
        value="decimal",
        emit_to=app.topic("user_spending_summary", value="str"),
        emit_value=str,
    )
    def spending(total, order):
        return total + Decimal(order["amount"])

    fluent = App("shop")
    _user_spending(fluent)
    shape = [[n.kind for n in s.nodes()] for s in app.topology().subtopologies]
    fluent_shape = [[n.kind for n in s.nodes()] for s in fluent.topology().subtopologies]
    assert shape == fluent_shape
    assert spending.name == "user-spending-store"


def test_aggregate_node_carries_codecs_and_functions():
    app = App("shop")
    table = _user_spending(app)
    node = app.topology().stores[0]
    assert isinstance(node, AggregateNode)
    assert node.value_codec.name == "decimal"
    assert node.key_codec.name == "str"
    assert node.aggregator("u", {"amount": "1.50"}, Decimal("1.00")) == Decimal("2.50")
    assert table.name == "user-spending-store"


def test_describe_lists_every_step():
    app = App("shop")
    _user_spending(app)
    text = app.topology().describe()
    assert "source: order_events" in text
    assert "aggregate into table: user-spending-store" in text
    assert "sink: user_spending_summary" in text


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda app: app.stream("t").filter("not callable"), TypeError),
        (lambda app: app.stream("t").group_by(None), TypeError),
        (lambda app: App("x", processing_guarantee="maybe"), ValueError),
        (lambda app: App(""), ValueError),
        (lambda app: app.topic("t", value="yaml"), ValueError),
    ],
)
def test_mistakes_fail_when_declared(build, error):
    with pytest.raises(error):
        build(App("shop"))


def test_two_tables_with_one_name_are_rejected():
    app = App("shop")
    grouped = app.stream("t").group_by(lambda k, v: v)
    grouped.count(name="n")
    app.stream("u").group_by(lambda k, v: v, name="other").count(name="n2")
    with pytest.raises(ValueError, match="already exists"):
        app.stream("w").group_by(lambda k, v: v, name="third").count(name="n")


def test_topic_names_can_be_overridden_from_the_environment(monkeypatch):
    monkeypatch.setenv("STREAMFLOW_TOPIC_ORDER_EVENTS", "orders-staging")
    app = App("shop")
    assert app.topic("order_events").name == "orders-staging"


def test_a_topic_read_twice_shares_one_source():
    from streamflow import App, DeadLetter, Stop

    app = App("twice")
    app.stream(app.topic("in")).to(app.topic("a"))
    app.stream("in", on_error=Stop()).to(app.topic("b"))
    [sub] = app.topology().subtopologies
    assert [s.topic.name for s in sub.sources] == ["in"]
    assert sorted(n.topic.name for n in sub.sinks) == ["a", "b"]
    with pytest.raises(ValueError, match="two error policies"):
        app.stream("in", on_error=DeadLetter())


def test_two_sources_of_one_topic_are_refused_when_the_plan_is_built():
    from streamflow.dsl.topology import SourceNode, TopologyBuilder
    from streamflow.topics import Topic

    builder = TopologyBuilder("twice")
    builder.add(SourceNode(topic=Topic("in")))
    builder.add(SourceNode(topic=Topic("in")))
    with pytest.raises(ValueError, match="read by two sources"):
        builder.build()
