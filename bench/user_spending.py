"""Benchmark driver for the "user spending" job: streamflow vs faust-streaming, Quix Streams
and Kafka Streams.

For every system x processing guarantee it:

1. creates fresh topics (orders + output, ``--partitions`` each) named with a unique token;
2. preloads ``--orders`` orders (``bench/orders.py``; ground truth kept);
3. starts the job as a subprocess (own process group, log under ``bench/results/logs/``);
4. **throughput phase**: consumes the output topic (``read_committed``) until it holds one
   record per PAID order (or ``--timeout``);
5. **latency phase**: produces ``--paced-rate`` orders/s for ``--paced-seconds`` while the job
   is caught up; latency = receive time of an output record - its timestamp (every job
   stamps its outputs with the input record's timestamp, which the generator sets to the
   wall-clock time of production);
6. keeps consuming 2 s more (so duplicate outputs are seen), stops the job (SIGTERM, then
   SIGKILL after 20 s), verifies the outputs against the ground truth (last value per user,
   outputs per user, total count) and deletes the run's topics and consumer groups.

Throughput, as reported (all in *input* events/s):

* ``events_per_s`` (headline) = N / (t_last_output - t_ready), where t_ready is the last time
  before the first output that the job's consumer group (any group whose id contains the
  run token; polled every 0.1 s) turned STABLE. Process start-up, imports, topic creation
  and start-up rebalances are excluded; the time to the first output, later rebalances and
  the wait for the final commit are included. Falls back to
  ``events_per_s_from_first_output`` when the group is never seen STABLE.
* ``events_per_s_from_first_output`` = N * (P - 1) / P / (t_last - t_first_output) with P the
  PAID count (inflated a little under exactly-once, whose outputs arrive in per-commit bursts).
* ``events_per_s_wall`` = N / (t_last - t_spawn): includes process start-up.

On a timeout the figures are computed from the outputs received so far ("partial").

Usage::

    python bench/user_spending.py                                   # everything, 200k orders
    python bench/user_spending.py --systems faust,quix --orders 50000
    python bench/user_spending.py --systems streamflow --guarantees exactly_once \\
        --orders 200000 --users 50 --partitions 8 --broker 127.0.0.1:9092

Results: a table on stdout and ``bench/results/user_spending-<run id>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

try:
    from bench import orders as gen
except ImportError:  # run as a script: python bench/user_spending.py
    import orders as gen  # type: ignore[no-redef]

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is in the project's "bench" extra
    psutil = None

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
SYSTEMS = (
    "streamflow",
    "streamflow-processor",
    "streamflow-agent",
    "faust",
    "quix",
    "kafka-streams",
)
GUARANTEES = ("at_least_once", "exactly_once")
#: Commit interval each system uses when ``--commit-interval`` is not given (seconds).
DEFAULT_COMMIT_INTERVALS = {
    "faust": 2.8,
    "quix": 5.0,
    "kafka-streams": None,  # its own: 100 ms under exactly-once, 30 s otherwise
    "streamflow": None,
    "streamflow-processor": None,
    "streamflow-agent": None,
}
#: The app each streamflow variant runs: the DSL job, and the same job with the processor
#: API and with agents.
STREAMFLOW_APPS = {
    "streamflow": "apps/user_spending.py",
    "streamflow-processor": "bench/processor_spending.py",
    "streamflow-agent": "bench/agent_spending.py",
}


def log(msg: str) -> None:
    """Progress message on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- job commands


@dataclass
class JobSpec:
    """Everything a job needs to run, independent of the system."""

    system: str
    guarantee: str
    broker: str
    app_id: str
    input_topic: str
    output_topic: str
    state_dir: str
    partitions: int
    commit_interval: float | None = None


