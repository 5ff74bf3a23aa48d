"""Joins, tables from topics, branch, merge and flat_map, run through the TestDriver.

The scenarios follow the cases of Kafka Streams' own operator tests (stream-table inner and
left joins, table-table inner, left and outer joins, table sources, table filters, branch,
flat_map, merge): the same inputs, and the outputs Kafka Streams gives, as ``(key, value)``
records in the order they are written.
"""

from __future__ import annotations

import pytest

from streamflow import App, DeadLetter, Retry, Stop, tumbling
from streamflow.testing import TestDriver

KEYS = [0, 1, 2, 3]


def plus(left, right) -> str:
    """The joiner of the Kafka Streams tests: ``"X0+Y0"``, ``"X0+None"`` for a missing side."""
    return f"{left}+{right}"


# --- stream-table joins -------------------------------------------------------------------


def stream_table_app(*, left: bool = False) -> App:
    app = App("stj")
    table = app.table_of(app.topic("table-topic", key="int", value="str"), name="table")
    stream = app.stream(app.topic("stream-topic", key="int", value="str"))
    joined = stream.left_join(table, plus) if left else stream.join(table, plus)
    joined.to(app.topic("out", key="int", value="str"))
    return app


def pipe_stream(driver: TestDriver, count: int, prefix: str) -> None:
    driver.pipe_many("stream-topic", [(k, f"{prefix}{k}", k) for k in KEYS[:count]])


def pipe_table(driver: TestDriver, count: int, prefix: str) -> None:
    driver.pipe_many("table-topic", [(k, f"{prefix}{k}") for k in KEYS[:count]])


def test_stream_table_join_does_not_join_with_an_empty_table():
    with TestDriver(stream_table_app()) as driver:
        pipe_stream(driver, 2, "X")
        assert driver.read("out") == []
        pipe_table(driver, 2, "Y")  # the earlier stream records are not joined afterwards
        assert driver.read("out") == []


def test_stream_table_join_reads_the_table_when_each_record_is_processed():
    with TestDriver(stream_table_app()) as driver:
        pipe_stream(driver, 2, "X")
        assert driver.read("out") == []

        pipe_table(driver, 2, "Y")
        assert driver.read("out") == []  # a table update emits nothing by itself

        pipe_stream(driver, 4, "X")
        assert driver.read("out") == [(0, "X0+Y0"), (1, "X1+Y1")]

        pipe_table(driver, 4, "YY")
        assert driver.read("out") == []

        pipe_stream(driver, 4, "X")
        assert driver.read("out") == [(0, "X0+YY0"), (1, "X1+YY1"), (2, "X2+YY2"), (3, "X3+YY3")]

        pipe_table(driver, 4, "YYY")
        assert driver.read("out") == []
        assert dict(driver.table("table").items()) == {k: f"YYY{k}" for k in KEYS}


def test_stream_table_join_only_joins_the_keys_the_table_holds():
    with TestDriver(stream_table_app()) as driver:
        pipe_table(driver, 2, "Y")
        pipe_stream(driver, 4, "X")
        records = driver.read_records("out")
    assert [(r.key, r.value) for r in records] == [(0, "X0+Y0"), (1, "X1+Y1")]
    assert [r.timestamp for r in records] == [0, 1]  # the stream record's timestamp


def test_a_table_tombstone_removes_the_key_from_later_stream_joins():
    with TestDriver(stream_table_app()) as driver:
        pipe_table(driver, 4, "Y")
        pipe_stream(driver, 4, "X")
        assert driver.read("out") == [(0, "X0+Y0"), (1, "X1+Y1"), (2, "X2+Y2"), (3, "X3+Y3")]

        driver.pipe_many("table-topic", [(0, None), (1, None)])
        assert driver.read("out") == []  # deleting emits nothing either
        assert dict(driver.table("table").items()) == {2: "Y2", 3: "Y3"}

        pipe_stream(driver, 4, "XX")
        assert driver.read("out") == [(2, "XX2+Y2"), (3, "XX3+Y3")]


def test_stream_records_without_a_key_are_not_joined():
    with TestDriver(stream_table_app()) as driver:
        pipe_table(driver, 4, "Y")
        driver.pipe("stream-topic", None, "A")
        driver.pipe("stream-topic", 2, "B")
        assert driver.read("out") == [(2, "B+Y2")]
        assert driver.dead_letters() == []


@pytest.mark.parametrize("left", [False, True], ids=["join", "left_join"])
def test_stream_records_with_a_none_value_are_not_joined(left):
    # Kafka Streams: "input records with a null key or a null value are ignored and do not
    # trigger the join", for join and left_join alike.
    with TestDriver(stream_table_app(left=left)) as driver:
        pipe_table(driver, 2, "Y")
        driver.pipe("stream-topic", 1, None)
        driver.pipe("stream-topic", 3, None)
        driver.pipe("stream-topic", 1, "B")
        assert driver.read("out") == [(1, "B+Y1")]


