"""Table views, metrics and health over HTTP, against real worker processes."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streamflow.client import Client, ClientError, KeyNotFound
from tests.integration.support import AppRun, WorkerProcess, expected_totals, generate

pytestmark = pytest.mark.kafka

TABLE = "user-spending-store"


def _client(worker: WorkerProcess) -> Client:
    return Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)


def _wait_for_table(client: Client, expected: dict[str, Decimal], timeout: float = 120) -> None:
    """Until a full scan of the table through ``client`` equals ``expected``."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Decimal] = {}
    while time.monotonic() < deadline:
        try:
            seen = {k: Decimal(v) for k, v in client.items(TABLE, page_size=200)}
        except ClientError:
            seen = {}
        if seen == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"table never reached the expected totals; last scan: {seen}")


@contextmanager
def _serving(
    broker: str, tmp_path, orders: list[dict]
) -> Iterator[tuple[AppRun, Client, dict[str, Decimal]]]:
    """A user-spending worker that has processed ``orders``: the run, a client, the totals."""
    run = AppRun(broker, tmp_path / "state")
    totals = expected_totals(orders)[0]
    run.produce_orders(orders)
    worker = run.worker().start()
    client = _client(worker)
    try:
        _wait_for_table(client, totals)
        yield run, client, totals
    finally:
        assert worker.stop() == 0


def _get(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), orjson.loads(exc.read())


def _metrics(client: Client) -> dict[tuple[str, tuple], float]:
    samples = {}
    for family in text_string_to_metric_families(client.metrics()):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _metric_sum(samples: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all((k, v) in sample_labels for k, v in labels.items())
    )


def test_lookups_scans_views_and_errors(broker, tmp_path):
    with _serving(broker, tmp_path, generate(1200, 30, seed=41)) as (_, client, totals):
        # Every key, looked up one by one: the exact decimal total, as a string.
        for user, total in totals.items():
            answer = client.lookup(TABLE, user)
            assert answer["value"] == str(total)
            assert Decimal(answer["value"]).as_tuple().exponent == -2  # scale kept
        # Pages come in key order and together hold every key once.
        keys, after = [], None
        while True:
            page = client.page(TABLE, limit=7, after=after)
            assert len(page["items"]) <= 7
            keys += [item["key"] for item in page["items"]]
            after = page["next"]
            if after is None:
                break
        assert keys == sorted(totals)
        prefixed = dict(client.items(TABLE, prefix="user-01"))
        assert prefixed == {u: str(t) for u, t in totals.items() if u.startswith("user-01")}
        # Missing key: 404 with a JSON error body; a bad cursor or limit: 400.
        base = client.url
        status, _, body = _get(f"{base}/tables/{TABLE}/nobody")
        assert status == 404 and "nobody" in body["error"]
        with pytest.raises(KeyNotFound):
            client.get(TABLE, "nobody")
        assert client.get(TABLE, "nobody", default=None) is None
        assert _get(f"{base}/tables/no-such-table/x")[0] == 404
        assert _get(f"{base}/tables/{TABLE}?limit=abc")[0] == 400
        assert _get(f"{base}/tables/{TABLE}?after=%25%25")[0] == 400
        # The table list names the worker holding the partitions.
        (described,) = client.tables()
        assert described["name"] == TABLE and described["value_type"] == "decimal"
        assert described["workers"] == {base: list(range(described["partitions"]))}
        # The app's custom view reads the table too.
        status, _, top = _get(f"{base}/views/top-spenders?n=3")
        best = sorted(totals.items(), key=lambda kv: kv[1], reverse=True)[:3]
        assert status == 200
        assert [(t["user_id"], t["total"]) for t in top] == [(u, str(t)) for u, t in best]
        # OpenAPI, health and readiness.
        status, _, spec = _get(f"{base}/openapi.json")
        assert status == 200 and "/tables/{table}/{key}" in spec["paths"]
        assert "/views/top-spenders" in spec["paths"]
        assert _get(f"{base}/health")[0] == 200
        assert _get(f"{base}/ready")[2]["ready"] is True


def test_int_keys_parse_or_answer_400(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path="tests/integration/apps/order_buckets.py")
    orders = generate(300, 10, seed=43)
    buckets: dict[int, int] = {}
    for order in orders:
        bucket = int(Decimal(order["amount"])) // 100
        buckets[bucket] = buckets.get(bucket, 0) + 1
    run.produce_orders(orders)
    worker = run.worker().start()
    client = _client(worker)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                seen = dict(client.items("orders-per-bucket"))
            except ClientError:
                seen = {}
            if seen == buckets:
                break
            time.sleep(0.5)
        assert seen == buckets
        bucket = next(iter(buckets))
        assert client.get("orders-per-bucket", bucket) == buckets[bucket]
        status, _, body = _get(f"{client.url}/tables/orders-per-bucket/{bucket}")
        assert status == 200 and body["key"] == bucket
        status, _, body = _get(f"{client.url}/tables/orders-per-bucket/not-a-number")
        assert status == 400 and "not-a-number" in body["error"]
    finally:
        assert worker.stop() == 0


