"""One chaos run from start to verdict.

1. Start the broker (embedded, a private Apache Kafka, or an existing one) and create the
   run's input and reference topics; every name carries the run id.
2. Start the first workers. If the app has reference topics, write their records and wait
   until the tables they feed hold them (their changelogs say so). Then write the input at a
   steady rate for ``duration`` seconds, injecting faults at random
   (:mod:`bench.chaos.faults`) after a warm-up.
3. Stop injecting; keep one worker (the others stop gracefully) and let it drain: the input
   fully committed and nothing moving any more.
4. Check, against a ground truth computed from the input (and reference) topics alone:
   every output topic record by record, every table's changelog (last value per key), the
   dead-letter topic, and that no transaction is left open (last stable offset = high
   watermark).
5. Stop the last worker and read its RocksDB files (the live state); start a fresh worker on
   an empty state folder, let it rebuild its tables from the changelogs, stop it and read
   its files (the rebuilt state). Both must equal the ground truth.

Example:
    >>> config = ChaosConfig(app="order_pipeline", broker="embedded", duration=60, events=6000)
    >>> config.rate
    100.0
    >>> # report = run_chaos(config); print(report.summary_line())
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.chaos.brokers import ROOT, Broker, EmbeddedBroker, ExistingKafka, PrivateKafka
from bench.chaos.checks import compare_mapping
from bench.chaos.faults import FaultInjector, FaultPlan
from bench.chaos.load import SteadyLoad, write_records
from bench.chaos.observe import Cluster, Record
from bench.chaos.profiles import DEAD_LETTERS, PROFILES, AppProfile, latest_by_key
from bench.chaos.report import Report
from bench.chaos.state import dirty_partitions, read_table
from bench.chaos.workers import ChaosRun, Slot, WorkerPool
from streamflow.client import Client
from streamflow.dsl.topology import StoreNode, TableSourceNode
from streamflow.runtime.admin import ensure_topics
from streamflow.topics import Topic
from tests.integration.support import generate, wait_for_log

__all__ = ["BROKERS", "ChaosConfig", "run_chaos"]

BROKERS = ("embedded", "kafka")
DEFAULT_OUT = ROOT / "bench" / "results" / "chaos"
# How long the input may take to be written after the chaos phase (broker restarts delay it).
LOAD_GRACE = 180.0
# Workers alive while the group stays empty and input waits this long are taken for hung.
HUNG_AFTER = 60.0
# How long the first workers may take to load the reference records into their tables.
REFERENCE_TIMEOUT = 240.0
# Ticks (wall-clock timers) a partition may have waiting when drained: about 3 s of them.
TICK_LAG = 3


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class ChaosConfig:
    """Everything a run needs; the defaults make a two-minute run on the embedded broker.

    ``kafka_bootstrap`` (with ``broker="kafka"``) uses a Kafka that is already running and
    never restarts it; without it, ``broker="kafka"`` starts a private Apache Kafka.
    ``source`` is another checkout whose ``streamflow`` package the workers run (to test a
    patch, or to pin the code under test while this tree changes).
    """

    app: str = "user_spending"
    broker: str = "embedded"
    kafka_bootstrap: str | None = None
    duration: float = 120.0
    events: int = 24_000
    users: int = 50
    seed: int | None = None
    workers: int = 2
    plan: FaultPlan = field(default_factory=FaultPlan)
    warmup: float = 8.0
    cooldown: float = 5.0
    settle: float = 5.0
    drain_timeout: float = 300.0
    out_dir: Path = DEFAULT_OUT
    keep: bool = False
    source: Path | None = None
    say: Callable[[str], None] = _stderr

    def __post_init__(self) -> None:
        if self.app not in PROFILES:
            raise ValueError(f"unknown app {self.app!r}; known: {', '.join(PROFILES)}")
        if self.broker not in BROKERS:
            raise ValueError(f"unknown broker {self.broker!r}; known: {', '.join(BROKERS)}")
        if not 1 <= self.workers <= self.plan.max_workers:
            raise ValueError("workers must be between 1 and the plan's max_workers")

    @property
    def rate(self) -> float:
        """Input events per second."""
        return self.events / self.duration


def run_chaos(config: ChaosConfig) -> Report:
    """Run one chaos run as ``config`` says and return its report (never raises on violations).

    KeyboardInterrupt still propagates, after every process of the run has been stopped.
    """
    seed = config.seed if config.seed is not None else random.SystemRandom().randrange(2**31)
    return _Run(config, seed).execute()


class _Run:
    """The state of one run; :meth:`execute` drives the phases and always cleans up."""

    def __init__(self, config: ChaosConfig, seed: int) -> None:
        self.config = config
        self.seed = seed
        self.rng = random.Random(seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.profile: AppProfile = PROFILES[config.app]
        self.dir = config.out_dir / f"{config.app}-{config.broker}-{self.run_id}"
        self.report = Report(config.app, config.broker, seed, self.run_id)
        self.started = time.monotonic()
        self.broker = self._broker()
        self.cluster = Cluster(self.broker.bootstrap)
        self.pool: WorkerPool | None = None
        self.load: SteadyLoad | None = None
        self.injector: FaultInjector | None = None
        # The tables' final contents by the ground truth, once the topics were checked.
        self.expected: dict[str, dict[Any, Any]] | None = None
        # The records written to each reference topic (by logical name), before the input.
        self.references: dict[str, list[tuple[Any, Any]]] = {}

    # --- driving ------------------------------------------------------------------------

    def execute(self) -> Report:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_file = (self.dir / "chaos.log").open("a")
        self.say(f"seed={self.seed} run={self.run_id} app={self.config.app} dir={self.dir}")
        try:
            self._setup()
            self._chaos()
            survivor = self._settle()
            self._drain()
            self._check_topics()
            self._await_sole_owner(survivor)
            self._check_state(survivor, "live")
            self._check_hanging("after the last worker stopped", violation=False)
            self._check_rebuilt()
        except KeyboardInterrupt:
            self.report.error = "interrupted"
            raise
        except Exception as exc:  # a harness or environment failure, not a verdict
            self.report.error = f"{type(exc).__name__}: {exc}"
            self.say(f"run failed: {self.report.error}")
        finally:
            self._cleanup()
        return self.report

    def say(self, message: str) -> None:
        clock = datetime.now().strftime("%H:%M:%S.%f")[:-3]
        line = f"[{clock} {time.monotonic() - self.started:6.1f}s] {message}"
        self.config.say(line)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    # --- phases -------------------------------------------------------------------------

    def _broker(self) -> Broker:
        if self.config.broker == "embedded":
            return EmbeddedBroker(self.dir / "broker")
        if self.config.kafka_bootstrap:
            return ExistingKafka(self.config.kafka_bootstrap)
        return PrivateKafka(PrivateKafka.free_port_pair(random.Random()))

    def _setup(self) -> None:
        plan = self.config.plan
        if not self.broker.restart_kinds:
            kinds = tuple(k for k in plan.kinds if not k.startswith("broker-"))
            plan = replace(plan, kinds=kinds)
        self.say(f"broker: {self.broker.describe()}")
        if self.config.source is not None:
            self.say(f"workers run streamflow from {self.config.source}")
        self.broker.start()
        self.run = ChaosRun(
            self.broker.bootstrap,
            self.dir / "state",
            app_path=self.profile.path,
            run_id=self.run_id,
            profile=self.profile,
            source=self.config.source,
        )
        self.app = self.run.load_app()
        self.input_topic = self.app.topics[self.run.topic_name(self.profile.input_topic)]
        self.reference_topics = {
            name: self.app.topics[self.run.topic_name(name)]
            for name in self.profile.reference_topics
        }
        self.extra_input_topics = {
            name: self.app.topics[self.run.topic_name(name)]
            for name in self.profile.extra_input_topics
        }
        asyncio.run(
            ensure_topics(
                self.broker.bootstrap,
                [
                    (topic.name, topic.partitions or self.app.partitions, {})
                    for topic in self._written_topics()
                ],
            )
        )
        self.pool = WorkerPool(self.run)
        self.injector = FaultInjector(self.rng, self.pool, self.broker, plan, self.say)
        orders = generate(self.config.events, self.config.users, self.seed)
        topics = {
            self.profile.input_topic: self.input_topic,
            **self.extra_input_topics,
        }
        records = self.profile.input_records(orders, topics, self.app.partitions, self.seed)
        # The records of every input topic, written over ``duration`` seconds.
        rate = len(records) / self.config.duration
        self.load = SteadyLoad(self.broker.bootstrap, records, self.app.partitions, rate)
        for _ in range(self.config.workers):
            slot = self.pool.add()
            self.say(f"start {slot.describe()}")
            self.pool.start(slot)
        self._load_references(sorted({order["user_id"] for order in orders}), orders)
        self.say(
            f"writing {len(records)} records ({self.config.events} orders of "
            f"{self.config.users} users) to {self.input_topic.name} and the other inputs at "
            f"{rate:.0f}/s; faults: {', '.join(plan.kinds)}"
        )
        self.load.start()

    def _written_topics(self) -> list[Topic]:
        """The topics the harness writes: the input, the other inputs, the references."""
        return [
            self.input_topic,
            *self.extra_input_topics.values(),
            *self.reference_topics.values(),
        ]

    def _load_references(self, users: list[str], orders: list[dict[str, Any]]) -> None:
        """Write the reference records, then wait until the tables they feed hold them."""
        self.references = self.profile.reference_records(users, self.seed, orders)
        if not self.references:
            return
        for name, records in self.references.items():
            topic = self.reference_topics[name]
            self.say(f"writing {len(records)} reference records to {topic.name}")
            partitions = topic.partitions or self.app.partitions
            write_records(
                self.broker.bootstrap,
                topic,
                records,
                partitions,
                partition_of=lambda key, value, name=name, n=partitions: (
                    self.profile.reference_partition(name, key, value, n)
                ),
            )
        waiting = self._reference_tables()
        self.say(f"waiting for tables {', '.join(sorted(waiting)) or '(none)'} to hold them")
        deadline = time.monotonic() + REFERENCE_TIMEOUT
        while waiting:
            self.injector.tend()
            existing = set(self.cluster.topics(self.run_id))
            for store, (node, expected) in list(waiting.items()):
                changelog = self._changelog(node)
                # Only once the workers created it: reading a topic may auto-create it.
                if changelog.name not in existing:
                    continue
                records, _ = self.cluster.read(changelog)
                latest = {
                    k: self.profile.normalize(store, v) for k, v in latest_by_key(records).items()
                }
                if latest == expected:
                    self.say(f"table {store} holds the {len(expected)} reference records")
                    del waiting[store]
            if waiting and time.monotonic() > deadline:
                raise RuntimeError(
                    f"tables {', '.join(sorted(waiting))} did not hold the reference records "
                    f"within {REFERENCE_TIMEOUT:.0f}s"
                )
            if waiting:
                time.sleep(2)

    def _reference_tables(self) -> dict[str, tuple[StoreNode, dict[Any, Any]]]:
        """The tables read straight from a reference topic, with what they must hold then."""
        names = {topic.name: name for name, topic in self.reference_topics.items()}
        out: dict[str, tuple[StoreNode, dict[Any, Any]]] = {}
        for sub in self.app.topology().subtopologies:
            for source in sub.sources:
                name = names.get(source.topic.name)
                if name is None:
                    continue
                for node in source.children:
                    if isinstance(node, TableSourceNode):
                        expected = {
                            k: self.profile.normalize(node.store, v)
                            for k, v in self._written(name).items()
                        }
                        out[node.store] = (node, expected)
        return out

    def _written(self, name: str) -> dict[Any, Any]:
        """The table the records written to reference topic ``name`` make (last per key)."""
        records = self.references.get(name, [])
        return latest_by_key([Record(0, i, k, v) for i, (k, v) in enumerate(records)])

    def _changelog(self, node: StoreNode) -> Topic:
        return Topic(
            f"{self.app.id}-{node.store}-changelog", key=node.key_codec, value=node.value_codec
        )

    def _chaos(self) -> None:
        began = time.monotonic()
        end = began + self.config.duration
        faults_from, faults_until = began + self.config.warmup, end - self.config.cooldown
        next_status = began + 10
        while True:
            now = time.monotonic()
            if now >= end and not self.load.is_alive():
                break
            if now >= end + LOAD_GRACE:
                raise RuntimeError(f"the input was not written {LOAD_GRACE:.0f}s after the end")
            self.injector.tend()
            if faults_from <= now < faults_until:
                self.injector.maybe_inject()
            if now >= next_status:
                next_status = now + 10
                self.say(
                    f"status: written {self.load.delivered}/{len(self.load.records)}, "
                    f"workers {len(self.pool.running())}, faults {dict(self.injector.faults)}"
                )
            time.sleep(0.25)
        if self.load.errors:
            raise RuntimeError(
                f"{len(self.load.errors)} input records failed: {self.load.errors[0]}"
            )
        self.say(
            f"chaos over: {self.load.delivered} input records written; "
            f"faults {dict(self.injector.faults)}"
        )

    def _settle(self) -> Slot:
        """Keep one worker: resume paused ones, stop all but one gracefully (or start one)."""
        for slot in self.pool.slots:
            slot.resume()
        self.injector.tend()
        running = self.pool.running()
        if not running:
            slot = self.injector.idle_or_new()
            self.say(f"final: start {slot.describe()}")
            self.pool.start(slot)
            running = [slot]
        survivor = self.rng.choice(running)
        for slot in running:
            if slot is not survivor:
                self.say(f"final: term {slot.describe()}")
                self.injector.stop(slot)
        self.say(f"final: {survivor.describe()} drains the rest alone")
        return survivor

    def _await_sole_owner(self, survivor: Slot, timeout: float = 180.0) -> None:
        """Wait until ``survivor`` is ready (its tables recovered) and holds every partition
        of every table, as its table views say: input can be fully committed while it
        still restores partitions it took over from a worker that left (or while a worker
        killed in a stop still counts as a member), and its state is checked next."""
        client = Client(f"http://127.0.0.1:{survivor.worker.web_port}", timeout=5)
        deadline = time.monotonic() + timeout
        held = "?"
        while time.monotonic() < deadline:
            self.injector.tend()
            try:
                tables = client.tables() if client.ready() else []
            except Exception as exc:
                tables, held = [], type(exc).__name__
            if tables:
                owners = [table["workers"] for table in tables]
                held = str([sorted(len(parts) for parts in o.values()) for o in owners])
                if all(
                    len(o) == 1 and len(next(iter(o.values()))) == table["partitions"]
                    for o, table in zip(owners, tables, strict=True)
                ):
                    return
            time.sleep(1)
        self.report.warnings.append(
            f"{survivor.describe()} did not hold every table partition, ready, within "
            f"{timeout:.0f}s (partitions held per worker: {held})"
        )

    def _source_topics(self) -> set[str]:
        return {
            source.topic.name for sub in self.app.topology().subtopologies for source in sub.sources
        }

    def _drain(self) -> bool:
        """Wait until the input is fully committed and no offset moves for ``settle`` seconds."""
        deadline = time.monotonic() + self.config.drain_timeout
        # Tick topics (wall-clock timers) move every second whatever happens: left out.
        ticks = set(self.app.topology().ticked_processors)
        sources = self._source_topics() - ticks
        written = {topic.name for topic in self._written_topics()}
        last, since, behind = None, time.monotonic(), ["not measured yet"]
        while time.monotonic() < deadline:
            self.injector.tend()
            try:
                committed = self.cluster.committed(self.app.id)
                ends = self.cluster.end_offsets(self.cluster.topics(self.run_id))
                # Internal partitions whose LSO is past the committed offset: read them to see
                # whether a record waits (aborted records and markers do not count).
                internal_unread = self.cluster.unread(
                    {
                        tp: committed.get(tp, 0)
                        for tp, (lso, _) in ends.items()
                        if tp[0] in sources and tp[0] not in written and lso > committed.get(tp, 0)
                    }
                )
            except Exception as exc:
                self.say(f"drain: broker not answering ({type(exc).__name__}); retrying")
                time.sleep(2)
                continue
            behind = (
                [
                    f"{topic}[{p}] committed {committed.get((topic, p), 0)} of {hw}"
                    for (topic, p), (_, hw) in sorted(ends.items())
                    if topic in written and committed.get((topic, p), 0) < hw
                ]
                + [
                    # Repartition and other internal topics too: a worker stuck in recovery (or
                    # fenced) leaves them behind while every input is committed.
                    f"{topic}[{p}] committed {committed.get((topic, p), 0)} of LSO {lso}"
                    for (topic, p), (lso, _) in sorted(ends.items())
                    if (topic, p) in internal_unread
                ]
                + [  # wall-clock timers fire only while ticks are processed (not in recovery)
                    f"{topic}[{p}] ticks committed {committed.get((topic, p), 0)} of {hw}"
                    for (topic, p), (_, hw) in sorted(ends.items())
                    if topic in ticks and hw - committed.get((topic, p), 0) > TICK_LAG
                ]
            )
            snapshot = (
                sorted((tp, o) for tp, o in committed.items() if tp[0] in sources),
                sorted((tp, o) for tp, o in ends.items() if tp[0] not in ticks),
            )
            now = time.monotonic()
            if snapshot != last:
                last, since = snapshot, now
            elif behind and now - since >= HUNG_AFTER and self._group_empty():
                self.injector.restart_hung(
                    f"input waiting, no member in the group for {now - since:.0f}s"
                )
                last, since = None, now
            elif not behind and now - since >= self.config.settle:
                self.say("drained: input fully committed, offsets still")
                self._note_lags(committed, ends, sources)
                return True
            time.sleep(1)
        self.report.stalled.extend(behind or ["offsets kept moving until the drain timeout"])
        self.say(f"not drained within {self.config.drain_timeout:.0f}s: {behind[:5]}")
        return False

    def _group_empty(self) -> bool:
        try:
            return self.cluster.group_members(self.app.id) == 0
        except Exception:
            return False

    def _note_lags(self, committed: dict, ends: dict, sources: set[str]) -> None:
        for (topic, p), (lso, _) in sorted(ends.items()):
            if topic in sources and lso - committed.get((topic, p), 0) > 2:
                self.report.notes.append(
                    f"{topic}[{p}]: committed {committed.get((topic, p), 0)}, LSO {lso}"
                )

    # --- checks -------------------------------------------------------------------------

    def _read(self, topic: Topic) -> list[Record]:
        records, undecodable = self.cluster.read(topic)
        for bad in undecodable:
            self.report.tally.add(
                "mismatches", f"{bad.topic}[{bad.partition}]@{bad.offset}: {bad.error}"
            )
        return records

    def _check_topics(self) -> None:
        tally = self.report.tally
        inputs = self._read(self.input_topic)
        self.report.events = len(inputs)
        references = {name: self._read(topic) for name, topic in self.reference_topics.items()}
        for name, records in references.items():
            # The ground truth reads them back: check first that they are what was written.
            compare_mapping(
                tally, f"reference topic {name}", latest_by_key(records), self._written(name)
            )
        for name, topic in self.extra_input_topics.items():
            references[name] = self._read(topic)
        outputs = {
            name: self._read(self.app.topics[self.run.topic_name(name)])
            for name in self.profile.output_topics
        }
        for name, records in outputs.items():
            self.say(f"check: {name}: {len(records)} records")
        letters = self._read(Topic(self.app.dead_letter_topic, key="bytes", value="bytes"))
        self.report.dlq = len(letters)
        self.report.dlq_checked = self.profile.checks_dead_letters
        outputs[DEAD_LETTERS] = letters
        self.expected = self.profile.expected_tables(inputs, references, outputs)
        self.profile.check_outputs(inputs, outputs, tally, references)
        for node in self.app.topology().stores:
            changelog = self._changelog(node)
            latest = {  # a tombstone deletes the key, as when the table is restored
                key: self.profile.normalize(node.store, value)
                for key, value in latest_by_key(self._read(changelog)).items()
            }
            latest = self.profile.table_scope(node.store, latest)
            compare_mapping(tally, f"changelog of {node.store}", latest, self.expected[node.store])
        self._check_hanging("with the last worker running", violation=True)
        self.say(f"check: topics done: {self.report.tally.counts()}")

    def _check_hanging(self, when: str, violation: bool, samples: int = 4) -> None:
        """Partitions whose LSO stays below the HW over a few seconds: an open transaction."""
        topics = self.cluster.topics(self.run_id)
        open_since: dict[tuple[str, int], tuple[int, int]] | None = None
        for attempt in range(samples):
            ends = self.cluster.end_offsets(topics)
            behind = {tp: v for tp, v in ends.items() if v[0] < v[1]}
            open_since = (
                behind
                if open_since is None
                else {tp: v for tp, v in behind.items() if open_since.get(tp) == v}
            )
            if not open_since:
                return
            if attempt < samples - 1:
                time.sleep(3)
        items = [
            f"{t}[{p}] LSO {lso} < HW {hw} {when}"
            for (t, p), (lso, hw) in sorted(open_since.items())
        ]
        if violation:
            self.report.hanging.extend(items)
        else:
            self.report.warnings.extend(f"open transaction: {item}" for item in items)
        self.say(f"open transactions {when}: {items[:5]}")

    def _check_state(self, slot: Slot, label: str) -> None:
        """Stop ``slot`` gracefully and compare its RocksDB tables with the ground truth."""
        self.say(f"{label} state: stopping {slot.describe()}")
        self.injector.stop(slot)
        if self.expected is None:
            return
        for node in self.app.topology().stores:
            table_dir = slot.worker.table_dir
            values = read_table(table_dir, node.store, node.key_codec, node.value_codec)
            actual = {k: self.profile.normalize(node.store, v) for k, v in values.items()}
            actual = self.profile.table_scope(node.store, actual)
            compare_mapping(
                self.report.tally,
                f"{label} state of {node.store} ({slot.describe()})",
                actual,
                self.expected[node.store],
            )
            dirty = dirty_partitions(table_dir, node.store)
            if dirty:
                self.report.warnings.append(
                    f"{label} state of {node.store}: partitions {dirty} still marked dirty "
                    f"after a clean stop of {slot.describe()}"
                )
        self.say(f"{label} state checked: {self.report.tally.counts()}")

    def _check_rebuilt(self) -> None:
        if self.expected is None:
            return
        slot = self.pool.add()
        self.say(f"rebuild: start {slot.describe()} on an empty state folder")
        self.pool.start(slot)
        try:
            wait_for_log(slot.worker, "Worker ready", timeout=180)
        except AssertionError as exc:
            raise RuntimeError(f"the rebuilding worker never became ready: {exc}") from None
        self._drain()
        self._check_state(slot, "rebuilt")

    # --- cleanup ------------------------------------------------------------------------

    def _cleanup(self) -> None:
        if self.injector is not None:
            self.report.faults.update(self.injector.faults)
            self.report.supervision.update(self.injector.supervision)
            self.report.warnings.extend(self.injector.warnings)
        if self.load is not None:
            self.load.stop()
            self.load.join(10)
        if self.pool is not None:
            self.pool.kill_all()
        keep = self.config.keep or not self.report.ok
        try:
            if isinstance(self.broker, ExistingKafka):
                self.cluster.delete_topics(self.cluster.topics(self.run_id))
            self.broker.close(keep_data=keep)
        except Exception as exc:
            self.report.warnings.append(f"cleanup: {type(exc).__name__}: {exc}")
        if not keep and self.pool is not None:
            # Worker logs stay; the RocksDB folders go.
            shutil.rmtree(self.run.state_dir / self.app.id, ignore_errors=True)
        self.report.save(self.dir / "report.json")
        self.say(f"report: {self.dir / 'report.json'}")
        self.log_file.close()
