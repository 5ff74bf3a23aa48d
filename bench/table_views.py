"""Table-view lookups per second and their latency, against real workers under processing load.

Runs ``apps/user_spending.py`` as ``--workers`` real worker processes and measures
``GET /tables/user-spending-store/<user>`` from ``--concurrency`` concurrent HTTP clients
(aiohttp, keep-alive; client *i* always talks to worker *i mod workers*):

1. creates a fresh orders topic (``--partitions``) and preloads ``--orders`` orders over
   ``--users`` users (``bench/orders.py``, ground truth kept);
2. starts the workers and waits until every worker is ready, the workers together hold every
   partition, and a full scan of the table through each worker equals the ground truth;
3. **idle phase**: lookups of random users (every one holds a value) for ``--duration`` s
   with no orders arriving;
4. **loaded phase**: ``bench/orders.py`` produces ``--rate`` orders/s in a separate process;
   once the workers are consuming them, the same lookups run for ``--duration`` s;
5. waits for the producer, checks the table equals the new ground truth, stops the workers
   and deletes the run's topics and consumer group.

Each phase starts with ``--warmup`` s of lookups that are not counted. Reported per phase:
lookups/s (200 answers), latency percentiles of the 200 answers, errors by status (503
"retry: partitions moving" apart from the rest), with several workers the same split into
lookups the receiving worker answered itself ("local") and lookups it forwarded to the
worker that holds the key ("forwarded"; told from the key's partition and ``GET /tables``),
reads that went backwards (a lookup started after another one of the same user had
finished, and saw a smaller total: must be 0), the records the workers consumed per second
(``streamflow_records_consumed_total`` before/after the window), their batch and commit
times, their CPU use and time spent runnable but waiting for a CPU, the CPU use of the
benchmark process, of the producer and of the whole machine, the latency of ``GET /health``
sampled every 100 ms (the workers' event-loop responsiveness without a table read), and a
per-second timeline with the slowest seconds.

Usage::

    python bench/table_views.py                            # 1 worker, Kafka on 127.0.0.1:9092
    python bench/table_views.py --workers 2 --duration 20 --concurrency 16 --rate 2000
    python bench/table_views.py --broker embedded          # a temporary embedded broker

Results: a table on stdout and ``bench/results/table_views-<run id>.json``; worker and
producer logs under ``bench/results/logs/<run id>/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psutil
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script: python bench/table_views.py
    sys.path.insert(0, str(REPO_ROOT))

from bench import orders as gen  # noqa: E402
from bench.user_spending import RESULTS_DIR, log, percentile  # noqa: E402
from streamflow.client import Client, ClientError  # noqa: E402
from streamflow.runtime.sender import partition_for  # noqa: E402
from streamflow.runtime.settings import bootstrap_servers  # noqa: E402
from tests.integration.support import AppRun, WorkerProcess  # noqa: E402

TABLE = "user-spending-store"
#: Latency of ``GET /health`` is sampled this often per worker during a phase (seconds).
PROBE_INTERVAL = 0.1
#: Kept per user to detect reads that went backwards.
RECENT_READS = 8

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Config:
    """Options of one benchmark invocation."""

    broker: str
    workers: int
    duration: float
    concurrency: int
    rate: float
    orders: int
    users: int
    partitions: int
    seed: int
    warmup: float
    guarantee: str
    timeout: float


@dataclass
class Target:
    """One worker as the lookup clients see it."""

    url: str
    pid: int
    partitions: set[int]


@dataclass
class Reads:
    """Every counted lookup of a phase, in completion order (parallel lists)."""

    start: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    status: list[int] = field(default_factory=list)
    forwarded: list[bool] = field(default_factory=list)
    partition_mismatches: int = 0
    backwards: int = 0
    _recent: dict[str, deque[tuple[float, Decimal]]] = field(default_factory=dict, repr=False)

    def add(
        self, key: tuple[str, int], t0: float, t1: float, status: int, fwd: bool, body: bytes
    ) -> None:
        """Record one lookup of ``(user, partition)``; check the answer's partition and that
        the user's total never went down."""
        user, partition = key
        self.start.append(t0)
        self.latency_ms.append((t1 - t0) * 1000)
        self.status.append(status)
        self.forwarded.append(fwd)
        if status != 200:
            return
        answer = orjson.loads(body)
        value = Decimal(answer["value"])
        recent = self._recent.setdefault(user, deque(maxlen=RECENT_READS))
        # Only reads that finished before this one started are ordered before it.
        earlier = [v for done, v in recent if done < t0]
        if earlier and value < max(earlier):
            self.backwards += 1
        recent.append((t1, value))
        if answer["partition"] != partition:
            self.partition_mismatches += 1


