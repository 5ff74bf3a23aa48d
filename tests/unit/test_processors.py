"""Operators over batches: results, table updates, failures isolated per record."""

from decimal import Decimal

from streamflow import App
from streamflow.runtime.batch import BatchContext
from streamflow.runtime.processors import compile_node


def _run(app: App, records, ctx=None):
    ctx = ctx or BatchContext.for_tests()
    for sub in app.topology().subtopologies:
        push = compile_node(sub.source)
        batch = [
            (k, v, 1000 + i, i) for i, (k, v) in enumerate(records.get(sub.source.topic.name, []))
        ]
        push(batch, ctx)
    return ctx


def test_filter_and_group_by_write_rekeyed_records_to_the_repartition_topic():
    app = App("shop")
    app.stream("orders").filter(lambda k, o: o["status"] == "PAID").group_by(
        lambda k, o: o["user"], name="by-user"
    ).count(name="n")
    ctx = _run(
        app,
        {
            "orders": [
                ("o1", {"status": "PAID", "user": "a"}),
                ("o2", {"status": "NEW", "user": "b"}),
            ]
        },
    )
    topic, out, _ = ctx.outputs["shop-by-user-repartition"]
    assert [(key, ts) for key, value, ts in out] == [(b"a", 1000)]
    assert topic.value_codec.decode(out[0][1]) == {"status": "PAID", "user": "a"}


def test_aggregate_sums_exactly_and_emits_every_update():
    app = App("shop")
    summary = app.topic("summary", value="str")
    app.stream("by-user").group_by_key(name="g").aggregate(
        lambda: Decimal("0.00"), lambda k, v, total: total + Decimal(v), name="t", value="decimal"
    ).to_stream().map_values(str).to(summary)
    ctx = BatchContext.for_tests()
    sub = app.topology().subtopologies[1]
    push = compile_node(sub.source)
    push([("a", "0.10", 1, 0), ("a", "0.20", 2, 1), ("b", "5.00", 3, 2)], ctx)
    _, out, _ = ctx.outputs["summary"]
    assert [(k, v) for k, v, _ in out] == [(b"a", b"0.10"), (b"a", b"0.30"), (b"b", b"5.00")]
    assert ctx.table("t").updated == {"a": Decimal("0.30"), "b": Decimal("5.00")}


def test_a_failing_user_function_fails_only_its_record():
    app = App("shop")

    def explode_on_b(key, value):
        if key == "b":
            raise ZeroDivisionError("boom")
        return True

    app.stream("in").filter(explode_on_b).to("out")
    ctx = _run(app, {"in": [("a", 1), ("b", 2), ("c", 3)]})
    assert [k for k, _, _ in ctx.outputs["out"][1]] == [b"a", b"c"]
    assert len(ctx.failures) == 1
    assert ctx.failures[0].source_index == 1
    assert isinstance(ctx.failures[0].error, ZeroDivisionError)


def test_reduce_keeps_first_value_then_combines():
    app = App("shop")
    app.stream("prices").group_by_key(name="g").reduce(max, name="max-price", value="int")
    ctx = BatchContext.for_tests()
    push = compile_node(app.topology().subtopologies[1].source)
    push([("x", 3, 0, 0), ("x", 1, 0, 1), ("x", 7, 0, 2)], ctx)
    assert ctx.table("max-price").updated == {"x": 7}


def test_records_without_key_are_not_aggregated():
    app = App("shop")
    app.stream("t").group_by_key(name="g").count(name="n")
    ctx = BatchContext.for_tests()
    push = compile_node(app.topology().subtopologies[1].source)
    push([(None, 1, 0, 0), ("k", 1, 0, 1)], ctx)
    assert ctx.table("n").updated == {"k": 1}
    assert ctx.dropped == 1


def test_mutable_aggregates_are_emitted_as_snapshots():
    app = App("shop")
    seen = []
    app.stream("t").group_by_key(name="g").aggregate(
        list, lambda k, v, acc: (acc.append(v), acc)[1], name="lists"
    ).to_stream().peek(lambda k, v: seen.append(v))
    ctx = BatchContext.for_tests()
    push = compile_node(app.topology().subtopologies[1].source)
    push([("k", 1, 0, 0), ("k", 2, 0, 1)], ctx)
    assert seen == [[1], [1, 2]]


def test_a_value_the_repartition_codec_cannot_encode_fails_with_the_fix_named():
    app = App("shop")
    orders = app.topic("orders", value="int")
    app.stream(orders).map_values(lambda n: {"n": n}).group_by(lambda k, v: k, name="by-key").count(
        name="n"
    )
    ctx = _run(app, {"orders": [("o1", 1)]})
    [failure] = ctx.failures
    assert type(failure.error).__name__ == "SinkEncodeError"
    assert "'shop-by-key-repartition' with its int codec" in str(failure.error)
    assert "value='json'" in str(failure.error)
    assert ctx.outputs["shop-by-key-repartition"][1] == []
