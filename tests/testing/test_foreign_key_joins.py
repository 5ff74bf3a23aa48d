"""Foreign-key table joins (KIP-213) through the TestDriver.

The scenarios follow Kafka Streams' foreign-key join tests (``KTableKTableForeignKeyJoin``
integration and scenario tests): left values are ``"<value>|<foreign key>"`` strings, the
joiner writes ``"(<left>,<right>)"``. One deliberate difference: the result is a
materialized table, so deleting a left row that never had a result emits nothing (Kafka
Streams, not knowing, emits a tombstone).
"""

from __future__ import annotations

import pytest

from streamflow import App
from streamflow.codecs import StrCodec
from streamflow.codecs.foreign_key import (
    ResponseCodec,
    SubscriptionCodec,
    SubscriptionValueCodec,
    value_hash,
)
from streamflow.testing import TestDriver


def joiner(left, right) -> str:
    return f"({left},{right})"


def foreign_key(value: str) -> str | None:
    fk = value.split("|")[1]
    return fk or None


def fk_app(how: str = "inner", *, left_partitions: int = 4, right_partitions: int = 3) -> App:
    app = App("fk")
    left = app.table_of(
        app.topic("left", key="str", value="str", partitions=left_partitions), name="lhs"
    )
    right = app.table_of(
        app.topic("right", key="str", value="str", partitions=right_partitions), name="rhs"
    )
    join = left.join if how == "inner" else left.left_join
    result = join(right, joiner, foreign_key=foreign_key, name="joined", value="str")
    result.to_stream().to(app.topic("out", key="str", value="str"))
    return app


@pytest.fixture(params=["inner", "left"])
def how(request) -> str:
    return request.param


def test_join_from_the_left_then_delete_the_left_row(how):
    with TestDriver(fk_app(how)) as driver:
        driver.pipe("right", "rhs1", "rhsValue1")
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        assert driver.read("out") == [("lhs1", "(lhsValue1|rhs1,rhsValue1)")]

        driver.pipe("left", "lhs1", None)
        assert driver.read("out") == [("lhs1", None)]
        assert dict(driver.table("joined").items()) == {}


def test_join_from_the_right_then_delete_the_right_row(how):
    with TestDriver(fk_app(how)) as driver:
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        driver.pipe("left", "lhs2", "lhsValue2|rhs2")
        driver.pipe("left", "lhs3", "lhsValue3|rhs1")
        unmatched = {
            "lhs1": "(lhsValue1|rhs1,None)",
            "lhs2": "(lhsValue2|rhs2,None)",
            "lhs3": "(lhsValue3|rhs1,None)",
        }
        assert dict(driver.read("out")) == ({} if how == "inner" else unmatched)

        driver.pipe("right", "rhs1", "rhsValue1")
        assert sorted(driver.read("out")) == [
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs3", "(lhsValue3|rhs1,rhsValue1)"),
        ]
        driver.pipe("right", "rhs2", "rhsValue2")
        assert driver.read("out") == [("lhs2", "(lhsValue2|rhs2,rhsValue2)")]

        driver.pipe("right", "rhs1", None)
        deleted = sorted(driver.read("out"))
        if how == "inner":
            assert deleted == [("lhs1", None), ("lhs3", None)]
            assert dict(driver.table("joined").items()) == {"lhs2": "(lhsValue2|rhs2,rhsValue2)"}
        else:
            assert deleted == [("lhs1", unmatched["lhs1"]), ("lhs3", unmatched["lhs3"])]
            assert len(driver.table("joined")) == 3


def test_deleting_a_row_that_never_joined_emits_nothing():
    with TestDriver(fk_app("inner")) as driver:
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        driver.pipe("left", "lhs1", None)
        driver.pipe("left", "never-there", None)
        assert driver.read("out") == []


def test_a_left_join_of_a_foreign_key_that_matches_nothing_joins_none():
    with TestDriver(fk_app("left")) as driver:
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        assert driver.read("out") == [("lhs1", "(lhsValue1|rhs1,None)")]
        driver.pipe("left", "lhs1", "lhsValue1|rhs2")
        assert driver.read("out") == [("lhs1", "(lhsValue1|rhs2,None)")]


def test_a_row_changing_to_an_unmatched_foreign_key_leaves_the_inner_join():
    with TestDriver(fk_app("inner")) as driver:
        driver.pipe("right", "rhs1", "rhsValue1")
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        driver.pipe("left", "lhs1", "lhsValue1|rhs2")
        assert driver.read("out") == [("lhs1", "(lhsValue1|rhs1,rhsValue1)"), ("lhs1", None)]


def test_a_row_without_a_foreign_key(how):
    with TestDriver(fk_app(how)) as driver:
        driver.pipe("right", "rhs1", "rhsValue1")
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        driver.pipe("left", "lhs1", "lhsValue1|")  # foreign_key returns None
        expected_last = None if how == "inner" else "(lhsValue1|,None)"
        assert driver.read("out") == [
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs1", expected_last),
        ]
        driver.pipe("right", "rhs1", "rhsValue1b")  # lhs1 is no longer subscribed to rhs1
        assert driver.read("out") == []