# --------------------------------------------------------------------------- metrics


def parse_metrics(text: str) -> Samples:
    """Prometheus text to ``{(sample name, labels): value}``."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric_sum(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` carrying every label of ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def scrape(session: aiohttp.ClientSession, targets: list[Target]) -> list[Samples]:
    """The metrics of every worker."""
    out = []
    for target in targets:
        async with session.get(f"{target.url}/metrics") as response:
            out.append(parse_metrics(await response.text()))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def runqueue_wait_seconds(pid: int) -> float:
    """Time the threads of a process spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq, sum(times)


def own_cpu_seconds() -> float:
    """User + system CPU time of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def processing_stats(
    before: list[Samples], after: list[Samples], seconds: float, run: AppRun
) -> dict[str, Any]:
    """What the workers did between two scrapes: records consumed, batches, commits, lag."""
    repartition = f"{run.app_id}-orders-by-user-repartition"

    def delta(name: str, **labels: str) -> float:
        return sum(
            metric_sum(a, name, **labels) - metric_sum(b, name, **labels)
            for b, a in zip(before, after, strict=True)
        )

    orders = delta("streamflow_records_consumed_total", topic=run.orders_topic)
    regrouped = delta("streamflow_records_consumed_total", topic=repartition)
    commits = delta("streamflow_commit_seconds_count")
    commit_s = delta("streamflow_commit_seconds_sum")
    batches = delta("streamflow_batch_processing_seconds_count")
    batch_s = delta("streamflow_batch_processing_seconds_sum")
    return {
        "orders_consumed": int(orders),
        "orders_consumed_per_s": round(orders / seconds, 1),
        "repartition_consumed_per_s": round(regrouped / seconds, 1),
        "batches": int(batches),
        "batch_seconds_per_s": round(batch_s / seconds, 3),
        "mean_batch_ms": round(batch_s / batches * 1000, 2) if batches else None,
        "commits": int(commits),
        "mean_commit_ms": round(commit_s / commits * 1000, 2) if commits else None,
        "rebalances": int(delta("streamflow_rebalances_total")),
        "lag_at_end": int(sum(metric_sum(a, "streamflow_consumer_lag_records") for a in after)),
    }


# --------------------------------------------------------------------------- lookups


def latency_summary(latencies_ms: list[float]) -> dict[str, Any]:
    """Count and percentiles of latencies in milliseconds."""
    lat = sorted(latencies_ms)
    if not lat:
        return {"count": 0}
    return {
        "count": len(lat),
        "p50_ms": round(percentile(lat, 50), 2),
        "p90_ms": round(percentile(lat, 90), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "p999_ms": round(percentile(lat, 99.9), 2),
        "max_ms": round(lat[-1], 2),
        "mean_ms": round(sum(lat) / len(lat), 2),
    }


def timeline(reads: Reads, t_from: float, seconds: float) -> list[dict[str, Any]]:
    """Per second of the window: 200 answers, their p50/p99/max latency, errors."""
    bins: dict[int, list[float]] = defaultdict(list)
    errors: Counter[int] = Counter()
    for t0, ms, status in zip(reads.start, reads.latency_ms, reads.status, strict=True):
        second = int(t0 - t_from)
        if status == 200:
            bins[second].append(ms)
        else:
            errors[second] += 1
    out = []
    for second in range(int(seconds + 0.999)):
        lat = sorted(bins.get(second, []))
        out.append(
            {
                "second": second,
                "ok": len(lat),
                "p50_ms": round(percentile(lat, 50), 2) if lat else None,
                "p99_ms": round(percentile(lat, 99), 2) if lat else None,
                "max_ms": round(lat[-1], 2) if lat else None,
                "errors": errors.get(second, 0),
            }
        )
    return out


async def _lookups(
    index: int,
    session: aiohttp.ClientSession,
    targets: list[Target],
    keys: list[tuple[str, int]],
    reads: Reads,
    t_count: float,
    t_end: float,
    seed: int,
) -> None:
    """One client: lookups of random keys on its worker, back to back, until ``t_end``."""
    rng = random.Random(seed * 1000 + index)
    target = targets[index % len(targets)]
    base = f"{target.url}/tables/{TABLE}/"
    while time.perf_counter() < t_end:
        key = keys[rng.randrange(len(keys))]
        user, partition = key
        t0 = time.perf_counter()
        body = b""
        try:
            async with session.get(base + user) as response:
                body = await response.read()
                status = response.status
        except TimeoutError:
            status = -1
        except aiohttp.ClientError:
            status = 0
        t1 = time.perf_counter()
        if t0 >= t_count:
            reads.add(key, t0, t1, status, partition not in target.partitions, body)
        if status <= 0:
            await asyncio.sleep(0.05)  # no worker answered: do not spin


async def _probe(
    session: aiohttp.ClientSession, target: Target, t_count: float, t_end: float, out: list[float]
) -> None:
    """``GET /health`` every :data:`PROBE_INTERVAL` s: how soon the worker's loop answers."""
    while (now := time.perf_counter()) < t_end:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(f"{target.url}/health") as response:
                await response.read()
            if now >= t_count:
                out.append((time.perf_counter() - now) * 1000)
        await asyncio.sleep(PROBE_INTERVAL)