@dataclass
class JobCommand:
    """A command line plus extra environment to start a job."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path = REPO_ROOT
    #: Internal topics the driver creates before start (``--partitions`` partitions each).
    precreate_topics: list[str] = field(default_factory=list)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def streamflow_worker_argv(app_path: str, broker: str) -> list[str]:
    """``streamflow worker APP --broker kafka://BROKER``: the venv's ``streamflow`` console
    script when installed, else ``streamflow.cli.main:main`` from the repo checkout."""
    args = ["worker", app_path, "--broker", f"kafka://{broker}"]
    script = Path(sys.executable).parent / "streamflow"
    if script.exists():
        return [str(script), *args]
    launcher = (
        "import sys; from streamflow.cli.main import main; "
        "sys.argv[0] = 'streamflow'; sys.exit(main())"
    )
    return [sys.executable, "-c", launcher, *args]


def streamflow_command(spec: JobSpec) -> JobCommand:
    """``streamflow worker apps/user_spending.py --broker kafka://HOST:PORT`` with its env.

    Uses the venv's ``streamflow`` console script when installed, else calls
    ``streamflow.cli.main:main`` from the repo checkout.

    Usage::

        cmd = streamflow_command(spec); subprocess.Popen(cmd.argv, env={**os.environ, **cmd.env})
    """
    argv = streamflow_worker_argv(STREAMFLOW_APPS[spec.system], spec.broker)
    env = {
        "STREAMFLOW_APP_ID": spec.app_id,
        "STREAMFLOW_PROCESSING_GUARANTEE": spec.guarantee,
        "STREAMFLOW_STATE_DIR": spec.state_dir,
        "STREAMFLOW_WEB_PORT": str(free_port()),
        "STREAMFLOW_TOPIC_ORDER_EVENTS": spec.input_topic,
        "STREAMFLOW_TOPIC_USER_SPENDING_SUMMARY": spec.output_topic,
    }
    return JobCommand(argv, env)


def _baseline_env(spec: JobSpec) -> dict[str, str]:
    env = {
        "BENCH_BROKER": spec.broker,
        "BENCH_APP_ID": spec.app_id,
        "BENCH_INPUT_TOPIC": spec.input_topic,
        "BENCH_OUTPUT_TOPIC": spec.output_topic,
        "BENCH_PROCESSING_GUARANTEE": spec.guarantee,
        "BENCH_STATE_DIR": spec.state_dir,
        "BENCH_PARTITIONS": str(spec.partitions),
        "BENCH_ORDER_SCHEMA": str(gen.SCHEMA_PATH),
    }
    if spec.commit_interval is not None:
        env["BENCH_COMMIT_INTERVAL"] = str(spec.commit_interval)
    return env


def faust_command(spec: JobSpec) -> JobCommand:
    """``python bench/baselines/faust_user_spending.py worker -l warn`` with its env.

    The repartition topic is pre-created: when faust creates it itself, it sometimes
    subscribes before the topic is in the cluster metadata, logs "Ignoring missing topic"
    and never consumes it (the job then emits nothing).
    """
    script = BENCH_DIR / "baselines" / "faust_user_spending.py"
    return JobCommand(
        [sys.executable, str(script), "worker", "-l", "warn"],
        _baseline_env(spec),
        precreate_topics=[f"{spec.app_id}-orders-by-user-repartition"],
    )


def quix_command(spec: JobSpec) -> JobCommand:
    """``python bench/baselines/quix_user_spending.py`` with its env."""
    script = BENCH_DIR / "baselines" / "quix_user_spending.py"
    return JobCommand([sys.executable, str(script)], _baseline_env(spec))


KAFKA_STREAMS_DIR = BENCH_DIR / "baselines" / "kafka-streams"
KAFKA_STREAMS_JAR = KAFKA_STREAMS_DIR / "target" / "user-spending.jar"


def kafka_streams_command(spec: JobSpec) -> JobCommand:
    """``java -jar bench/baselines/kafka-streams/target/user-spending.jar`` with its env
    (Kafka Streams 4.4, one stream thread, record cache off; built by :func:`preflight`)."""
    return JobCommand(["java", "-jar", str(KAFKA_STREAMS_JAR)], _baseline_env(spec))


COMMANDS: dict[str, Callable[[JobSpec], JobCommand]] = {
    "streamflow": streamflow_command,
    "streamflow-processor": streamflow_command,
    "streamflow-agent": streamflow_command,
    "faust": faust_command,
    "quix": quix_command,
    "kafka-streams": kafka_streams_command,
}


def preflight(system: str) -> str | None:
    """Return why ``system`` cannot run here, or None when it looks runnable (building
    the Kafka Streams job with Maven, from Maven Central, when it is not built yet)."""
    if system == "kafka-streams":
        return _build_kafka_streams()
    if system not in STREAMFLOW_APPS:
        return None
    if not (REPO_ROOT / STREAMFLOW_APPS[system]).exists():
        return f"{STREAMFLOW_APPS[system]} does not exist yet"
    probe = subprocess.run(
        [sys.executable, "-c", "import streamflow.cli.main"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return f"streamflow.cli.main is not importable: {last}"
    return None


def _build_kafka_streams() -> str | None:
    if KAFKA_STREAMS_JAR.exists():
        return None
    if shutil.which("mvn") is None or shutil.which("java") is None:
        return "Java 17 and Maven are needed to build the Kafka Streams job"
    log("building the Kafka Streams job (mvn package)")
    built = subprocess.run(
        ["mvn", "-q", "-B", "package"],
        cwd=KAFKA_STREAMS_DIR,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if built.returncode != 0 or not KAFKA_STREAMS_JAR.exists():
        last = (built.stdout.strip().splitlines() or ["?"])[-1]
        return f"mvn package failed: {last}"
    return None


# --------------------------------------------------------------------------- monitors


def _proc_status_kb(pid: int, field_name: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class ResourceSampler(threading.Thread):
    """Samples the RSS of a process tree every ``interval`` s; keeps the peak.

    ``finish()`` (call while the process is still alive) also reads the kernel's own peak
    (VmHWM) of every process in the tree and their CPU time.
    """

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.pid = pid
        self.interval = interval
        self.peak_tree_rss = 0
        self.hwm_main = 0
        self.cpu_seconds: float | None = None
        self._stop_event = threading.Event()

    def _tree(self) -> list[Any]:
        if psutil is None:
            return []
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _sample(self) -> None:
        if psutil is not None:
            total = 0
            for proc in self._tree():
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
        else:
            total = (_proc_status_kb(self.pid, "VmRSS") or 0) * 1024
        self.peak_tree_rss = max(self.peak_tree_rss, total)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self._sample()

    def finish(self) -> None:
        """Stop sampling and read the final peak/CPU figures (process must still exist)."""
        self._stop_event.set()
        self._sample()
        self.hwm_main = (_proc_status_kb(self.pid, "VmHWM") or 0) * 1024
        if psutil is not None:
            cpu = 0.0
            for proc in self._tree():
                with contextlib.suppress(psutil.Error):
                    t = proc.cpu_times()
                    cpu += t.user + t.system
            self.cpu_seconds = cpu

    @property
    def peak_rss_bytes(self) -> int:
        """max(sampled peak of the whole tree, kernel peak of the main process)."""
        return max(self.peak_tree_rss, self.hwm_main)


class GroupWatcher(threading.Thread):
    """Polls the broker for consumer groups whose id contains ``token``; records their states.

    ``timeline`` holds ``(time, group_id, state)`` for every observed state change, so
    start-up rebalances are visible in the result file.
    """

    def __init__(self, broker: str, token: str, interval: float = 0.1) -> None:
        super().__init__(daemon=True, name="group-watcher")
        self.admin = AdminClient({"bootstrap.servers": broker})
        self.token = token
        self.interval = interval
        self.timeline: list[tuple[float, str, str]] = []
        self.groups: set[str] = set()
        self._state: dict[str, str] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                listing = self.admin.list_consumer_groups(request_timeout=5).result()
                now = time.time()
                for group in listing.valid:
                    if self.token not in group.group_id:
                        continue
                    self.groups.add(group.group_id)
                    state = getattr(group.state, "name", str(group.state))
                    if self._state.get(group.group_id) != state:
                        self._state[group.group_id] = state
                        self.timeline.append((now, group.group_id, state))
            except Exception as exc:  # transient admin errors must not kill the run
                log(f"group watcher: {exc}")
            self._stop_event.wait(self.interval)

    def ready_time(self, before: float | None) -> float | None:
        """When the job became ready: the last change to STABLE at or before ``before``
        (the first output), else the first change to STABLE; None if never seen STABLE.
        """
        stable = [t for t, _, state in self.timeline if state == "STABLE"]
        if not stable:
            return None
        if before is not None:
            earlier = [t for t in stable if t <= before]
            if earlier:
                return max(earlier)
        return stable[0]

    def stop(self) -> None:
        """Stop polling."""
        self._stop_event.set()


# --------------------------------------------------------------------------- output side


@dataclass
class OutputCollector:
    """Consumes the output topic (read_committed) and keeps what verification needs."""

    broker: str
    topic: str
    partitions: int
    count: int = 0
    bad: int = 0
    t_first: float | None = None
    t_last: float | None = None
    last_value: dict[str, str] = field(default_factory=dict)
    per_user: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    record_latency: bool = False

    def __post_init__(self) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": self.broker,
                "group.id": f"bench-driver-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 50,
            }
        )
        self.consumer.assign(
            [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in range(self.partitions)]
        )

    def _handle(self, msg: Any, now: float) -> None:
        if msg.error():
            if msg.error().code() != KafkaError._PARTITION_EOF:
                log(f"output consumer error: {msg.error()}")
            return
        try:
            user = msg.key().decode()
            value = msg.value().decode()
        except (AttributeError, UnicodeDecodeError):
            self.bad += 1
            return
        self.count += 1
        if self.t_first is None:
            self.t_first = now
        self.t_last = now
        self.last_value[user] = value
        self.per_user[user] = self.per_user.get(user, 0) + 1
        if self.record_latency:
            _ts_type, ts_ms = msg.timestamp()
            if ts_ms > 0:
                self.latencies_ms.append(now * 1000 - ts_ms)

    def drain_until(
        self,
        target: int,
        deadline: float,
        alive: Callable[[], bool],
        precise: bool = False,
        first_deadline: float | None = None,
    ) -> str:
        """Consume until ``count >= target``; return ``"done"``, ``"timeout"`` or ``"died"``.

        Gives up early (``"timeout"``) when nothing at all arrived by ``first_deadline``.

        ``precise`` polls one record at a time, so receive times are exact (latency phase);
        otherwise records are fetched in batches (receive time error <= 50 ms).
        """
        next_check = 0.0
        while self.count < target:
            now = time.time()
            if now >= deadline:
                return "timeout"
            if first_deadline is not None and self.count == 0 and now >= first_deadline:
                return "timeout"
            if now >= next_check:
                if not alive():
                    # Drain what is already committed before declaring the job dead.
                    for msg in self.consumer.consume(10_000, 1.0):
                        self._handle(msg, time.time())
                    return "done" if self.count >= target else "died"
                next_check = now + 0.5
            if precise:
                msg = self.consumer.poll(0.05)
                if msg is not None:
                    self._handle(msg, time.time())
            else:
                batch = self.consumer.consume(10_000, 0.05)
                now = time.time()
                for msg in batch:
                    self._handle(msg, now)
        return "done"

    def settle(self, seconds: float) -> int:
        """Keep consuming for ``seconds`` (catches outputs beyond the expected count, e.g.
        duplicates); return how many arrived.
        """
        before = self.count
        end = time.time() + seconds
        while time.time() < end:
            batch = self.consumer.consume(10_000, 0.1)
            now = time.time()
            for msg in batch:
                self._handle(msg, now)
        return self.count - before

    def close(self) -> None:
        """Close the consumer."""
        with contextlib.suppress(Exception):
            self.consumer.close()


def verify(collector: OutputCollector, truth: gen.GroundTruth) -> dict[str, Any]:
    """Compare outputs with the ground truth: last value per user and output counts."""
    expected = truth.expected_values()
    wrong_values = {}
    for user, want in expected.items():
        got = collector.last_value.get(user)
        if got != want:
            entry: dict[str, Any] = {"expected": want, "got": got}
            with contextlib.suppress(InvalidOperation, TypeError):
                if Decimal(got) == Decimal(want):  # type: ignore[arg-type]
                    entry["note"] = "same number, different format"
            wrong_values[user] = entry
    extra_users = sorted(set(collector.last_value) - set(expected))
    wrong_counts = {
        user: {"expected": n, "got": collector.per_user.get(user, 0)}
        for user, n in truth.paid_counts.items()
        if collector.per_user.get(user, 0) != n
    }
    correct = (
        not wrong_values
        and not extra_users
        and collector.count == truth.paid
        and not wrong_counts
        and collector.bad == 0
    )
    return {
        "correct": correct,
        "outputs": collector.count,
        "expected_outputs": truth.paid,
        "undecodable_outputs": collector.bad,
        "users_expected": len(expected),
        "wrong_values": dict(list(wrong_values.items())[:5]),
        "wrong_values_count": len(wrong_values),
        "unexpected_users": extra_users[:5],
        "wrong_counts": dict(list(wrong_counts.items())[:5]),
    }


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


# --------------------------------------------------------------------------- one job run


@dataclass
class BenchConfig:
    """Options of one benchmark invocation."""

    broker: str
    orders: int
    users: int
    partitions: int
    seed: int
    timeout: float
    paced_rate: float
    paced_seconds: float
    commit_interval: float | None
    run_id: str
    log_dir: Path
    keep_topics: bool = False
    first_output_timeout: float = 120.0
    settle_seconds: float = 2.0


def _stop_process(proc: subprocess.Popen[bytes], grace: float = 20.0) -> dict[str, Any]:
    """SIGTERM the job's process group, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is not None:
        return {"exit_code": proc.returncode, "stopped_by": "itself"}
    t0 = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
        how = "SIGTERM"
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        how = "SIGKILL"
    return {
        "exit_code": proc.returncode,
        "stopped_by": how,
        "shutdown_s": round(time.monotonic() - t0, 2),
    }


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _throughput(
    cfg: BenchConfig,
    paid: int,
    received: int,
    t_spawn: float,
    t_ready: float | None,
    t_first: float | None,
    t_last: float | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "startup_s": None if t_first is None else round(t_first - t_spawn, 2),
        "ready_s": None if t_ready is None else round(t_ready - t_spawn, 2),
    }
    if t_last is None or not paid:
        return out
    # Input events represented by the outputs received (all of them unless timed out).
    events = cfg.orders * received / paid
    out["input_events_covered"] = round(events)
    out["events_per_s_wall"] = round(events / (t_last - t_spawn), 1)
    if t_first is not None and t_last > t_first and received > 1:
        out["events_per_s_from_first_output"] = round(
            cfg.orders * (received - 1) / paid / (t_last - t_first), 1
        )
    if t_ready is not None and t_last > t_ready:
        out["events_per_s_from_ready"] = round(events / (t_last - t_ready), 1)
        out["events_per_s"] = out["events_per_s_from_ready"]
        out["events_per_s_basis"] = "group_stable"
    elif "events_per_s_from_first_output" in out:
        out["events_per_s"] = out["events_per_s_from_first_output"]
        out["events_per_s_basis"] = "first_output"
    return out