def test_stream_table_left_join_keeps_every_record():
    with TestDriver(stream_table_app(left=True)) as driver:
        pipe_stream(driver, 2, "X")
        assert driver.read("out") == [(0, "X0+None"), (1, "X1+None")]

        pipe_table(driver, 2, "Y")
        assert driver.read("out") == []

        pipe_stream(driver, 4, "X")
        assert driver.read("out") == [(0, "X0+Y0"), (1, "X1+Y1"), (2, "X2+None"), (3, "X3+None")]

        pipe_table(driver, 4, "YY")
        driver.pipe_many("table-topic", [(0, None), (1, None)])
        assert driver.read("out") == []

        pipe_stream(driver, 4, "XX")
        assert driver.read("out") == [
            (0, "XX0+None"),
            (1, "XX1+None"),
            (2, "XX2+YY2"),
            (3, "XX3+YY3"),
        ]


def test_stream_table_join_with_dict_values_and_a_derived_table():
    app = App("shop")
    customers = app.table_of(app.topic("customers", value="json"), name="customers")
    active = customers.filter(lambda cid, c: c["active"], name="active-customers")
    orders = app.stream(app.topic("orders", value="json"))
    orders.join(active, lambda order, c: {**order, "city": c["city"]}).to(app.topic("enriched"))
    with TestDriver(app) as driver:
        driver.pipe("customers", "c1", {"city": "Oslo", "active": True})
        driver.pipe("orders", "c1", {"order": "o1"})
        driver.pipe("customers", "c1", {"city": "Rome", "active": True})
        driver.pipe("orders", "c1", {"order": "o2"})
        driver.pipe("customers", "c1", {"city": "Rome", "active": False})  # leaves the filter
        driver.pipe("orders", "c1", {"order": "o3"})
        assert driver.read("enriched") == [
            ("c1", {"order": "o1", "city": "Oslo"}),
            ("c1", {"order": "o2", "city": "Rome"}),
        ]
        assert dict(driver.table("active-customers").items()) == {}
        assert driver.table("customers")["c1"] == {"city": "Rome", "active": False}


# --- tables from topics and streams ------------------------------------------------------


def test_table_of_keeps_the_latest_value_and_emits_every_change():
    app = App("src")
    table = app.table_of(app.topic("topic1", value="int"), name="t1")
    table.to_stream().to(app.topic("updates", value="int"))
    with TestDriver(app) as driver:
        driver.pipe_many("topic1", [("A", 1), ("B", 2), ("C", 3), ("D", 4)])
        assert dict(driver.table("t1").items()) == {"A": 1, "B": 2, "C": 3, "D": 4}
        driver.pipe_many("topic1", [("A", None), ("B", None)])
        driver.pipe("topic1", "E", None)  # deleting a key that is not there: no update
        driver.pipe("topic1", None, 9)  # no key, no row
        driver.pipe("topic1", "C", 30)
        assert driver.read("updates") == [
            ("A", 1),
            ("B", 2),
            ("C", 3),
            ("D", 4),
            ("A", None),
            ("B", None),
            ("C", 30),
        ]
        assert dict(driver.table("t1").items()) == {"C": 30, "D": 4}
        assert driver.table("t1").get("A") is None and "A" not in driver.table("t1")
        assert driver.read("src-t1-changelog") == [
            ("A", 1),
            ("B", 2),
            ("C", 3),
            ("D", 4),
            ("A", None),
            ("B", None),
            ("C", 30),
        ]
        assert driver.dead_letters() == []


def test_table_of_is_named_after_its_topic_by_default():
    app = App("src")
    table = app.table_of(app.topic("prices", value="int"))
    assert table.name == "prices"
    with TestDriver(app) as driver:
        driver.pipe_many("prices", [("apple", 3), ("apple", 4)])
        assert dict(driver.table("prices").items()) == {"apple": 4}


def test_stream_to_table_keeps_the_latest_value_per_key():
    app = App("src")
    stream = app.stream(app.topic("prices", value="int"))
    stream.to_table(name="price").to_stream().to(app.topic("changes", value="int"))
    with TestDriver(app) as driver:
        driver.pipe_many("prices", [("apple", 3), ("pear", 2), ("apple", 4)])
        driver.pipe_many("prices", [("pear", None), ("plum", None)])
        assert dict(driver.table("price").items()) == {"apple": 4}
        assert driver.read("changes") == [("apple", 3), ("pear", 2), ("apple", 4), ("pear", None)]
    assert driver.topology.internal_topics == []  # keys unchanged: no repartition


def test_to_table_after_flat_map_repartitions_by_the_new_keys():
    app = App("src")
    lines = app.stream(app.topic("lines", value="str"))
    words = lines.flat_map(lambda line_id, line: [(w, line_id) for w in line.split()])
    words.to_table(name="last-line")
    with TestDriver(app) as driver:
        driver.pipe_many("lines", [("l1", "to be"), ("l2", "or not to be")])
        assert dict(driver.table("last-line").items()) == {
            "to": "l2",
            "be": "l2",
            "or": "l2",
            "not": "l2",
        }
        assert driver.read("src-last-line-by-key-repartition") == [
            ("to", "l1"),
            ("be", "l1"),
            ("or", "l2"),
            ("not", "l2"),
            ("to", "l2"),
            ("be", "l2"),
        ]


