"""``streamflow dlq`` against real workers: inspect dead letters, replay them exactly once."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from streamflow.cli.dlq import replay_id
from streamflow.codecs import AvroCodec
from streamflow.runtime.admin import ensure_topics
from streamflow.runtime.dead_letters import REPLAYED_FROM
from tests.integration.support import ROOT, AppRun, check_summary, generate

pytestmark = pytest.mark.kafka


def _paid(orders: list[dict]) -> int:
    return sum(1 for o in orders if o["status"] == "PAID")


def _send_raw(broker: str, topic: str, records: list[tuple[bytes, bytes, list]]) -> list:
    """Produce ``(key, value, headers)`` as they are; return each record's (partition, offset)."""

    async def send() -> list:
        producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
        await producer.start()
        try:
            sent = []
            for key, value, headers in records:
                meta = await producer.send_and_wait(topic, value, key=key, headers=headers)
                sent.append((meta.partition, meta.offset))
            return sent
        finally:
            await producer.stop()

    return asyncio.run(send())


def _dead_letters_of(run: AppRun, bad: list[tuple[bytes, bytes, list]], good: list[dict]):
    """Run a worker over ``good`` orders and ``bad`` raw records until all are handled."""
    run.produce_orders(good)
    offsets = _send_raw(run.broker, run.orders_topic, bad)
    worker = run.worker().start()
    try:
        summary = run.wait_for_records(run.summary_topic, _paid(good))
        assert len(summary) == _paid(good), worker.log()[-3000:]
        letters = run.wait_for_records(f"{run.app_id}-dlq", len(bad), key="bytes", value="bytes")
        assert len(letters) == len(bad), worker.log()[-3000:]
    except BaseException:
        worker.stop()
        raise
    return worker, offsets


def _cli_ok(run: AppRun, *args: str) -> str:
    result = run.cli(*args)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def _inspect_json(run: AppRun, *args: str) -> list[dict]:
    out = _cli_ok(run, "dlq", "inspect", run.app_path, "--json", *args)
    return [json.loads(line) for line in out.splitlines()]


def _by_address(letters: list[dict]) -> dict[str, dict]:
    """Dead letters by ``<topic>:<partition>:<offset>``, as the replayed-from header names them."""
    return {f"{x['dlq']['topic']}:{x['dlq']['partition']}:{x['dlq']['offset']}": x for x in letters}


def _raw(run: AppRun, topic: str) -> list[dict]:
    records = run.read(topic, key="bytes", value="bytes")
    for record in records:
        record["key"] = base64.b64decode(record["key"])
        record["value"] = base64.b64decode(record["value"])
    return records