def spawn_job(
    cmd: JobCommand, log_path: Path, broker: str, token: str
) -> tuple[subprocess.Popen[bytes], GroupWatcher, ResourceSampler, float]:
    """Start ``cmd`` in a process group of its own, output to ``log_path``, with a watcher
    of the consumer groups named with ``token`` and a sampler of its memory and CPU.

    Returns the process, the watcher, the sampler and the spawn time (``time.time()``).
    """
    with open(log_path, "wb") as log_file:
        watcher = GroupWatcher(broker, token)
        t_spawn = time.time()
        proc = subprocess.Popen(
            cmd.argv,
            cwd=cmd.cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **cmd.env},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    watcher.start()
    sampler = ResourceSampler(proc.pid)
    sampler.start()
    return proc, watcher, sampler, t_spawn


def run_job(
    cfg: BenchConfig, system: str, guarantee: str, preload_truth: gen.GroundTruth
) -> dict[str, Any]:
    """Run one system under one guarantee end to end; return its result record."""
    short = {"at_least_once": "alo", "exactly_once": "eos"}[guarantee]
    token = f"{cfg.run_id}-{system}-{short}"
    app_id = f"bench-us-{token}"
    input_topic = f"bench-us-{token}-orders"
    output_topic = f"bench-us-{token}-spending"
    result: dict[str, Any] = {
        "system": system,
        "guarantee": guarantee,
        "app_id": app_id,
        "commit_interval_s": cfg.commit_interval
        if cfg.commit_interval is not None
        else DEFAULT_COMMIT_INTERVALS.get(system),
        "status": "failed",
    }
    reason = preflight(system)
    if reason:
        result["error"] = reason
        log(f"{system}/{guarantee}: skipped - {reason}")
        return result

    state_dir = tempfile.mkdtemp(prefix=f"{app_id}-")
    log_path = cfg.log_dir / f"{system}-{guarantee}.log"
    result["log"] = str(log_path.relative_to(REPO_ROOT))
    proc: subprocess.Popen[bytes] | None = None
    collector: OutputCollector | None = None
    watcher: GroupWatcher | None = None
    sampler: ResourceSampler | None = None
    try:
        gen.create_topics(cfg.broker, [input_topic, output_topic], cfg.partitions)
        t0 = time.monotonic()
        codec = gen.OrderCodec()
        truth = gen.produce_orders(
            cfg.broker, input_topic, cfg.orders, cfg.users, cfg.seed, codec=codec
        )
        result["preload_s"] = round(time.monotonic() - t0, 2)
        if truth.to_json() != preload_truth.to_json():
            raise RuntimeError("generator is not deterministic: ground truths differ")
        log(f"{system}/{guarantee}: preloaded {cfg.orders} orders ({truth.paid} PAID)")

        collector = OutputCollector(cfg.broker, output_topic, cfg.partitions)
        spec = JobSpec(
            system,
            guarantee,
            cfg.broker,
            app_id,
            input_topic,
            output_topic,
            state_dir,
            cfg.partitions,
            cfg.commit_interval,
        )
        cmd = COMMANDS[system](spec)
        result["command"] = cmd.argv
        if cmd.precreate_topics:
            gen.create_topics(cfg.broker, cmd.precreate_topics, cfg.partitions)
        proc, watcher, sampler, t_spawn = spawn_job(cmd, log_path, cfg.broker, token)
        log(f"{system}/{guarantee}: started pid {proc.pid}; waiting for {truth.paid} outputs")

        def alive() -> bool:
            return proc is not None and proc.poll() is None

        # ---- throughput phase
        outcome = collector.drain_until(
            truth.paid,
            t_spawn + cfg.timeout,
            alive,
            first_deadline=t_spawn + min(cfg.timeout, cfg.first_output_timeout),
        )
        watcher.stop()
        result.update(
            _throughput(
                cfg,
                truth.paid,
                collector.count,
                t_spawn,
                watcher.ready_time(collector.t_first),
                collector.t_first,
                collector.t_last,
            )
        )
        result["group_timeline"] = [
            [round(t - t_spawn, 2), group, state] for t, group, state in watcher.timeline
        ]
        result["throughput_phase"] = outcome
        result["verify_preload"] = verify(collector, truth)
        log(
            f"{system}/{guarantee}: throughput phase {outcome}: {collector.count}/{truth.paid} "
            f"outputs, {result.get('events_per_s', '?')} events/s"
        )

        # ---- latency phase (only when caught up)
        final_truth = truth
        if outcome == "done":
            paced_n = int(cfg.paced_rate * cfg.paced_seconds)
            paced_seed = cfg.seed + 1
            paced_truth = gen.ground_truth(
                gen.generate_orders(paced_n, cfg.users, paced_seed, start=cfg.orders)
            )
            final_truth = truth.merged(paced_truth)
            errors: list[BaseException] = []
            produced: list[float] = []

            def pace() -> None:
                try:
                    t = time.monotonic()
                    gen.produce_orders(
                        cfg.broker,
                        input_topic,
                        paced_n,
                        cfg.users,
                        paced_seed,
                        start=cfg.orders,
                        rate=cfg.paced_rate,
                        codec=codec,
                    )
                    produced.append(time.monotonic() - t)
                except BaseException as exc:
                    errors.append(exc)

            collector.record_latency = True
            producer = threading.Thread(target=pace, name="paced-producer", daemon=True)
            producer.start()
            t_paced = time.time()
            outcome2 = collector.drain_until(
                final_truth.paid, t_paced + cfg.paced_seconds + 120, alive, precise=True
            )
            producer.join(60)
            if errors:
                raise errors[0]
            lat = sorted(collector.latencies_ms)
            result["latency_phase"] = {
                "outcome": outcome2,
                "rate_target": cfg.paced_rate,
                "seconds": cfg.paced_seconds,
                "orders": paced_n,
                "produce_s": round(produced[0], 2) if produced else None,
                "samples": len(lat),
                "p50_ms": round(percentile(lat, 50), 1),
                "p90_ms": round(percentile(lat, 90), 1),
                "p99_ms": round(percentile(lat, 99), 1),
                "max_ms": round(lat[-1], 1) if lat else None,
                "mean_ms": round(statistics.fmean(lat), 1) if lat else None,
            }
            log(
                f"{system}/{guarantee}: latency phase {outcome2}: "
                f"p50 {result['latency_phase']['p50_ms']} ms, "
                f"p99 {result['latency_phase']['p99_ms']} ms"
            )
        else:
            result["latency_phase"] = {"outcome": "skipped: job did not catch up"}

        # ---- stop + verify
        result["late_outputs"] = collector.settle(cfg.settle_seconds)
        sampler.finish()
        result["peak_rss_mb"] = round(sampler.peak_rss_bytes / 2**20, 1)
        result["peak_rss_main_hwm_mb"] = round(sampler.hwm_main / 2**20, 1)
        if sampler.cpu_seconds is not None:
            result["cpu_s"] = round(sampler.cpu_seconds, 1)
        result["verify"] = verify(collector, final_truth)
        result["correct"] = result["verify"]["correct"] and result["verify_preload"]["correct"]
        if outcome == "done":
            result["status"] = "ok"
        elif outcome == "timeout":
            result["status"] = "timeout"
            result["error"] = f"{collector.count}/{truth.paid} outputs before the timeout"
            result["log_tail"] = _tail(log_path)
        else:
            result["error"] = "job exited before producing every output"
            result["log_tail"] = _tail(log_path)
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["log_tail"] = _tail(log_path)
        log(f"{system}/{guarantee}: failed - {result['error']}")
    finally:
        if sampler is not None and "peak_rss_mb" not in result and proc is not None:
            sampler.finish()
            result["peak_rss_mb"] = round(sampler.peak_rss_bytes / 2**20, 1)
        if proc is not None:
            result["shutdown"] = _stop_process(proc)
            if result["status"] == "ok" and proc.returncode not in (0, -signal.SIGTERM):
                result["shutdown"]["note"] = "non-zero exit after SIGTERM"
        if watcher is not None:
            watcher.stop()
        if collector is not None:
            collector.close()
        shutil.rmtree(state_dir, ignore_errors=True)
        if not cfg.keep_topics:
            cleanup(cfg.broker, token, watcher.groups if watcher else set())
    return result