def test_to_table_stores_values_with_the_codec_it_is_given():
    app = App("src")
    stream = app.stream(app.topic("names", value="str")).map_values(lambda n: {"name": n})
    stream.to_table(name="people", value="json")
    with TestDriver(app) as driver:
        driver.pipe("names", "u1", "Ada")
        assert dict(driver.table("people").items()) == {"u1": {"name": "Ada"}}
        assert driver.read("src-people-changelog") == [("u1", {"name": "Ada"})]
        assert driver.dead_letters() == []


def test_to_table_after_a_key_change_repartitions_with_the_tables_codecs():
    app = App("src")
    lines = app.stream(app.topic("lines", key="int", value="str"))
    words = lines.flat_map(lambda line_no, line: [(w, line_no) for w in line.split()])
    words.to_table(name="last-line", key="str", value="int")
    with TestDriver(app) as driver:
        driver.pipe_many("lines", [(1, "to be"), (2, "or not to be")])
        assert driver.dead_letters() == []
        assert dict(driver.table("last-line").items()) == {"to": 2, "be": 2, "or": 2, "not": 2}
        assert driver.read("src-last-line-by-key-repartition") == [
            ("to", 1),
            ("be", 1),
            ("or", 2),
            ("not", 2),
            ("to", 2),
            ("be", 2),
        ]


# --- table-table joins: the Kafka Streams sequence --------------------------------------


def table_join_app(how: str) -> App:
    app = App("ttj")
    table1 = app.table_of(app.topic("topic1", key="int", value="str"), name="table1")
    table2 = app.table_of(app.topic("topic2", key="int", value="str"), name="table2")
    join = {"inner": table1.join, "left": table1.left_join, "outer": table1.outer_join}[how]
    join(table2, plus, name="joined", value="str").to_stream().to(
        app.topic("output", key="int", value="str")
    )
    return app


# Each step: (topic, records piped), then the expected output and the expected result table.
TABLE_JOIN_STEPS = [
    ("topic1", [(0, "X0"), (1, "X1"), (None, "SomeVal")]),
    ("topic2", [(0, "Y0"), (1, "Y1"), (None, "AnotherVal")]),
    ("topic1", [(k, f"XX{k}") for k in KEYS]),
    ("topic2", [(k, f"YY{k}") for k in KEYS]),
    ("topic1", [(k, f"XXX{k}") for k in KEYS]),
    ("topic2", [(0, None), (1, None)]),
    ("topic1", [(k, f"XXXX{k}") for k in KEYS]),
    ("topic1", [(k, None) for k in KEYS]),
    ("topic2", [(2, None)]),
    ("topic2", [(4, "Y4")]),
]

EXPECTED_OUTPUT = {
    "inner": [
        [],
        [(0, "X0+Y0"), (1, "X1+Y1")],
        [(0, "XX0+Y0"), (1, "XX1+Y1")],
        [(k, f"XX{k}+YY{k}") for k in KEYS],
        [(k, f"XXX{k}+YY{k}") for k in KEYS],
        [(0, None), (1, None)],
        [(2, "XXXX2+YY2"), (3, "XXXX3+YY3")],
        [(2, None), (3, None)],
        [],
        [],
    ],
    "left": [
        [(0, "X0+None"), (1, "X1+None")],
        [(0, "X0+Y0"), (1, "X1+Y1")],
        [(0, "XX0+Y0"), (1, "XX1+Y1"), (2, "XX2+None"), (3, "XX3+None")],
        [(k, f"XX{k}+YY{k}") for k in KEYS],
        [(k, f"XXX{k}+YY{k}") for k in KEYS],
        [(0, "XXX0+None"), (1, "XXX1+None")],
        [(0, "XXXX0+None"), (1, "XXXX1+None"), (2, "XXXX2+YY2"), (3, "XXXX3+YY3")],
        [(0, None), (1, None), (2, None), (3, None)],
        [],
        [],
    ],
    "outer": [
        [(0, "X0+None"), (1, "X1+None")],
        [(0, "X0+Y0"), (1, "X1+Y1")],
        [(0, "XX0+Y0"), (1, "XX1+Y1"), (2, "XX2+None"), (3, "XX3+None")],
        [(k, f"XX{k}+YY{k}") for k in KEYS],
        [(k, f"XXX{k}+YY{k}") for k in KEYS],
        [(0, "XXX0+None"), (1, "XXX1+None")],
        [(0, "XXXX0+None"), (1, "XXXX1+None"), (2, "XXXX2+YY2"), (3, "XXXX3+YY3")],
        [(0, None), (1, None), (2, "None+YY2"), (3, "None+YY3")],
        [(2, None)],
        [(4, "None+Y4")],
    ],
}


def expected_table(how: str, left: dict, right: dict) -> dict:
    keys = {
        "inner": left.keys() & right.keys(),
        "left": left.keys(),
        "outer": left.keys() | right.keys(),
    }[how]
    return {k: plus(left.get(k), right.get(k)) for k in keys}


