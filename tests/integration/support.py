"""Helpers for integration tests: worker subprocesses, producing orders, reading topics."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import orjson

from streamflow.cli.consume import read_topic
from streamflow.codecs import DecimalCodec, StrCodec
from streamflow.runtime.worker import free_port
from streamflow.state import files as state_files
from streamflow.topics import Topic

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))

from generate_orders import generate  # noqa: E402


@dataclass
class AppRun:
    """One isolated run of an app: unique id and topic names, own state folder."""

    broker: str
    state_dir: Path
    app_path: str = "apps/user_spending.py"
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def app_id(self) -> str:
        return f"us-{self.run_id}"

    @property
    def orders_topic(self) -> str:
        return f"orders-{self.run_id}"

    @property
    def summary_topic(self) -> str:
        return f"summary-{self.run_id}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            STREAMFLOW_APP_ID=self.app_id,
            STREAMFLOW_TOPIC_ORDER_EVENTS=self.orders_topic,
            STREAMFLOW_TOPIC_USER_SPENDING_SUMMARY=self.summary_topic,
            STREAMFLOW_STATE_DIR=str(self.state_dir),
            STREAMFLOW_BROKER=self.broker,
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, stdin: bytes | None = None, timeout: float = 120):
        return subprocess.run(
            [sys.executable, "-m", "streamflow.cli", *args],
            input=stdin,
            capture_output=True,
            env=self.env(),
            cwd=ROOT,
            timeout=timeout,
        )

    def produce_orders(self, orders: list[dict]) -> None:
        lines = b"".join(orjson.dumps(o) + b"\n" for o in orders)
        result = self.cli(
            "produce", "--app", self.app_path, "order_events", "--key", "order_id", stdin=lines
        )
        assert result.returncode == 0, result.stderr.decode()

    def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Write one record of arbitrary bytes (for undecodable input)."""
        self.send_records(topic, [(key, value, None)])

    def send_records(self, topic: str, records: list[tuple]) -> None:
        """Write ``(key, value, timestamp_ms or None)`` records of bytes, in order."""
        from aiokafka import AIOKafkaProducer

        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.broker)
            await producer.start()
            try:
                for key, value, timestamp_ms in records:
                    await producer.send(topic, value, key=key, timestamp_ms=timestamp_ms)
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(send())

    def worker(self, web_port: int | None = None) -> WorkerProcess:
        """A worker process for this run, on ``web_port`` or a free port."""
        return WorkerProcess(self, web_port or free_port(0))

    def read(
        self,
        topic: str,
        key: str = "str",
        value: str = "str",
        idle: float = 3.0,
        max_records: int | None = None,
    ) -> list:
        """The records of ``topic`` from the start until ``idle`` seconds pass without one
        (or ``max_records`` are read: for topics written without pause)."""

        async def collect() -> list:
            return [
                record
                async for record in read_topic(
                    self.broker,
                    Topic(topic, key=key, value=value),
                    idle_timeout=idle,
                    max_records=max_records,
                )
            ]

        return asyncio.run(collect())

    def wait_for_records(self, topic: str, count: int, timeout: float = 120.0, **kw) -> list:
        deadline = time.monotonic() + timeout
        records: list = []
        while time.monotonic() < deadline:
            records = self.read(topic, **kw)
            if len(records) >= count:
                return records
            time.sleep(1)
        return records


class WorkerProcess:
    """``streamflow worker`` as a real subprocess, logging to a file."""

    def __init__(self, run: AppRun, web_port: int) -> None:
        self.run = run
        self.web_port = web_port
        self.log_path = run.state_dir / f"worker-{web_port}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        self.run.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamflow.cli",
                "worker",
                self.run.app_path,
                "--web-port",
                str(self.web_port),
            ],
            env=self.run.env(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self, timeout: float = 60) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(
                f"worker did not stop within {timeout}s; see {self.log_path}"
            ) from None

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def table_dir(self) -> Path:
        return self.run.state_dir / self.run.app_id / f"worker-{self.web_port}" / "v1" / "tables"


def wait_for_log(worker: WorkerProcess, text: str, count: int = 1, timeout: float = 90) -> None:
    """Wait until ``text`` appears ``count`` times in the worker's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.log().count(text) >= count:
            return
        assert worker.process.poll() is None, f"worker exited early:\n{worker.log()[-3000:]}"
        time.sleep(0.3)
    raise AssertionError(f"no {text!r} x{count} in {worker.log_path} within {timeout}s")


def wait_until(check, what: str, timeout: float = 120) -> None:
    """Poll ``check()`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def expected_totals(orders: list[dict]) -> tuple[dict[str, Decimal], dict[str, list[Decimal]]]:
    """Exact per-user totals of PAID orders, and each user's PAID amounts."""
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    amounts: dict[str, list[Decimal]] = defaultdict(list)
    for order in orders:
        if order["status"] == "PAID":
            totals[order["user_id"]] += Decimal(order["amount"])
            amounts[order["user_id"]].append(Decimal(order["amount"]))
    return dict(totals), dict(amounts)


def check_summary(orders: list[dict], records: list[dict]) -> None:
    """Exactly one summary update per PAID order, and each user's last update is the total."""
    totals, amounts = expected_totals(orders)
    updates = updates_by_user(records)
    assert set(updates) == set(totals)
    for user, values in updates.items():
        # The added amounts are the user's PAID amounts: no duplicate, no gap.
        assert sorted(increments(values)) == sorted(amounts[user]), user
        assert values[-1] == totals[user], user


def updates_by_user(records: list[dict]) -> dict[str, list[Decimal]]:
    """Summary updates per user, in the order they were written."""
    out: dict[str, list[Decimal]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r["partition"], r["offset"])):
        out[record["key"]].append(Decimal(record["value"]))
    return dict(out)


def increments(values: list[Decimal], start: Decimal = Decimal("0.00")) -> list[Decimal]:
    """Differences between consecutive running totals: the amounts that were added."""
    out, previous = [], start
    for value in values:
        out.append(value - previous)
        previous = value
    return out


def read_table_files(table_dir: Path, table: str = "user-spending-store") -> dict[str, Decimal]:
    """Read a stopped worker's user-spending table partitions directly."""
    return state_files.read_table_files(table_dir, table, StrCodec(), DecimalCodec())


__all__ = [
    "AppRun",
    "WorkerProcess",
    "check_summary",
    "expected_totals",
    "generate",
    "increments",
    "read_table_files",
    "updates_by_user",
    "wait_for_log",
    "wait_until",
]
