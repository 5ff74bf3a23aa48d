"""Session windows, final results only: streamflow vs Quix Streams on the same Apache Kafka.

The job (``apps/page_sessions.py``, its sliding-window table left out; the Quix Streams
peer is ``bench/baselines/quix_page_sessions.py``): page views keyed by user, JSON
``{"user_id", "page", "at"}``, timed by ``at``; sessions per user (inactivity gap
``--gap-ms``); per session the number of views and the distinct pages; one summary per
session, once it closes, to the output topic.

For every system x processing guarantee:

1. fresh topics (``--partitions`` each), preloaded with ``--views`` views over ``--users``
   users, ``--step-ms`` of event time apart, in order; then one view per user ten gaps
   later, which closes every earlier session under either system's closing rule
   (streamflow: the partition's stream time; Quix Streams: the key's own events);
2. the job starts; the output topic is consumed (``read_committed``) until it holds one
   summary per session before those closing views;
3. every summary is checked (each session once, its views and pages exact), the job stops.

Reported: ``events_per_s`` = input views / (last summary - the job's consumer group turned
STABLE before the first summary: start-up excluded, as in ``bench/user_spending.py``),
peak RSS of the job's process tree, CPU seconds.

    python bench/page_sessions.py --views 100000 --broker 127.0.0.1:9092
    python bench/page_sessions.py --systems streamflow --guarantees exactly_once

Results: a table on stdout and ``bench/results/page_sessions-<run id>.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import orders as gen
from bench.user_spending import (
    REPO_ROOT,
    JobCommand,
    _stop_process,
    cleanup,
    free_port,
    log,
    spawn_job,
    streamflow_worker_argv,
)

PAGES = ("/home", "/search", "/item", "/cart", "/checkout", "/help")
SYSTEMS = ("streamflow", "quix")
GUARANTEES = ("at_least_once", "exactly_once")


@dataclass(frozen=True)
class Load:
    """The input of every run, and the summaries it must produce."""

    views: list[tuple[str, dict[str, Any]]]
    #: user -> [(start, end, views, pages)] of the sessions closed by the closing views
    sessions: dict[str, list[tuple[int, int, int, list[str]]]]

    @property
    def expected(self) -> int:
        return sum(len(s) for s in self.sessions.values())


def make_load(views: int, users: int, step_ms: int, gap_ms: int, seed: int, start_ms: int) -> Load:
    """Views in event-time order from ``start_ms``, the closing views, and the sessions
    they must close.

    >>> load = make_load(views=4, users=1, step_ms=1000, gap_ms=1500, seed=1, start_ms=0)
    >>> load.sessions["user-00000"][0][:3], load.expected
    ((0, 3000, 4), 1)
    """
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    times: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for index in range(views):
        user = f"user-{rng.randrange(users):05d}"
        view = {"user_id": user, "page": rng.choice(PAGES), "at": start_ms + index * step_ms}
        out.append((user, view))
        times[user].append((view["at"], view["page"]))
    closing_at = start_ms + views * step_ms + 10 * gap_ms
    for offset, user in enumerate(sorted(times)):
        out.append((user, {"user_id": user, "page": "/bye", "at": closing_at + offset}))
    sessions: dict[str, list[tuple[int, int, int, list[str]]]] = {}
    for user, seen in times.items():
        runs: list[list[tuple[int, str]]] = [[seen[0]]]
        for at, page in seen[1:]:
            if at - runs[-1][-1][0] <= gap_ms:
                runs[-1].append((at, page))
            else:
                runs.append([(at, page)])
        sessions[user] = [
            (run[0][0], run[-1][0], len(run), sorted({page for _, page in run})) for run in runs
        ]
    return Load(out, sessions)


def produce(broker: str, topic: str, views: list[tuple[str, dict[str, Any]]]) -> None:
    """Write the views, keyed by user, partitioned as streamflow partitions (murmur2)."""
    producer = Producer({**gen.bulk_producer_config(broker), "partitioner": "murmur2_random"})
    for user, view in views:
        while True:
            try:
                producer.produce(topic, orjson.dumps(view), user.encode())
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(120):
        raise RuntimeError("views not all acknowledged")


def job_command(system: str, guarantee: str, broker: str, names: dict[str, str], gap_ms: int):
    """The command line and environment of ``system``'s job."""
    if system == "streamflow":
        return JobCommand(
            streamflow_worker_argv("apps/page_sessions.py", broker),
            {
                "STREAMFLOW_APP_ID": names["app"],
                "STREAMFLOW_PROCESSING_GUARANTEE": guarantee,
                "STREAMFLOW_STATE_DIR": names["state"],
                "STREAMFLOW_WEB_PORT": str(free_port()),
                "STREAMFLOW_TOPIC_PAGE_VIEWS": names["input"],
                "STREAMFLOW_TOPIC_USER_SESSIONS": names["output"],
                "PAGE_SESSIONS_GAP_SECONDS": str(gap_ms / 1000),
                "PAGE_SESSIONS_GRACE_SECONDS": "0",
                "PAGE_SESSIONS_RECENT_SECONDS": "0",
            },
        )
    return JobCommand(
        [sys.executable, str(REPO_ROOT / "bench" / "baselines" / "quix_page_sessions.py")],
        {
            "BENCH_BROKER": broker,
            "BENCH_APP_ID": names["app"],
            "BENCH_INPUT_TOPIC": names["input"],
            "BENCH_OUTPUT_TOPIC": names["output"],
            "BENCH_PROCESSING_GUARANTEE": guarantee,
            "BENCH_STATE_DIR": names["state"],
            "BENCH_GAP_MS": str(gap_ms),
        },
    )