@pytest.mark.parametrize("how", ["inner", "left", "outer"])
def test_table_table_join_follows_every_update_of_either_side(how):
    left: dict = {}
    right: dict = {}
    with TestDriver(table_join_app(how)) as driver:
        for step, ((topic, records), expected) in enumerate(
            zip(TABLE_JOIN_STEPS, EXPECTED_OUTPUT[how], strict=True)
        ):
            driver.pipe_many(topic, records)
            side = left if topic == "topic1" else right
            for key, value in records:
                if key is None:
                    continue
                if value is None:
                    side.pop(key, None)
                else:
                    side[key] = value
            assert driver.read("output") == expected, f"step {step}"
            assert dict(driver.table("joined").items()) == expected_table(how, left, right), (
                f"step {step}"
            )
        assert driver.dead_letters() == []


def test_table_table_join_results_survive_in_the_changelog():
    with TestDriver(table_join_app("inner")) as driver:
        driver.pipe("topic1", 7, "X7")
        driver.pipe("topic2", 7, "Y7")
        driver.pipe("topic2", 7, None)
        assert driver.read("ttj-joined-changelog") == [(7, "X7+Y7"), (7, None)]
        assert dict(driver.table("table1").items()) == {7: "X7"}
        assert dict(driver.table("table2").items()) == {}


def test_table_joins_chain():
    app = App("chain")
    names = app.table_of(app.topic("names", value="str"), name="names")
    cities = app.table_of(app.topic("cities", value="str"), name="cities")
    ages = app.table_of(app.topic("ages", value="int"), name="ages")
    who_where = names.join(cities, lambda n, c: f"{n} in {c}", name="who-where", value="str")
    who_where.left_join(ages, lambda w, a: f"{w}, {a}", name="profile", value="str")
    with TestDriver(app) as driver:
        driver.pipe("names", "u1", "Ada")
        driver.pipe("ages", "u1", 36)
        assert dict(driver.table("profile").items()) == {}
        driver.pipe("cities", "u1", "Oslo")
        assert dict(driver.table("profile").items()) == {"u1": "Ada in Oslo, 36"}
        driver.pipe("ages", "u1", None)
        assert dict(driver.table("profile").items()) == {"u1": "Ada in Oslo, None"}
        driver.pipe("cities", "u1", None)
        assert dict(driver.table("profile").items()) == {}
        assert dict(driver.table("who-where").items()) == {}
        assert driver.read("chain-profile-changelog") == [
            ("u1", "Ada in Oslo, 36"),
            ("u1", "Ada in Oslo, None"),
            ("u1", None),
        ]


# --- table filter and map_values --------------------------------------------------------


def test_table_filter_deletes_keys_that_leave_it():
    app = App("flt")
    table = app.table_of(app.topic("topic1", value="int"), name="t1")
    table.filter(lambda k, v: v % 2 == 0, name="even").to_stream().to(
        app.topic("even-out", value="int")
    )
    table.filter_not(lambda k, v: v % 2 == 0, name="odd").to_stream().to(
        app.topic("odd-out", value="int")
    )
    with TestDriver(app) as driver:
        driver.pipe_many(
            "topic1", [("A", 1), ("B", 2), ("C", 3), ("D", 4), ("A", None), ("B", None)]
        )
        assert driver.read("even-out") == [("B", 2), ("D", 4), ("B", None)]
        assert driver.read("odd-out") == [("A", 1), ("C", 3), ("A", None)]
        driver.pipe_many("topic1", [("D", 5), ("D", 6), ("C", 8)])
        assert driver.read("even-out") == [("D", None), ("D", 6), ("C", 8)]
        assert driver.read("odd-out") == [("D", 5), ("D", None), ("C", None)]
        assert dict(driver.table("even").items()) == {"C": 8, "D": 6}
        assert dict(driver.table("odd").items()) == {}
        assert dict(driver.table("t1").items()) == {"C": 8, "D": 6}


def test_table_map_values_passes_deletes_through():
    app = App("mv")
    table = app.table_of(app.topic("topic1", value="int"), name="t1")
    even = table.filter(lambda k, v: v % 2 == 0, name="even")
    tens = even.map_values(lambda v: v * 10, name="tens", value="int")
    tens.to_stream().to(app.topic("out", value="int"))
    labels = table.map_values(lambda v: f"#{v}", name="labels", value="str")
    labels.to_stream().to(app.topic("labels-out", value="str"))
    with TestDriver(app) as driver:
        driver.pipe_many("topic1", [("A", 2), ("B", 3), ("A", 4)])
        driver.pipe("topic1", "A", 5)  # leaves the filter: deleted from both derived tables
        driver.pipe("topic1", "B", None)
        driver.pipe("topic1", "Z", None)
        assert driver.read("out") == [("A", 20), ("A", 40), ("A", None)]
        assert driver.read("labels-out") == [
            ("A", "#2"),
            ("B", "#3"),
            ("A", "#4"),
            ("A", "#5"),
            ("B", None),
        ]
        assert dict(driver.table("tens").items()) == {}
        assert dict(driver.table("labels").items()) == {"A": "#5"}


# --- branch, merge, flat_map --------------------------------------------------------------


def branch_app(*predicates, default: bool) -> tuple[App, int]:
    app = App("br")
    branches = app.stream(app.topic("topic", key="int", value="str")).branch(
        *predicates, default=default
    )
    for index, branch in enumerate(branches):
        branch.to(app.topic(f"branch-{index}", key="int", value="str"))
    return app, len(branches)