def test_a_row_that_changes_its_foreign_key_unsubscribes_from_the_old_one(how):
    with TestDriver(fk_app(how)) as driver:
        driver.pipe("right", "rhs1", "rhsValue1")
        driver.pipe("right", "rhs2", "rhsValue2")
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        driver.pipe("left", "lhs1", "lhsValue1|rhs2")
        assert driver.read("out") == [
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs1", "(lhsValue1|rhs2,rhsValue2)"),
        ]
        driver.pipe("right", "rhs1", "rhsValue1b")
        assert driver.read("out") == []
        driver.pipe("right", "rhs2", "rhsValue2b")
        assert driver.read("out") == [("lhs1", "(lhsValue1|rhs2,rhsValue2b)")]
        subscriptions = driver.table("joined-subscriptions")
        assert sorted(subscriptions) == [("rhs2", "lhs1")]


def test_an_update_of_the_left_value_with_the_same_foreign_key_joins_again():
    with TestDriver(fk_app("inner")) as driver:
        driver.pipe("right", "rhs1", "rhsValue1")
        driver.pipe("left", "lhs1", "lhsValue1|rhs1")
        driver.pipe("left", "lhs1", "lhsValue1b|rhs1")
        assert driver.read("out") == [
            ("lhs1", "(lhsValue1|rhs1,rhsValue1)"),
            ("lhs1", "(lhsValue1b|rhs1,rhsValue1)"),
        ]


def test_answers_to_an_older_left_value_are_dropped(how):
    # Both updates of lhs1 are written before either is processed, so the answer to the
    # first (rhs1) reaches the left side after lhs1 moved to rhs2: it must not win.
    with TestDriver(fk_app(how)) as driver:
        driver.pipe("right", "rhs1", "rhsValue1")
        driver.pipe("right", "rhs2", "rhsValue2")
        driver.pipe_many("left", [("lhs1", "lhsValue1|rhs1"), ("lhs1", "lhsValue1|rhs2")])
        assert driver.read("out") == [("lhs1", "(lhsValue1|rhs2,rhsValue2)")]
        assert driver.table("joined")["lhs1"] == "(lhsValue1|rhs2,rhsValue2)"


def test_a_delete_overtaking_its_answer_leaves_no_result():
    with TestDriver(fk_app("inner")) as driver:
        driver.pipe("right", "rhs1", "rhsValue1")
        driver.pipe_many("left", [("lhs1", "lhsValue1|rhs1"), ("lhs1", None)])
        assert driver.read("out") == []
        assert dict(driver.table("joined").items()) == {}


def test_many_left_rows_follow_one_right_row():
    with TestDriver(fk_app("inner")) as driver:
        driver.pipe_many("left", [(f"lhs{i}", f"v{i}|rhs{i % 3}") for i in range(30)])
        driver.pipe_many("right", [(f"rhs{j}", f"r{j}") for j in range(3)])
        driver.pipe("right", "rhs1", "r1b")
        driver.read("out")
        expected = {
            f"lhs{i}": f"(v{i}|rhs{i % 3},{'r1b' if i % 3 == 1 else f'r{i % 3}'})"
            for i in range(30)
        }
        assert dict(driver.table("joined").items()) == expected


def test_the_join_works_across_tables_of_different_partition_counts():
    app = fk_app("inner", left_partitions=5, right_partitions=2)
    topology = app.topology()
    names = {
        s.topic.name: s.topic.partitions for sub in topology.subtopologies for s in sub.sources
    }
    assert names["fk-joined-subscription-registration"] == 2  # partitioned like the right
    assert names["fk-joined-subscription-response"] == 5  # and like the left
    with TestDriver(app) as driver:
        driver.pipe_many("right", [(f"rhs{j}", f"r{j}") for j in range(7)])
        driver.pipe_many("left", [(f"lhs{i}", f"v{i}|rhs{i % 7}") for i in range(40)])
        assert len(driver.table("joined")) == 40


def test_the_left_and_right_sides_are_separate_subtopologies():
    topology = fk_app("inner").topology()
    groups = [sorted(s.topic.name for s in sub.sources) for sub in topology.subtopologies]
    assert ["fk-joined-subscription-response", "left"] in groups
    assert ["fk-joined-subscription-registration", "right"] in groups