async def lookup_phase(
    cfg: Config,
    run: AppRun,
    targets: list[Target],
    keys: list[tuple[str, int]],
    others: dict[str, int] | None = None,
) -> dict[str, Any]:
    """``--warmup`` + ``--duration`` seconds of lookups; the figures of the counted part.

    ``others`` names further processes (e.g. the order producer) whose CPU use to report.
    """
    others = others or {}
    reads = Reads()
    probes: list[float] = []
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=cfg.concurrency, force_close=False)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        aiohttp.ClientSession(timeout=timeout) as side,
    ):
        t_start = time.perf_counter()
        t_count = t_start + cfg.warmup
        t_end = t_count + cfg.duration
        clients = [
            asyncio.create_task(
                _lookups(i, session, targets, keys, reads, t_count, t_end, cfg.seed)
            )
            for i in range(cfg.concurrency)
        ]
        probers = [
            asyncio.create_task(_probe(side, target, t_count, t_end, probes)) for target in targets
        ]
        await asyncio.sleep(max(0.0, t_count - time.perf_counter()))
        before = await scrape(side, targets)
        cpu_before = [cpu_seconds(t.pid) for t in targets]
        wait_before = [runqueue_wait_seconds(t.pid) for t in targets]
        others_before = {name: cpu_seconds(pid) for name, pid in others.items()}
        own_before, machine_before = own_cpu_seconds(), machine_busy()
        t_window = time.perf_counter()
        await asyncio.gather(*clients, *probers)
        seconds = time.perf_counter() - t_window
        own_cpu = own_cpu_seconds() - own_before
        busy, total = (a - b for a, b in zip(machine_busy(), machine_before, strict=True))
        cpu_after = [cpu_seconds(t.pid) for t in targets]
        wait_after = [runqueue_wait_seconds(t.pid) for t in targets]
        others_cpu = {name: cpu_seconds(pid) - others_before[name] for name, pid in others.items()}
        after = await scrape(side, targets)

    statuses = Counter(reads.status)
    ok = [ms for ms, s in zip(reads.latency_ms, reads.status, strict=True) if s == 200]
    result: dict[str, Any] = {
        "seconds": round(seconds, 2),
        "requests": len(reads.status),
        "lookups_per_s": round(len(ok) / seconds, 1),
        "latency": latency_summary(ok),
        "unavailable_503": statuses.pop(503, 0),
        "errors": {
            {0: "connection", -1: "timeout"}.get(s, str(s)): n
            for s, n in sorted(statuses.items())
            if s != 200
        },
        "backwards_reads": reads.backwards,
        "partition_mismatches": reads.partition_mismatches,
        "health_probe": latency_summary(probes),
        "processing": processing_stats(before, after, seconds, run),
        "worker_cpu_percent": [
            round((a - b) / seconds * 100, 1) for b, a in zip(cpu_before, cpu_after, strict=True)
        ],
        "worker_runqueue_wait_percent": [
            round((a - b) / seconds * 100, 1) for b, a in zip(wait_before, wait_after, strict=True)
        ],
        "bench_process_cpu_percent": round(own_cpu / seconds * 100, 1),
        **{f"{name}_cpu_percent": round(c / seconds * 100, 1) for name, c in others_cpu.items()},
        "machine_cpu_busy_percent": round(busy / total * 100, 1) if total else None,
    }
    if len(targets) > 1:
        for name, fwd in (("local", False), ("forwarded", True)):
            lat = [
                ms
                for ms, s, f in zip(reads.latency_ms, reads.status, reads.forwarded, strict=True)
                if s == 200 and f is fwd
            ]
            result[name] = {
                "lookups_per_s": round(len(lat) / seconds, 1),
                "latency": latency_summary(lat),
                "errors": sum(
                    1
                    for s, f in zip(reads.status, reads.forwarded, strict=True)
                    if s != 200 and f is fwd
                ),
            }
    per_second = timeline(reads, t_count, cfg.duration)
    result["timeline"] = per_second
    result["slowest_seconds"] = sorted(
        (s for s in per_second if s["ok"]), key=lambda s: s["max_ms"], reverse=True
    )[:3]
    return result