def cleanup(broker: str, token: str, groups: set[str]) -> None:
    """Delete the topics and consumer groups of one job run."""
    try:
        deleted = gen.delete_topics_matching(broker, token)
        log(f"deleted {len(deleted)} topics matching {token}")
    except Exception as exc:
        log(f"topic cleanup for {token} failed: {exc}")
    if groups:
        admin = AdminClient({"bootstrap.servers": broker})
        try:
            for future in admin.delete_consumer_groups(sorted(groups), request_timeout=15).values():
                with contextlib.suppress(Exception):
                    future.result(15)
        except Exception as exc:
            log(f"consumer group cleanup for {token} failed: {exc}")


# --------------------------------------------------------------------------- reporting


def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:  # NaN
        return "-"
    return format(value, spec) if spec else str(value)


def format_table(results: list[dict[str, Any]]) -> str:
    """Render the results as a fixed-width text table."""
    header = (
        f"{'system':<11} {'guarantee':<14} {'status':<8} {'events/s':>9} {'wall ev/s':>9} "
        f"{'start s':>7} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>7} {'CPU s':>6} correct"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lat = r.get("latency_phase") or {}
        lines.append(
            f"{r['system']:<11} {r['guarantee']:<14} {r['status']:<8} "
            f"{_fmt(r.get('events_per_s'), ',.0f'):>9} "
            f"{_fmt(r.get('events_per_s_wall'), ',.0f'):>9} "
            f"{_fmt(r.get('startup_s'), '.1f'):>7} "
            f"{_fmt(lat.get('p50_ms'), ',.0f'):>8} {_fmt(lat.get('p99_ms'), ',.0f'):>8} "
            f"{_fmt(r.get('peak_rss_mb'), '.0f'):>7} {_fmt(r.get('cpu_s'), '.0f'):>6} "
            f"{_fmt(r.get('correct'))}"
        )
        if r.get("error"):
            lines.append(f"    error: {r['error']}")
    return "\n".join(lines)


def parse_list(value: str, allowed: tuple[str, ...]) -> list[str]:
    """Split a comma-separated option and check every item is allowed."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    for item in items:
        if item not in allowed:
            raise argparse.ArgumentTypeError(f"{item!r} is not one of {', '.join(allowed)}")
    return items


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--systems", default=",".join(SYSTEMS), help="comma list (%(default)s)")
    p.add_argument("--guarantees", default=",".join(GUARANTEES), help="comma list (%(default)s)")
    p.add_argument("--orders", type=int, default=200_000)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--broker", default="127.0.0.1:9092")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--timeout", type=float, default=300, help="cap of the throughput phase (s)")
    p.add_argument(
        "--first-output-timeout",
        type=float,
        default=120,
        help="give a job up when it produced no output this many seconds after start",
    )
    p.add_argument("--paced-rate", type=float, default=2000, help="latency phase orders/s")
    p.add_argument("--paced-seconds", type=float, default=10, help="latency phase length")
    p.add_argument(
        "--commit-interval",
        type=float,
        default=None,
        help="commit interval passed to the faust/quix baselines (default: each one's own)",
    )
    p.add_argument("--output", type=Path, default=None, help="result JSON path")
    p.add_argument("--keep-topics", action="store_true", help="do not delete the run's topics")
    args = p.parse_args(argv)
    systems = parse_list(args.systems, SYSTEMS)
    guarantees = parse_list(args.guarantees, GUARANTEES)

    run_id = f"{time.strftime('%Y%m%d%H%M%S')}{uuid.uuid4().hex[:6]}"
    log_dir = RESULTS_DIR / "logs" / run_id
    log_dir.mkdir(parents=True, exist_ok=True)
    cfg = BenchConfig(
        broker=args.broker,
        orders=args.orders,
        users=args.users,
        partitions=args.partitions,
        seed=args.seed,
        timeout=args.timeout,
        paced_rate=args.paced_rate,
        paced_seconds=args.paced_seconds,
        commit_interval=args.commit_interval,
        run_id=run_id,
        log_dir=log_dir,
        keep_topics=args.keep_topics,
        first_output_timeout=args.first_output_timeout,
    )
    preload_truth = gen.ground_truth(gen.generate_orders(args.orders, args.users, args.seed))
    report: dict[str, Any] = {
        "benchmark": "user_spending",
        "run_id": run_id,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "orders": args.orders,
            "paid": preload_truth.paid,
            "users": args.users,
            "partitions": args.partitions,
            "broker": args.broker,
            "seed": args.seed,
            "timeout_s": args.timeout,
            "first_output_timeout_s": args.first_output_timeout,
            "paced_rate": args.paced_rate,
            "paced_seconds": args.paced_seconds,
            "commit_interval_s": args.commit_interval,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "methodology": {
            "events_per_s": "N / (last output receive - last consumer-group STABLE before the "
            "first output)",
            "events_per_s_from_first_output": "N*(P-1)/P / (last output - first output)",
            "events_per_s_wall": "N / (last output - process spawn)",
            "latency": "output receive time - output record timestamp (= input timestamp), "
            "paced phase only",
            "peak_rss_mb": "max(sampled RSS of the job's process tree every 0.25 s, VmHWM of "
            "the main process)",
        },
        "results": [],
    }
    output = args.output or RESULTS_DIR / f"user_spending-{run_id}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        for system in systems:
            for guarantee in guarantees:
                log(f"=== {system} / {guarantee} (run {run_id})")
                report["results"].append(run_job(cfg, system, guarantee, preload_truth))
                output.write_text(json.dumps(report, indent=2, default=str))
    finally:
        if not args.keep_topics:
            with contextlib.suppress(Exception):
                gen.delete_topics_matching(args.broker, run_id)
        output.write_text(json.dumps(report, indent=2, default=str))
    print(format_table(report["results"]))
    print(f"\nresults: {output}")
    return 0 if all(r["status"] == "ok" and r.get("correct") for r in report["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