def test_a_foreign_key_join_result_can_be_joined_and_regrouped():
    app = App("shop")
    orders = app.table_of(app.topic("orders"), name="orders")
    customers = app.table_of(app.topic("customers"), name="customers")
    enriched = orders.join(
        customers,
        lambda order, customer: {"amount": order["amount"], "region": customer["region"]},
        foreign_key=lambda order: order["customer"],
        name="enriched",
    )
    revenue = enriched.group_by(lambda order_id, order: order["region"]).aggregate(
        lambda: 0,
        lambda region, order, total: total + order["amount"],
        lambda region, order, total: total - order["amount"],
        name="revenue",
        value="int",
    )
    with TestDriver(app) as driver:
        driver.pipe_many("customers", [("c1", {"region": "EU"}), ("c2", {"region": "US"})])
        driver.pipe_many(
            "orders",
            [
                ("o1", {"customer": "c1", "amount": 5}),
                ("o2", {"customer": "c2", "amount": 7}),
                ("o3", {"customer": "c1", "amount": 1}),
            ],
        )
        assert dict(driver.table(revenue.name).items()) == {"EU": 6, "US": 7}
        driver.pipe("customers", "c1", {"region": "US"})  # c1 moved: its orders follow
        assert dict(driver.table(revenue.name).items()) == {"EU": 0, "US": 13}
        driver.pipe("orders", "o2", {"customer": "c1", "amount": 2})
        assert dict(driver.table(revenue.name).items()) == {"EU": 0, "US": 8}


def test_a_joiner_that_raises_dead_letters_the_answer_and_keeps_the_result():
    app = App("fk")
    left = app.table_of(app.topic("left", value="int"), name="lhs")
    right = app.table_of(app.topic("right", value="int"), name="rhs")

    def divide(order: int, rate: int) -> int:
        return order // rate

    left.join(right, divide, foreign_key=lambda v: "rate", name="joined", value="int")
    with TestDriver(app) as driver:
        driver.pipe("right", "rate", 2)
        driver.pipe("left", "a", 10)
        driver.pipe("right", "rate", 0)
        assert [d.step for d in driver.dead_letters()] == ["joined"]
        assert driver.table("joined")["a"] == 5


def test_a_foreign_key_extractor_that_raises_dead_letters_the_left_record():
    app = App("fk")
    left = app.table_of(app.topic("left"), name="lhs")
    right = app.table_of(app.topic("right"), name="rhs")
    left.join(right, joiner, foreign_key=lambda v: v["fk"], name="joined", value="str")
    with TestDriver(app) as driver:
        driver.pipe("left", "a", {"no-fk": 1})
        letters = driver.dead_letters()
        assert [(d.info.source_topic, d.step) for d in letters] == [("left", "joined-subscribe")]
        assert "a" not in driver.table("lhs")  # all or nothing: the row was not stored


def test_an_outer_foreign_key_join_is_refused():
    app = App("fk")
    left = app.table_of(app.topic("left"), name="lhs")
    right = app.table_of(app.topic("right"), name="rhs")
    with pytest.raises(TypeError, match="inner join or a left join"):
        left.outer_join(right, joiner, foreign_key=lambda v: v)


def test_a_foreign_key_that_is_not_callable_is_refused():
    app = App("fk")
    left = app.table_of(app.topic("left"), name="lhs")
    right = app.table_of(app.topic("right"), name="rhs")
    with pytest.raises(TypeError, match="foreign_key"):
        left.join(right, joiner, foreign_key="customer")  # type: ignore[arg-type]


def test_the_internal_topic_codecs_round_trip():
    subscriptions = SubscriptionCodec(StrCodec())
    digest = value_hash(StrCodec(), "v")
    for value in [("+", "k", digest, 7), ("-", "k", b"", 0)]:
        assert subscriptions.decode(subscriptions.encode(value)) == value
        assert subscriptions.from_json(subscriptions.to_json(value)) == value
    responses = ResponseCodec(StrCodec())
    for value in [(digest, "right"), (digest, None), (b"", "")]:
        assert responses.decode(responses.encode(value)) == value
        assert responses.from_json(responses.to_json(value)) == value
    stored = SubscriptionValueCodec()
    assert stored.from_json(stored.to_json((digest, 3))) == (digest, 3)


def test_answers_go_back_to_the_partition_of_the_row_whatever_partitioned_its_topic():
    # The left topic is written by a producer that does not partition by key (as the
    # order events of a shop partitioned by user): the answers must find each row anyway.
    with TestDriver(fk_app("inner", left_partitions=4)) as driver:
        driver.pipe_many("right", [(f"rhs{j}", f"r{j}") for j in range(3)])
        for i in range(20):
            driver.pipe("left", f"lhs{i}", f"v{i}|rhs{i % 3}", partition=(i * 7) % 4)
        assert dict(driver.table("joined").items()) == {
            f"lhs{i}": f"(v{i}|rhs{i % 3},r{i % 3})" for i in range(20)
        }
        driver.read("out")
        driver.pipe("right", "rhs2", "r2b")
        assert sorted(driver.read("out")) == sorted(
            (f"lhs{i}", f"(v{i}|rhs2,r2b)") for i in range(20) if i % 3 == 2
        )