# --------------------------------------------------------------------------- set-up


@contextlib.contextmanager
def broker_address(spec: str) -> Iterator[str]:
    """``host:port`` of the broker: the one given, or a temporary embedded one (``embedded``)."""
    if spec != "embedded":
        yield bootstrap_servers(spec)
        return
    from streamflow.broker.testing import embedded_broker

    with (
        tempfile.TemporaryDirectory(prefix="table-views-broker-") as data,
        embedded_broker(Path(data)) as broker,
    ):
        log(f"embedded broker at {broker.bootstrap}")
        yield broker.bootstrap


def worker_url(worker: WorkerProcess) -> str:
    """The URL a worker serves its web API at."""
    return f"http://127.0.0.1:{worker.web_port}"


def _check_alive(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        if worker.process is not None and worker.process.poll() is not None:
            tail = worker.log()[-2000:]
            raise RuntimeError(f"worker on port {worker.web_port} exited:\n{tail}")


def owners(client: Client) -> tuple[int, dict[str, set[int]]]:
    """The table's partition count and which worker (URL) holds which partitions."""
    (table,) = (t for t in client.tables() if t["name"] == TABLE)
    return table["partitions"], {url: set(parts) for url, parts in table["workers"].items()}


def wait_until_serving(
    workers: list[WorkerProcess], expected: dict[str, str], timeout: float
) -> tuple[int, dict[str, set[int]]]:
    """Wait until every worker is ready, they share every partition, and a full scan of the
    table through each of them equals ``expected``; return :func:`owners` then.
    """
    clients = [Client(worker_url(w), timeout=10, retry_for=0) for w in workers]
    deadline = time.monotonic() + timeout
    differing = len(expected)
    while time.monotonic() < deadline:
        _check_alive(workers)
        try:
            if all(c.ready() for c in clients):
                views = [owners(c) for c in clients]
                partitions, held = views[0]
                spread = set().union(*held.values()) == set(range(partitions))
                if spread and len(held) == len(workers) and all(v == views[0] for v in views):
                    scans = [dict(c.items(TABLE, page_size=1000)) for c in clients]
                    differing = max(
                        sum(1 for k, v in expected.items() if scan.get(k) != v) for scan in scans
                    ) + max(len(set(scan) - set(expected)) for scan in scans)
                    if differing == 0:
                        return views[0]
        except ClientError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"table not served in full after {timeout}s ({differing} keys differ)")