def is_even(k, v):
    return k % 2 == 0


def is_multiple_of_three(k, v):
    return k % 3 == 0


def is_odd(k, v):
    return k % 2 != 0


def test_branch_sends_each_record_to_the_first_matching_branch():
    app, count = branch_app(is_even, is_multiple_of_three, is_odd, default=False)
    assert count == 3
    with TestDriver(app) as driver:
        driver.pipe_many("topic", [(k, f"V{k}") for k in range(1, 7)])
        outputs = [driver.read(f"branch-{i}") for i in range(count)]
    assert outputs == [
        [(2, "V2"), (4, "V4"), (6, "V6")],
        [(3, "V3")],
        [(1, "V1"), (5, "V5")],
    ]


def test_branch_with_composed_predicates():
    def multiple_of_four(k, v):
        return k % 4 == 0

    app, count = branch_app(
        lambda k, v: multiple_of_four(k, v) and is_multiple_of_three(k, v),
        lambda k, v: is_even(k, v) and is_multiple_of_three(k, v),
        lambda k, v: multiple_of_four(k, v) or is_multiple_of_three(k, v),
        default=False,
    )
    with TestDriver(app) as driver:
        driver.pipe_many("topic", [(k, f"V{k}") for k in range(1, 14)])
        outputs = [[k for k, _ in driver.read(f"branch-{i}")] for i in range(count)]
    assert outputs == [[12], [6], [3, 4, 8, 9]]


def test_branch_without_default_drops_unmatched_records_and_with_default_keeps_them():
    app, count = branch_app(is_even, is_multiple_of_three, default=False)
    assert count == 2
    with TestDriver(app) as driver:
        driver.pipe_many("topic", [(k, f"V{k}") for k in range(1, 7)])
        assert [[k for k, _ in driver.read(f"branch-{i}")] for i in range(count)] == [
            [2, 4, 6],
            [3],
        ]
        assert driver.dead_letters() == []

    app, count = branch_app(is_even, is_multiple_of_three, default=True)
    assert count == 3
    with TestDriver(app) as driver:
        driver.pipe_many("topic", [(k, f"V{k}") for k in range(1, 7)])
        assert [[k for k, _ in driver.read(f"branch-{i}")] for i in range(count)] == [
            [2, 4, 6],
            [3],
            [1, 5],
        ]


def test_branch_needs_a_predicate():
    app = App("br")
    with pytest.raises(ValueError, match="at least one predicate"):
        app.stream(app.topic("topic")).branch()
    with pytest.raises(TypeError, match="branch predicate must be callable"):
        app.stream(app.topic("topic")).branch(is_even, "not callable")  # type: ignore[arg-type]


def test_flat_map_replaces_each_record_by_its_pairs():
    app = App("fm")
    stream = app.stream(app.topic("topic", key="int", value="str"))
    stream.flat_map(lambda k, v: [(str(k * 10 + i), v) for i in range(k)]).to(
        app.topic("out", key="str", value="str")
    )
    with TestDriver(app) as driver:
        driver.pipe_many("topic", [(k, f"V{k}") for k in KEYS])
        assert driver.read("out") == [
            ("10", "V1"),
            ("20", "V2"),
            ("21", "V2"),
            ("30", "V3"),
            ("31", "V3"),
            ("32", "V3"),
        ]


def test_flat_map_then_count_repartitions_by_the_new_keys():
    app = App("wc")
    lines = app.stream(app.topic("lines", value="str"))
    words = lines.flat_map(lambda k, line: [(w, 1) for w in line.lower().split()])
    words.group_by_key(value="int").count(name="word-counts").to_stream().to(
        app.topic("counts", value="int")
    )
    text = [
        ("l1", "the cat sat"),
        ("l2", "the dog sat"),
        ("l3", "The end"),
    ] + [(f"m{i}", f"w{i % 5} w{i % 3}") for i in range(30)]
    expected: dict[str, int] = {}
    for _, line in text:
        for word in line.lower().split():
            expected[word] = expected.get(word, 0) + 1
    with TestDriver(app) as driver:
        driver.pipe_many("lines", text)
        assert dict(driver.table("word-counts").items()) == expected
        updates = driver.read("counts")
        repartitioned = driver.read("wc-group-by-key-repartition")
        assert driver.dead_letters() == []
    assert updates[:8] == [
        ("the", 1),
        ("cat", 1),
        ("sat", 1),
        ("the", 2),
        ("dog", 1),
        ("sat", 2),
        ("the", 3),
        ("end", 1),
    ]
    assert len(updates) == sum(expected.values()) == len(repartitioned)
    assert [k for k, _ in repartitioned] == [w for _, line in text for w in line.lower().split()]