def collect(broker: str, topic: str, expected: int, deadline: float, alive) -> dict[str, Any]:
    """Read summaries (read_committed) until ``expected`` came, the deadline passed or the
    job died; then 2 s more, for duplicates."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker,
            "group.id": f"bench-reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: dict[str, list[dict[str, Any]]] = defaultdict(list)
    count, t_first, t_last, settle_until = 0, None, None, None
    try:
        while True:
            now = time.monotonic()
            if settle_until is None and (count >= expected or now > deadline or not alive()):
                settle_until = now + 2
            if settle_until is not None and now > settle_until:
                break
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            got[message.key().decode()].append(orjson.loads(message.value()))
            count += 1
            if count <= expected:
                t_last = time.time()
                t_first = t_first or t_last
    finally:
        consumer.close()
    return {"count": count, "t_first": t_first, "t_last": t_last, "by_user": got}


def verify(load: Load, by_user: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each expected session once, exact; nothing else."""
    wrong = missing = extra = 0
    for user in load.sessions.keys() | by_user.keys():
        expected = load.sessions.get(user, [])
        written = [(s["start"], s["end"], s["views"], s["pages"]) for s in by_user.get(user, [])]
        missing += sum(1 for s in expected if s not in written)
        extra += max(0, len(written) - len(expected))
        wrong += sum(1 for s in written if s not in expected)
    return {"missing": missing, "extra": extra, "wrong": wrong, "correct": not (missing or extra)}


def run_job(args, system: str, guarantee: str, load: Load, run_id: str) -> dict[str, Any]:
    short = {"at_least_once": "alo", "exactly_once": "eos"}[guarantee]
    token = f"{run_id}-{system}-{short}"
    names = {
        "app": f"bench-ps-{token}",
        "input": f"bench-ps-{token}-views",
        "output": f"bench-ps-{token}-sessions",
        "state": tempfile.mkdtemp(prefix=f"bench-ps-{token}-"),
    }
    result: dict[str, Any] = {"system": system, "guarantee": guarantee, "status": "failed"}
    log_dir = REPO_ROOT / "bench" / "results" / "logs" / f"page_sessions-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{system}-{guarantee}.log"
    result["log"] = str(log_path.relative_to(REPO_ROOT))
    proc = watcher = sampler = None
    try:
        gen.create_topics(args.broker, [names["input"], names["output"]], args.partitions)
        produce(args.broker, names["input"], load.views)
        cmd = job_command(system, guarantee, args.broker, names, args.gap_ms)
        result["command"] = cmd.argv
        proc, watcher, sampler, _ = spawn_job(cmd, log_path, args.broker, token)
        log(f"{system}/{guarantee}: started pid {proc.pid}; waiting for {load.expected} sessions")
        got = collect(
            args.broker,
            names["output"],
            load.expected,
            time.monotonic() + args.timeout,
            lambda: proc.poll() is None,
        )
        watcher.stop()
        sampler.finish()
        t_ready = watcher.ready_time(got["t_first"])
        result.update(
            received=got["count"],
            expected=load.expected,
            verify=verify(load, got["by_user"]),
            peak_rss_mb=round(sampler.peak_rss_bytes / 2**20, 1),
            cpu_s=None if sampler.cpu_seconds is None else round(sampler.cpu_seconds, 1),
        )
        start = t_ready or got["t_first"]
        if got["t_last"] and start and got["count"] >= load.expected:
            result["events_per_s"] = round(len(load.views) / (got["t_last"] - start), 1)
            result["events_per_s_basis"] = "group_stable" if t_ready else "first_output"
            result["status"] = "ok"
        log(f"{system}/{guarantee}: {result.get('events_per_s', '?')} events/s, {result['verify']}")
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"{system}/{guarantee}: failed - {result['error']}")
    finally:
        if proc is not None:
            result["shutdown"] = _stop_process(proc)
        if watcher is not None:
            watcher.stop()
        shutil.rmtree(names["state"], ignore_errors=True)
        cleanup(args.broker, token, watcher.groups if watcher else set())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--guarantees", default=",".join(GUARANTEES))
    parser.add_argument("--views", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--step-ms", type=int, default=1)
    parser.add_argument("--gap-ms", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--broker", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args(argv)
    # Event time from now: Kafka's time-based retention deletes records timed long ago.
    now_ms = int(time.time() * 1000)
    load = make_load(args.views, args.users, args.step_ms, args.gap_ms, args.seed, now_ms)
    log(f"{len(load.views)} views, {load.expected} sessions to summarize")
    run_id = uuid.uuid4().hex[:8]
    results = [
        run_job(args, system, guarantee, load, run_id)
        for system in args.systems.split(",")
        for guarantee in args.guarantees.split(",")
    ]
    out = REPO_ROOT / "bench" / "results" / f"page_sessions-{run_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"{'system':<12}{'guarantee':<15}{'events/s':>10}{'RSS MB':>9}{'CPU s':>8}  correct")
    for r in results:
        print(
            f"{r['system']:<12}{r['guarantee']:<15}{r.get('events_per_s', '-')!s:>10}"
            f"{r.get('peak_rss_mb', '-')!s:>9}{r.get('cpu_s', '-')!s:>8}  "
            f"{r.get('verify', {}).get('correct', False)}"
        )
    print(f"results: {out.relative_to(REPO_ROOT)}")
    return 0 if all(r["status"] == "ok" and r["verify"]["correct"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