def start_producer(
    cfg: Config, bootstrap: str, run: AppRun, n: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """``bench/orders.py`` producing ``n`` orders at ``--rate``, in its own process."""
    argv = [
        sys.executable,
        str(REPO_ROOT / "bench" / "orders.py"),
        "--broker",
        bootstrap,
        "--topic",
        run.orders_topic,
        "--orders",
        str(n),
        "--users",
        str(cfg.users),
        "--seed",
        str(cfg.seed + 1),
        "--start",
        str(cfg.orders),
        "--rate",
        str(cfg.rate),
    ]
    with open(log_path, "wb") as err:
        return subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=err)


def wait_for_consumption(
    workers: list[WorkerProcess], run: AppRun, above: float, timeout: float
) -> None:
    """Wait until the workers have consumed more than ``above`` records of the orders topic."""
    clients = [Client(worker_url(w), timeout=10, retry_for=0) for w in workers]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _check_alive(workers)
        consumed = sum(
            metric_sum(
                parse_metrics(c.metrics()),
                "streamflow_records_consumed_total",
                topic=run.orders_topic,
            )
            for c in clients
        )
        if consumed > above:
            return
        time.sleep(0.2)
    raise TimeoutError(f"the workers consumed no new order within {timeout}s")


def consumed_orders(workers: list[WorkerProcess], run: AppRun) -> float:
    """Orders consumed so far by all workers."""
    return sum(
        metric_sum(
            parse_metrics(Client(worker_url(w)).metrics()),
            "streamflow_records_consumed_total",
            topic=run.orders_topic,
        )
        for w in workers
    )


def stop_all(
    workers: list[WorkerProcess], producer: subprocess.Popen[bytes] | None
) -> list[int | str]:
    """Stop the producer and the workers (SIGTERM, SIGKILL after 30 s); their exit codes."""
    if producer is not None and producer.poll() is None:
        producer.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            producer.wait(10)
        if producer.poll() is None:
            producer.kill()
            producer.wait()
    codes: list[int | str] = []
    for worker in workers:
        if worker.process is None:
            continue
        if worker.process.poll() is not None:
            codes.append(worker.process.returncode)
            continue
        try:
            codes.append(worker.stop(timeout=30))
        except AssertionError:
            codes.append("killed")
    return codes


