"""Restart time of a worker holding a large table: clean stop, then SIGKILL.

Runs ``bench/recovery_app.py`` (a table of ``--keys`` keys, ``table_of``) as a real worker
on Apache Kafka:

1. a fresh ``items`` topic (``--partitions``) gets ``--keys`` distinct keys; the worker
   starts on an empty state folder and processes them all (committed offsets);
2. **clean restart**: the worker stops gracefully and starts again on its state folder;
3. **restart after SIGKILL**: ``--updates`` more records, the worker is killed once they
   are committed, and starts again on its state folder.

Reported for each start: seconds from spawn to ``GET /ready`` answering ready (the table
recovered, the worker in its group), and the changelog records recovery read (from the
high watermarks and start offsets of the changelog partitions the worker logs). Today
every assignment replays the whole changelog (issue 14 is to make it read the tail only).

    python bench/recovery.py --keys 1000000 --broker 127.0.0.1:9092

Results: a table on stdout and ``bench/results/recovery-<run id>.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import orders as gen
from bench.chaos.observe import Cluster
from streamflow.client import Client
from tests.integration.support import AppRun, WorkerProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
_ROW = re.compile(r"^\|\s*(\S+)\s*\|\s*(\d+)\s*\|\s*(-?\d+)\s*\|", re.MULTILINE)


def produce(broker: str, topic: str, keys: range, version: int) -> None:
    """One record per key: ``{"v": version}``."""
    producer = Producer({**gen.bulk_producer_config(broker), "partitioner": "murmur2_random"})
    value = orjson.dumps({"v": version, "pad": "x" * 40})
    for key in keys:
        while True:
            try:
                producer.produce(topic, value, f"key-{key:08d}".encode())
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(300):
        raise RuntimeError("records not all acknowledged")


def changelog_records_read(log_text: str) -> int:
    r"""Changelog records the last recovery in ``log_text`` read: per active changelog
    partition, from the offset reading started at to the high watermark (faust logs both
    as tables; a start of -1 is the beginning).

    >>> log = ("+Highwater - Active-+\n| app-t-changelog | 0 | 100 |\n| 〃 | 1 | 50 |\n"
    ...        "+Reading Starts At - Active-+\n| app-t-changelog | 0 | -1 |\n| 〃 | 1 | 40 |\n")
    >>> changelog_records_read(log)
    111
    """
    highwater = log_text.rfind("Highwater - Active")
    starts = log_text.rfind("Reading Starts At - Active")
    if highwater < 0 or starts < highwater:
        return 0
    standby = log_text.find("Reading Starts At - Standby", starts)
    ends = _rows(log_text[highwater:starts])
    began = _rows(log_text[starts : standby if standby > 0 else None])
    return sum(max(0, end - began.get(tp, -1)) for tp, end in ends.items())


def _rows(table: str) -> dict[tuple[str, int], int]:
    out, topic = {}, ""
    for name, partition, number in _ROW.findall(table):
        topic = topic if name == "〃" else name
        out.setdefault((topic, int(partition)), int(number))
    return out


def wait_ready(worker: WorkerProcess, started: float, timeout: float) -> float:
    client = Client(f"http://127.0.0.1:{worker.web_port}", timeout=5)
    deadline = started + timeout
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.log()[-2000:]}")
        if client.ready():
            return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"worker not ready within {timeout}s")


def wait_committed(cluster: Cluster, group: str, topic: str, total: int, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() < started + timeout:
        committed = cluster.committed(group)
        if sum(off for (t, _), off in committed.items() if t == topic) >= total:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"{total} records of {topic} not committed within {timeout}s")


def start(run: AppRun, worker: WorkerProcess, label: str, timeout: float) -> dict[str, Any]:
    offset = worker.log_path.stat().st_size if worker.log_path.exists() else 0
    started = time.monotonic()
    worker.start()
    ready_s = wait_ready(worker, started, timeout)
    log_text = worker.log_path.read_text(errors="replace")[offset:]
    read = changelog_records_read(log_text)
    print(
        f"[{label}] ready after {ready_s:.1f}s; recovery read {read} changelog records",
        file=sys.stderr,
        flush=True,
    )
    return {"start": label, "ready_s": round(ready_s, 2), "changelog_records_read": read}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--updates", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--broker", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args(argv)
    run = AppRun(
        args.broker,
        Path(tempfile.mkdtemp(prefix="bench-recovery-")),
        app_path="bench/recovery_app.py",
        run_id=uuid.uuid4().hex[:8],
    )
    topic = f"items-{run.run_id}"
    run.extra_env["STREAMFLOW_TOPIC_ITEMS"] = topic
    cluster = Cluster(args.broker)
    gen.create_topics(args.broker, [topic], args.partitions)
    produce(args.broker, topic, range(args.keys), 1)
    worker = run.worker()
    results: list[dict[str, Any]] = [start(run, worker, "first (empty state)", args.timeout)]
    results[0]["process_s"] = round(
        wait_committed(cluster, run.app_id, topic, args.keys, args.timeout), 1
    )
    worker.stop(timeout=120)
    results.append(start(run, worker, "after a clean stop", args.timeout))
    produce(args.broker, topic, range(args.updates), 2)
    wait_committed(cluster, run.app_id, topic, args.keys + args.updates, args.timeout)
    worker.kill()
    results.append(start(run, worker, "after SIGKILL", args.timeout))
    worker.stop(timeout=120)
    out = REPO_ROOT / "bench" / "results" / f"recovery-{run.run_id}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"{'start':<22}{'ready s':>9}{'changelog read':>16}")
    for r in results:
        print(f"{r['start']:<22}{r['ready_s']:>9}{r['changelog_records_read']:>16}")
    print(
        f"results: {out.relative_to(REPO_ROOT)}; {args.keys} keys, table changelog of "
        f"{args.keys + args.updates} records"
    )
    gen.delete_topics_matching(args.broker, run.run_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