def test_missing_dead_letter_topic_is_explained(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    for command in ("inspect", "replay"):
        result = run.cli("dlq", command, run.app_path)
        assert result.returncode == 1
        message = result.stderr.decode()
        assert f"dead-letter topic {run.app_id}-dlq of app '{run.app_id}' does not exist" in message
        assert "Traceback" not in message


def test_inspect_then_replay_to_a_side_topic_exactly_once(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    json_orders = generate(2, 2, seed=62)  # valid orders, but JSON where Avro is expected
    bad = [
        (o["order_id"].encode(), orjson.dumps(o), [("trace", f"t-{i}".encode())])
        for i, o in enumerate(json_orders)
    ]
    bad.append((b"garbage", b"\x00\xffnot an order\n", []))
    worker, offsets = _dead_letters_of(run, bad, generate(200, 5, seed=61))
    try:
        letters = _inspect_json(run)
    finally:
        assert worker.stop() == 0

    # Each dead letter names its source record and keeps its bytes.
    by_source = {(x["source"]["partition"], x["source"]["offset"]): x for x in letters}
    assert set(by_source) == set(offsets)
    for (key, value, headers), where in zip(bad, offsets, strict=True):
        letter = by_source[where]
        assert letter["source"]["topic"] == run.orders_topic
        assert letter["step"] == "decode"
        assert letter["exception"].endswith("DecodeError")
        assert letter["error"]
        assert letter["app"] == run.app_id
        assert letter["replayed"] is False
        assert letter["key"] == {"codec": "str", "decoded": key.decode()}
        assert letter["value"]["codec"] == "avro:streamflow.examples.OrderEvent"
        assert letter["value"]["bytes"] == len(value)
        assert bytes.fromhex(letter["value"]["hex"]) == value
        assert letter["headers"] == {k: v.decode() for k, v in headers}
        assert letter["time"] is not None

    text = _cli_ok(run, "dlq", "inspect", run.app_path)
    assert f"{run.orders_topic}[{offsets[2][0]}]@{offsets[2][1]}" in text
    assert "15 bytes, not decodable as avro:streamflow.examples.OrderEvent" in text
    assert r"escaped  \x00\xffnot an order\n" in text
    assert "hex      00ff6e6f7420616e206f726465720a" in text
    assert len(_inspect_json(run, "--limit", "2")) == 2

    side = f"retry-{run.run_id}"
    result = run.cli("dlq", "replay", run.app_path, "--to-topic", side)
    assert result.returncode == 1
    assert f"topic {side} does not exist; create it first" in result.stderr.decode()
    # Not auto-created by the failed replay: created now, with 3 partitions.
    assert asyncio.run(ensure_topics(broker, [(side, 3, {})])) == [side]

    dry = _cli_ok(run, "dlq", "replay", run.app_path, "--to-topic", side, "--dry-run")
    assert dry.splitlines()[0].startswith(f"would replay 3 dead letters from {run.app_id}-dlq")
    assert _raw(run, side) == []

    _crash_in_replay_transaction(run, side, letters)

    first = _cli_ok(run, "dlq", "replay", run.app_path, "--to-topic", side)
    assert first.splitlines() == [f"replayed 3 dead letters from {run.app_id}-dlq", f"  {side}: 3"]
    copies = _raw(run, side)
    assert len(copies) == len(bad), copies  # the crashed replay's record was aborted
    replayed_from = _by_address(letters)
    assert {c["headers"][REPLAYED_FROM] for c in copies} == set(replayed_from)
    for copy in copies:
        letter = replayed_from[copy["headers"].pop(REPLAYED_FROM)]
        where = (letter["source"]["partition"], letter["source"]["offset"])
        key, value, headers = bad[offsets.index(where)]
        assert (copy["key"], copy["value"]) == (key, value)
        assert copy["timestamp"] == letter["timestamp"]
        # The record's own headers are kept; the error headers are not.
        assert copy.get("headers", {}) == {k: v.decode() for k, v in headers}

    second = _cli_ok(run, "dlq", "replay", run.app_path, "--to-topic", side)
    assert second.splitlines() == [f"replayed 0 dead letters from {run.app_id}-dlq"]
    assert len(_raw(run, side)) == len(bad)
    assert all(letter["replayed"] for letter in _inspect_json(run))


def _crash_in_replay_transaction(run: AppRun, side: str, letters: list[dict]) -> None:
    """A replay that dies mid-transaction: a copy sent and the offsets staged, no commit."""
    offsets = {x["dlq"]["partition"]: x["dlq"]["offset"] + 1 for x in letters}
    script = """
import asyncio, json, sys
from aiokafka import AIOKafkaProducer, TopicPartition

async def main(broker, txn_id, side, dlq, offsets):
    producer = AIOKafkaProducer(bootstrap_servers=broker, transactional_id=txn_id)
    await producer.start()
    await producer.begin_transaction()
    await producer.send_and_wait(side, b"half-replayed", key=b"zombie")
    staged = {TopicPartition(dlq, int(p)): o for p, o in json.loads(offsets).items()}
    await producer.send_offsets_to_transaction(staged, txn_id)
    print("in transaction", flush=True)
    await asyncio.sleep(600)

asyncio.run(main(*sys.argv[1:]))
"""
    group = replay_id(run.app_id)
    zombie = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            run.broker,
            group,
            side,
            f"{run.app_id}-dlq",
            json.dumps(offsets),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert zombie.stdout.readline() == b"in transaction\n"
    finally:
        zombie.kill()
        zombie.wait()
    assert _raw(run, side) == []  # nothing of an open transaction is visible


def test_replayed_dead_letters_are_processed_once_the_app_reads_them(broker, tmp_path, monkeypatch):
    # Orders written with a newer schema version the app does not know yet.
    v2 = orjson.loads((ROOT / "schemas" / "order_event.avsc").read_bytes())
    v2["fields"].append({"name": "coupon", "type": ["null", "string"], "default": None})
    writer = AvroCodec.from_schema(v2)
    newer = generate(40, 5, seed=72)
    bad = [
        (o["order_id"].encode(), writer.encode(writer.from_json({**o, "coupon": "SPRING"})), [])
        for o in newer
    ]
    run = AppRun(broker, tmp_path / "state")
    older = generate(300, 5, seed=71)
    worker, _ = _dead_letters_of(run, bad, older)
    assert worker.stop() == 0
    letters = _inspect_json(run)
    assert len(letters) == len(newer)
    assert all(x["error"].startswith("unknown schema fingerprint") for x in letters), letters

    # The fix: deploy the new writer schema next to the app's own.
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "order_event.avsc").write_bytes((ROOT / "schemas" / "order_event.avsc").read_bytes())
    (schemas / "order_event_v2.avsc").write_bytes(orjson.dumps(v2))
    monkeypatch.setenv("STREAMFLOW_SCHEMAS_DIR", str(schemas))
    worker = run.worker().start()
    try:
        out = _cli_ok(run, "dlq", "replay", run.app_path)
        assert out.splitlines() == [
            f"replayed {len(newer)} dead letters from {run.app_id}-dlq",
            f"  {run.orders_topic}: {len(newer)}",
        ]
        paid = _paid(older) + _paid(newer)
        records = run.wait_for_records(run.summary_topic, paid)
        assert len(records) == paid, worker.log()[-3000:]
        check_summary(older + newer, records)

        again = _cli_ok(run, "dlq", "replay", run.app_path)
        assert again.splitlines() == [f"replayed 0 dead letters from {run.app_id}-dlq"]
        # Nothing replayed failed again, and each dead letter went back exactly once.
        assert len(run.read(f"{run.app_id}-dlq", key="bytes", value="bytes")) == len(newer)
        # Back in their source partition, bytes untouched.
        by_letter = _by_address(letters)
        replayed = [o for o in _raw(run, run.orders_topic) if REPLAYED_FROM in o.get("headers", {})]
        assert sorted(o["value"] for o in replayed) == sorted(value for _, value, _ in bad)
        for order in replayed:
            letter = by_letter[order["headers"][REPLAYED_FROM]]
            assert order["partition"] == letter["source"]["partition"]
            assert bytes.fromhex(letter["value"]["hex"]) == order["value"]
    finally:
        assert worker.stop() == 0