def test_merge_interleaves_records_in_the_order_they_were_written():
    app = App("mg")
    streams = [app.stream(app.topic(f"topic{i}", value="str")) for i in range(1, 5)]
    merged = streams[0].merge(streams[1]).merge(streams[2].merge(streams[3]))
    merged.to(app.topic("out", value="str"))
    with TestDriver(app) as driver:
        driver.pipe("topic1", "A", "aa")
        driver.pipe("topic2", "B", "bb")
        driver.pipe("topic4", "D", "dd")
        driver.pipe("topic3", "C", "cc")
        driver.pipe("topic1", "A", "aaa")
        assert driver.read("out") == [
            ("A", "aa"),
            ("B", "bb"),
            ("D", "dd"),
            ("C", "cc"),
            ("A", "aaa"),
        ]
    with pytest.raises(TypeError, match="merge needs a Stream"):
        streams[0].merge("topic2")  # type: ignore[arg-type]


def test_stream_of_several_topics_reads_them_all():
    app = App("multi")
    web, mobile = app.topic("web", value="json"), app.topic("mobile", value="json")
    clicks = app.stream([web, mobile], name="all-clicks")
    clicks.to(app.topic("clicks", value="json"))
    clicks.group_by_key().count(name="clicks-per-user")
    with TestDriver(app) as driver:
        driver.pipe("web", "u1", {"n": 1})
        driver.pipe("mobile", "u1", {"n": 2})
        driver.pipe("mobile", "u2", {"n": 3})
        driver.pipe("web", "u1", {"n": 4})
        assert driver.read("clicks") == [
            ("u1", {"n": 1}),
            ("u1", {"n": 2}),
            ("u2", {"n": 3}),
            ("u1", {"n": 4}),
        ]
        assert dict(driver.table("clicks-per-user").items()) == {"u1": 3, "u2": 1}
    assert {s.topic.name for sub in driver.topology.subtopologies for s in sub.sources} == {
        "web",
        "mobile",
        "multi-group-by-key-repartition",
    }
    with pytest.raises(ValueError, match="at least one topic"):
        app.stream([])


# --- joins after a key change --------------------------------------------------------------


def orders_app(name: str | None = None) -> App:
    app = App("shop")
    customers = app.table_of(app.topic("customers", value="json"), name="customers")
    orders = app.stream(app.topic("orders", value="json"))
    by_customer = orders.select_key(lambda order_id, order: order["customer"])
    by_customer.join(
        customers, lambda order, customer: {**order, "city": customer["city"]}, name=name
    ).to(app.topic("enriched"))
    return app


CUSTOMERS = [(f"c{i}", {"city": f"city-{i}"}) for i in range(12)]
ORDERS = [(f"o{i}", {"order": i, "customer": f"c{i * 5 % 14}"}) for i in range(20)]


def expected_enriched() -> list:
    cities = dict(CUSTOMERS)
    return [
        (order["customer"], {**order, "city": cities[order["customer"]]["city"]})
        for _, order in ORDERS
        if order["customer"] in cities
    ]


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        (None, "shop-join-customers-by-key-repartition"),
        ("enrich", "shop-enrich-by-key-repartition"),
    ],
)
def test_a_join_after_select_key_repartitions_the_stream(name, topic):
    app = orders_app(name)
    with TestDriver(app) as driver:
        assert [t.name for t in driver.topology.internal_topics] == [topic]
        driver.pipe_many("customers", CUSTOMERS)
        driver.pipe_many("orders", ORDERS)
        assert driver.read("enriched") == expected_enriched()
        assert driver.read(topic) == [(order["customer"], order) for _, order in ORDERS]
        assert driver.dead_letters() == []


def test_a_join_without_a_key_change_does_not_repartition():
    app = App("shop")
    customers = app.table_of(app.topic("customers", value="json"), name="customers")
    app.stream(app.topic("orders", value="json")).join(customers, lambda o, c: [o, c]).to(
        app.topic("enriched")
    )
    assert app.topology().internal_topics == []
    assert len(app.topology().subtopologies) == 1


def test_two_joins_of_one_rekeyed_stream_share_its_repartition_topic():
    app = App("shop")
    customers = app.table_of(app.topic("customers", value="json"), name="customers")
    tiers = app.table_of(app.topic("tiers", value="str"), name="tiers")
    orders = app.stream(app.topic("orders", value="json"))
    by_customer = orders.select_key(lambda order_id, order: order["customer"])
    by_customer.join(customers, lambda o, c: c["city"], name="with-city").to(
        app.topic("cities", value="str")
    )
    by_customer.left_join(tiers, lambda o, tier: tier or "basic", name="with-tier").to(
        app.topic("tiers-out", value="str")
    )
    with TestDriver(app) as driver:
        assert [t.name for t in driver.topology.internal_topics] == [
            "shop-with-city-by-key-repartition"
        ]
        driver.pipe_many("customers", [("c1", {"city": "Oslo"}), ("c2", {"city": "Rome"})])
        driver.pipe("tiers", "c2", "gold")
        driver.pipe_many(
            "orders",
            [("o1", {"customer": "c1"}), ("o2", {"customer": "c2"}), ("o3", {"customer": "c3"})],
        )
        assert driver.read("cities") == [("c1", "Oslo"), ("c2", "Rome")]
        assert driver.read("tiers-out") == [("c1", "basic"), ("c2", "gold"), ("c3", "basic")]
        assert driver.read("shop-with-city-by-key-repartition") == [
            ("c1", {"customer": "c1"}),
            ("c2", {"customer": "c2"}),
            ("c3", {"customer": "c3"}),
        ]