def delete_groups(bootstrap: str, token: str) -> None:
    """Delete the consumer groups whose id contains ``token``."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listing = admin.list_consumer_groups(request_timeout=10).result()
    groups = [g.group_id for g in listing.valid if token in g.group_id]
    if groups:
        for future in admin.delete_consumer_groups(groups, request_timeout=15).values():
            with contextlib.suppress(Exception):
                future.result(15)


# --------------------------------------------------------------------------- one run


def run_bench(cfg: Config, run_id: str, log_dir: Path) -> dict[str, Any]:
    """Everything of one invocation; always stops its processes and deletes its topics."""
    result: dict[str, Any] = {"status": "failed"}
    os.environ["STREAMFLOW_PROCESSING_GUARANTEE"] = cfg.guarantee  # the workers inherit it
    with broker_address(cfg.broker) as bootstrap:
        state = Path(tempfile.mkdtemp(prefix="table-views-"))
        run = AppRun(bootstrap, state, run_id=run_id)
        workers: list[WorkerProcess] = []
        producer: subprocess.Popen[bytes] | None = None
        try:
            gen.create_topics(bootstrap, [run.orders_topic], cfg.partitions)
            t0 = time.monotonic()
            truth = gen.produce_orders(bootstrap, run.orders_topic, cfg.orders, cfg.users, cfg.seed)
            result["preload_s"] = round(time.monotonic() - t0, 2)
            log(f"preloaded {truth.orders} orders, {len(truth.totals)} users with PAID orders")

            t0 = time.monotonic()
            workers = [run.worker().start() for _ in range(cfg.workers)]
            partitions, held = wait_until_serving(workers, truth.expected_values(), cfg.timeout)
            result["serving_after_s"] = round(time.monotonic() - t0, 1)
            result["partitions"] = {url: sorted(p) for url, p in held.items()}
            log(f"table served in full after {result['serving_after_s']} s by {sorted(held)}")
            targets = [
                Target(worker_url(w), w.process.pid, held[worker_url(w)])  # type: ignore[union-attr]
                for w in workers
            ]
            keys = [(user, partition_for(user.encode(), partitions)) for user in truth.totals]

            log(f"idle phase: {cfg.concurrency} clients, {cfg.duration:g} s")
            result["idle"] = asyncio.run(lookup_phase(cfg, run, targets, keys))

            paced = int(cfg.rate * (cfg.warmup + cfg.duration + 10))
            baseline = consumed_orders(workers, run)
            producer = start_producer(cfg, bootstrap, run, paced, log_dir / "producer.log")
            wait_for_consumption(workers, run, baseline, timeout=60)
            log(f"loaded phase: {cfg.rate:g} orders/s, {cfg.concurrency} clients")
            result["loaded"] = asyncio.run(
                lookup_phase(cfg, run, targets, keys, {"producer": producer.pid})
            )
            result["loaded"]["producer_ran_throughout"] = producer.poll() is None
            result["partitions_after"] = {
                url: sorted(p) for url, p in owners(Client(targets[0].url, retry_for=30))[1].items()
            }

            out, _ = producer.communicate(timeout=cfg.duration + 120)
            if producer.returncode != 0:
                raise RuntimeError(f"the order producer failed; see {log_dir / 'producer.log'}")
            result["producer"] = json.loads(out)
            final = truth.merged(
                gen.ground_truth(
                    gen.generate_orders(paced, cfg.users, cfg.seed + 1, start=cfg.orders)
                )
            )
            t0 = time.monotonic()
            wait_until_serving(workers, final.expected_values(), cfg.timeout)
            result["final_table_correct"] = True
            result["final_table_after_s"] = round(time.monotonic() - t0, 1)
            result["status"] = "ok"
        except Exception as exc:
            result["error"] = f"{type(exc).__name__}: {exc}"
            log(f"failed - {result['error']}")
        finally:
            result["worker_exit_codes"] = stop_all(workers, producer)
            for worker in workers:
                with contextlib.suppress(OSError):
                    shutil.copy(worker.log_path, log_dir / worker.log_path.name)
            shutil.rmtree(state, ignore_errors=True)
            with contextlib.suppress(Exception):
                gen.delete_topics_matching(bootstrap, run_id)
            with contextlib.suppress(Exception):
                delete_groups(bootstrap, run_id)
    return result


# --------------------------------------------------------------------------- reporting


def _fmt(value: Any, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def _per_worker(values: list[float]) -> str:
    return "/".join(f"{v:.0f}" for v in values)


def format_table(result: dict[str, Any]) -> str:
    """The phases (and with several workers their local/forwarded split) as a text table.

    CPU columns are percent of one core; "waiting" is time the worker was runnable but had
    no CPU; "machine" is the busy share of all cores (other processes included).
    """
    header = (
        f"{'phase':<13} {'lookups/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'503':>5} "
        f"{'errors':>6} {'orders/s':>8} {'worker CPU':>10} {'waiting':>7} {'bench CPU':>9} "
        f"{'machine':>7}"
    )
    lines = [header, "-" * len(header)]
    for phase in ("idle", "loaded"):
        r = result.get(phase)
        if not r:
            continue
        lat = r["latency"]
        lines.append(
            f"{phase:<13} {_fmt(r['lookups_per_s'], ',.0f'):>9} {_fmt(lat.get('p50_ms')):>7} "
            f"{_fmt(lat.get('p99_ms')):>7} {_fmt(lat.get('max_ms')):>7} "
            f"{r['unavailable_503']:>5} {sum(r['errors'].values()):>6} "
            f"{_fmt(r['processing']['orders_consumed_per_s'], ',.0f'):>8} "
            f"{_per_worker(r['worker_cpu_percent']):>10} "
            f"{_per_worker(r['worker_runqueue_wait_percent']):>7} "
            f"{r['bench_process_cpu_percent']:>9.0f} "
            f"{_fmt(r['machine_cpu_busy_percent'], '.0f'):>7}"
        )
        for split in ("local", "forwarded"):
            if split in r:
                s, lat = r[split], r[split]["latency"]
                lines.append(
                    f"  {split:<11} {_fmt(s['lookups_per_s'], ',.0f'):>9} "
                    f"{_fmt(lat.get('p50_ms')):>7} {_fmt(lat.get('p99_ms')):>7} "
                    f"{_fmt(lat.get('max_ms')):>7} {'':>5} {s['errors']:>6}"
                )
    for phase in ("idle", "loaded"):
        r = result.get(phase)
        if not r:
            continue
        probe, proc = r["health_probe"], r["processing"]
        slow = ", ".join(f"{s['second']}s: max {s['max_ms']:.0f} ms" for s in r["slowest_seconds"])
        lines.append(
            f"{phase}: GET /health p50 {_fmt(probe.get('p50_ms'))} ms, p99 "
            f"{_fmt(probe.get('p99_ms'))} ms; batches {proc['batches']} "
            f"(mean {_fmt(proc['mean_batch_ms'], '.1f')} ms), commits {proc['commits']} "
            f"(mean {_fmt(proc['mean_commit_ms'], '.1f')} ms); lag at end {proc['lag_at_end']}; "
            f"backwards reads {r['backwards_reads']}; slowest seconds: {slow}"
        )
    if result.get("error"):
        lines.append(f"error: {result['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--workers", type=int, choices=(1, 2), default=1)
    p.add_argument(
        "--broker", default="127.0.0.1:9092", help="host:port, or 'embedded' for a temporary one"
    )
    p.add_argument("--duration", type=float, default=20, help="seconds counted per phase")
    p.add_argument("--warmup", type=float, default=2, help="uncounted seconds before each phase")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP clients")
    p.add_argument("--rate", type=float, default=2000, help="orders/s during the loaded phase")
    p.add_argument("--orders", type=int, default=10_000, help="orders preloaded")
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--guarantee", choices=("exactly_once", "at_least_once"), default="exactly_once")
    p.add_argument("--timeout", type=float, default=180, help="cap of each wait for the table")
    p.add_argument("--output", type=Path, default=None, help="result JSON path")
    args = p.parse_args(argv)
    # A SIGTERM unwinds like Ctrl-C, so the workers and the producer are always stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    cfg = Config(
        broker=args.broker,
        workers=args.workers,
        duration=args.duration,
        concurrency=args.concurrency,
        rate=args.rate,
        orders=args.orders,
        users=args.users,
        partitions=args.partitions,
        seed=args.seed,
        warmup=args.warmup,
        guarantee=args.guarantee,
        timeout=args.timeout,
    )
    run_id = f"tv{time.strftime('%H%M%S')}{uuid.uuid4().hex[:6]}"
    log_dir = RESULTS_DIR / "logs" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "table_views",
        "run_id": run_id,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": asdict(cfg),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    report.update(run_bench(cfg, run_id, log_dir))
    output = args.output or RESULTS_DIR / f"table_views-{run_id}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2, default=str))
    print(format_table(report))
    print(f"\nresults: {output}")
    return 0 if report["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