def test_metrics_parse_and_lag_reaches_zero(broker, tmp_path):
    orders = generate(800, 20, seed=45)
    paid = sum(1 for o in orders if o["status"] == "PAID")
    with _serving(broker, tmp_path, orders) as (run, client, _):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            samples = _metrics(client)
            lag = _metric_sum(samples, "streamflow_consumer_lag_records")
            consumed = _metric_sum(
                samples, "streamflow_records_consumed_total", topic=run.orders_topic
            )
            if lag == 0 and consumed == len(orders):
                break
            time.sleep(0.5)
        assert consumed == len(orders)
        assert lag == 0
        lag_series = [k for k in samples if k[0] == "streamflow_consumer_lag_records"]
        assert {dict(labels)["topic"] for _, labels in lag_series} == {
            run.orders_topic,
            f"{run.app_id}-orders-by-user-repartition",
        }
        assert (
            _metric_sum(samples, "streamflow_records_produced_total", topic=run.summary_topic)
            == paid
        )
        assert _metric_sum(samples, "streamflow_worker_up") == 1
        assert _metric_sum(samples, "streamflow_worker_ready") == 1
        assert _metric_sum(samples, "streamflow_assigned_partitions", topic=run.orders_topic) == 8
        assert _metric_sum(samples, "streamflow_commit_seconds_count") > 0
        assert _metric_sum(samples, "streamflow_rebalances_total") >= 1
        assert _metric_sum(samples, "streamflow_table_keys", table=TABLE) > 0
        # An undecodable record is counted as a decode error and a dead letter.
        run.send_raw(run.orders_topic, b"not avro", key=b"bad-order")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            samples = _metrics(client)
            if _metric_sum(samples, "streamflow_decode_errors_total") == 1:
                break
            time.sleep(0.5)
        assert _metric_sum(samples, "streamflow_decode_errors_total", topic=run.orders_topic) == 1
        assert _metric_sum(samples, "streamflow_dead_letters_total", step="decode") == 1


def test_any_worker_answers_every_key(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state")
    orders = generate(1500, 40, seed=47)
    totals = expected_totals(orders)[0]
    run.produce_orders(orders)
    workers = [run.worker().start(), run.worker().start()]
    clients = [_client(w) for w in workers]
    try:
        # Both workers hold partitions of the table before the checks start.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                owners = clients[0].tables()[0]["workers"]
            except ClientError:
                owners = {}
            if len(owners) == 2 and all(c.ready() for c in clients):
                break
            time.sleep(0.5)
        assert set(owners) == {c.url for c in clients}, owners
        for client in clients:
            _wait_for_table(client, totals)
        for user, total in totals.items():
            answers = [client.lookup(TABLE, user) for client in clients]
            assert [a["value"] for a in answers] == [str(total)] * 2, user
            assert answers[0]["partition"] == answers[1]["partition"]
    finally:
        for worker in workers:
            assert worker.stop() == 0


def test_cli_table_get_and_list(broker, tmp_path):
    with _serving(broker, tmp_path, generate(300, 5, seed=49)) as (run, client, totals):
        user = sorted(totals)[0]
        result = run.cli("table", "get", run.app_path, TABLE, user, "--url", client.url)
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout.decode().strip() == str(totals[user])
        result = run.cli("table", "list", run.app_path, TABLE, "--url", client.url)
        lines = [line.split("\t") for line in result.stdout.decode().splitlines()]
        assert lines == [[u, str(t)] for u, t in sorted(totals.items())]
        result = run.cli("table", "get", run.app_path, TABLE, "nobody", "--url", client.url)
        assert result.returncode == 1 and b"nobody" in result.stderr
        assert b"Traceback" not in result.stderr
        result = run.cli("table", "get", run.app_path, "nope", "x", "--url", client.url)
        assert result.returncode == 2 and b"no table 'nope'" in result.stderr
    # With no worker running, the CLI explains what to do instead of a traceback.
    result = run.cli("table", "get", run.app_path, TABLE, "x", "--url", client.url, timeout=120)
    assert result.returncode == 1
    assert b"streamflow worker" in result.stderr and b"Traceback" not in result.stderr