def test_two_rekeyed_streams_can_join_the_same_table():
    app = App("shop")
    customers = app.table_of(app.topic("customers", value="str"), name="customers")
    for source in ("web-orders", "shop-orders"):
        keyed = app.stream(app.topic(source, value="json")).select_key(lambda k, v: v["c"])
        keyed.join(customers, lambda order, name: f"{order['n']}:{name}").to(
            app.topic(f"{source}-out", value="str")
        )
    with TestDriver(app) as driver:
        driver.pipe("customers", "c1", "Ada")
        driver.pipe("web-orders", "o1", {"c": "c1", "n": 1})
        driver.pipe("shop-orders", "o2", {"c": "c1", "n": 2})
        assert driver.read("web-orders-out") == [("c1", "1:Ada")]
        assert driver.read("shop-orders-out") == [("c1", "2:Ada")]


def test_a_join_after_a_key_change_matches_the_tables_partitions():
    # The repartition topic exists to co-partition the stream with the table.
    app = App("shop")
    customers = app.topic("customers", value="str", partitions=4)
    table = app.table_of(customers, name="customers")
    orders = app.stream(app.topic("orders", value="json"))  # the app's 8 partitions
    orders.select_key(lambda k, v: v["c"]).join(table, lambda o, name: name).to(
        app.topic("out", value="str")
    )
    with TestDriver(app) as driver:
        driver.pipe_many("customers", [(f"c{i}", f"name-{i}") for i in range(8)])
        driver.pipe_many("orders", [(f"o{i}", {"c": f"c{i}"}) for i in range(8)])
        assert driver.read("out") == [(f"c{i}", f"name-{i}") for i in range(8)]


def test_a_join_after_a_key_change_to_the_tables_key_type():
    app = App("shop")
    customers = app.table_of(app.topic("customers", key="int", value="str"), name="customers")
    orders = app.stream(app.topic("orders", value="json"))
    orders.select_key(lambda order_id, order: order["customer_id"]).join(
        customers, lambda order, name: f"{order['n']}:{name}"
    ).to(app.topic("out", key="int", value="str"))
    with TestDriver(app) as driver:
        driver.pipe("customers", 7, "Ada")
        driver.pipe("orders", "o1", {"customer_id": 7, "n": 1})
        assert driver.dead_letters() == []
        assert driver.read("out") == [(7, "1:Ada")]


def test_a_merge_with_a_rekeyed_stream_is_repartitioned_before_a_join():
    app = App("shop")
    customers = app.table_of(app.topic("customers", value="str"), name="customers")
    rekeyed = app.stream(app.topic("by-order", value="json")).select_key(lambda k, v: v["c"])
    keyed = app.stream(app.topic("by-customer", value="json"))
    rekeyed.merge(keyed).join(customers, lambda v, name: f"{v['n']}:{name}", name="named").to(
        app.topic("out", value="str")
    )
    with TestDriver(app) as driver:
        assert [t.name for t in driver.topology.internal_topics] == [
            "shop-named-by-key-repartition"
        ]
        driver.pipe_many("customers", [(f"c{i}", f"name-{i}") for i in range(6)])
        driver.pipe_many("by-order", [(f"o{i}", {"c": f"c{i}", "n": i}) for i in range(6)])
        driver.pipe("by-customer", "c5", {"n": 50})
        assert driver.read("out") == [(f"c{i}", f"{i}:name-{i}") for i in range(6)] + [
            ("c5", "50:name-5")
        ]


# --- build-time errors ---------------------------------------------------------------------


def mismatched_stream_table_app() -> App:
    app = App("copart")
    table = app.table_of(app.topic("b", partitions=8), name="b-table")
    app.stream(app.topic("a", partitions=4)).join(table, lambda x, y: [x, y]).to("out")
    return app


def mismatched_table_table_app() -> App:
    app = App("copart")
    left = app.table_of(app.topic("a", partitions=4), name="a-table")
    right = app.table_of(app.topic("b", partitions=8), name="b-table")
    left.join(right, lambda x, y: [x, y], name="ab")
    return app


@pytest.mark.parametrize("make_app", [mismatched_stream_table_app, mismatched_table_table_app])
def test_joining_topics_of_different_partition_counts_fails_when_the_app_is_built(make_app):
    for build in (lambda app: app.topology(), TestDriver):
        with pytest.raises(ValueError, match="not co-partitioned") as raised:
            build(make_app())
        assert "a (4 partitions)" in str(raised.value)
        assert "b (8 partitions)" in str(raised.value)


def test_topics_with_the_apps_default_partition_count_are_copartitioned():
    app = App("copart", partitions=4)
    table = app.table_of(app.topic("b"), name="b-table")
    app.stream(app.topic("a", partitions=4)).join(table, lambda x, y: [x, y]).to("out")
    (sub,) = app.topology().subtopologies
    assert [s.topic.name for s in sub.sources] == ["b", "a"]


