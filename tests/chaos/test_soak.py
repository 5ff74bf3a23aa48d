"""A short soak under faults: the consistency harness finds no exactly-once violation.

Each case runs worker processes of an app for half a minute of input while workers are
killed, stopped, paused, added and wiped (and, on the embedded broker, the broker restarted),
then checks outputs, changelogs, local state and open transactions against the ground truth
(see ``bench/chaos``). One case per broker uses a fixed seed (a regression test); with
``CHAOS_EXPLORE=1`` one more uses a random seed (exploration). The seed is printed, and
``CHAOS_SEED=N`` replays a run:

    $ CHAOS_SEED=123 pytest tests/chaos -k "embedded and random" -s

The embedded broker is the harness's own (it restarts it); Apache Kafka is the shared test
broker (``scripts/kafka``), which is never restarted.
"""

from __future__ import annotations

import os
import random

import pytest

from bench.chaos import ChaosConfig, FaultPlan, run_chaos

pytestmark = pytest.mark.kafka

FIXED_SEED = 20261125
DURATION = 30.0
RATE = 150  # orders per second


def _seed(kind: str) -> int:
    if os.environ.get("CHAOS_SEED"):
        return int(os.environ["CHAOS_SEED"])
    return FIXED_SEED if kind == "fixed" else random.SystemRandom().randrange(2**31)


# The fixed seed runs everywhere (a regression test); CHAOS_EXPLORE=1 adds a random seed
# per broker (exploration: a failure there is a finding to reproduce with CHAOS_SEED).
SEED_KINDS = ["fixed", "random"] if os.environ.get("CHAOS_EXPLORE") else ["fixed"]


@pytest.mark.parametrize("seed_kind", SEED_KINDS)
@pytest.mark.parametrize("broker", ["embedded", "kafka"])
def test_soak_finds_no_violation(broker, seed_kind, request, tmp_path):
    seed = _seed(seed_kind)
    app = (
        "order_pipeline"
        if seed_kind == "fixed"
        else random.Random(seed).choice(["order_pipeline", "user_spending"])
    )
    kafka = request.getfixturevalue("kafka_bootstrap") if broker == "kafka" else None
    config = ChaosConfig(
        app=app,
        broker=broker,
        kafka_bootstrap=kafka,
        duration=DURATION,
        events=int(DURATION * RATE),
        seed=seed,
        plan=FaultPlan(min_gap=4.0, max_gap=7.0),
        warmup=5.0,
        drain_timeout=180.0,
        out_dir=tmp_path / "chaos",
    )
    print(f"chaos soak: app={app} broker={broker} seed={seed} ({seed_kind})")
    report = run_chaos(config)
    print(report.summary_line())
    assert report.error is None, f"{report.error}\n{report.details()}"
    assert sum(report.faults.values()) >= 1, f"no fault injected: {report.summary_line()}"
    assert report.ok, f"{report.summary_line()}\n{report.details()}\nlogs: {tmp_path / 'chaos'}"