def test_retry_is_refused_on_a_subtopology_of_several_sources():
    def app_with(policy) -> App:
        app = App("retry")
        table = app.table_of(app.topic("customers"), name="customers")
        orders = app.stream(app.topic("orders"), on_error=policy)
        orders.join(table, lambda o, c: [o, c]).to(app.topic("out"))
        return app

    with pytest.raises(ValueError, match=r"Retry is not supported.*customers, orders"):
        app_with(Retry(attempts=2, backoff=0)).topology()
    with pytest.raises(ValueError, match="Retry is not supported"):
        TestDriver(app_with(Retry(attempts=2, backoff=0)))
    for policy in (DeadLetter(), Stop()):
        assert len(app_with(policy).topology().subtopologies) == 1


def test_a_stream_given_where_a_table_is_expected_is_refused():
    # A stream joins a Table; joining a Stream is a stream-stream join, which needs more
    # than a table join's arguments (it is refused with a TypeError that says so).
    app = App("ss")
    left = app.stream(app.topic("left"))
    right = app.stream(app.topic("right"))
    for join in (left.join, left.left_join):
        with pytest.raises(TypeError, match="stream-stream join"):
            join(right, lambda x, y: [x, y])
    table = app.table_of(app.topic("t"), name="t")
    with pytest.raises(TypeError, match="a table joins a Table, got Stream"):
        table.join(right, lambda x, y: [x, y])
    with pytest.raises(TypeError, match="joiner must be callable"):
        left.join(table, "not callable")  # type: ignore[arg-type]


def test_joining_a_windowed_table_is_refused():
    app = App("win")
    windowed = (
        app.stream(app.topic("clicks"))
        .group_by_key()
        .windowed_by(tumbling(60))
        .count(name="per-minute")
    )
    table = app.table_of(app.topic("users"), name="users")
    stream = app.stream(app.topic("views"))
    with pytest.raises(TypeError, match="windowed table 'per-minute'"):
        stream.join(windowed, lambda x, y: [x, y])
    with pytest.raises(TypeError, match="windowed table 'per-minute'"):
        stream.left_join(windowed, lambda x, y: [x, y])
    with pytest.raises(TypeError, match="windowed table 'per-minute'"):
        table.join(windowed, lambda x, y: [x, y])
    with pytest.raises(TypeError, match="windowed table 'per-minute'"):
        windowed.outer_join(table, lambda x, y: [x, y])
    with pytest.raises(TypeError, match="windowed table 'per-minute'"):
        windowed.filter(lambda k, v: True)


# --- failures: all of a record's effects, or none ---------------------------------------


def test_a_joiner_that_raises_dead_letters_the_stream_record_and_emits_nothing_of_it():
    app = App("shop")
    customers = app.table_of(app.topic("customers", value="json"), name="customers")
    orders = app.stream(app.topic("orders", value="json"))
    orders.to(app.topic("audit", value="json"))  # a first branch, before the join

    def enrich(order, customer):
        return {**order, "per_item": order["total"] // order["items"]}

    orders.join(customers, enrich, name="enrich").to(app.topic("enriched"))
    orders.to(app.topic("copy", value="json"))  # a last branch, after the join
    with TestDriver(app) as driver:
        driver.pipe("customers", "c1", {"city": "Oslo"})
        driver.pipe("orders", "c1", {"total": 10, "items": 2})
        driver.pipe("orders", "c1", {"total": 10, "items": 0}, headers={"trace": "t-2"})
        driver.pipe("orders", "c1", {"total": 9, "items": 3})
        (letter,) = driver.dead_letters()
        assert driver.read("enriched") == [
            ("c1", {"total": 10, "items": 2, "per_item": 5}),
            ("c1", {"total": 9, "items": 3, "per_item": 3}),
        ]
        assert driver.read("audit") == [
            ("c1", {"total": 10, "items": 2}),
            ("c1", {"total": 9, "items": 3}),
        ]
        assert driver.read("copy") == [
            ("c1", {"total": 10, "items": 2}),
            ("c1", {"total": 9, "items": 3}),
        ]
    assert (letter.key, letter.value) == (b"c1", b'{"total":10,"items":0}')
    assert letter.step == "enrich" and letter.source_topic == "orders"
    assert letter.exception == "builtins.ZeroDivisionError"
    assert ("trace", b"t-2") in letter.headers


def test_a_table_joiner_that_raises_leaves_both_tables_as_they_were():
    app = App("ttj")
    prices = app.table_of(app.topic("prices", value="int"), name="prices")
    stock = app.table_of(app.topic("stock", value="int"), name="stock")
    value = prices.join(stock, lambda price, n: 100 // n * price, name="value", value="int")
    value.to_stream().to(app.topic("values", value="int"))
    with TestDriver(app) as driver:
        driver.pipe("prices", "apple", 3)
        driver.pipe("stock", "apple", 50)
        driver.pipe("stock", "apple", 0)  # the joiner divides by zero
        (letter,) = driver.dead_letters()
        assert driver.read("values") == [("apple", 6)]
        assert dict(driver.table("stock").items()) == {"apple": 50}
        assert dict(driver.table("value").items()) == {"apple": 6}
        assert driver.read("ttj-stock-changelog") == [("apple", 50)]
        driver.pipe("stock", "apple", 25)
        assert driver.read("values") == [("apple", 12)]
    assert (letter.key, letter.value, letter.step) == (b"apple", (0).to_bytes(8, "big"), "value")
