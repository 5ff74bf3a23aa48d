"""The consistency harness: runs an app under faults and checks exactly-once end to end.

Worker processes are killed (SIGKILL), stopped (SIGTERM), paused, added and removed, their
local state deleted, the broker restarted — while input flows at a steady rate. Then the
outputs, changelogs, local RocksDB state and open transactions are checked against a ground
truth computed from the input alone. See :mod:`bench.chaos.runner` for the phases.

Usage:
    $ python -m bench.chaos --app order_pipeline --broker embedded --duration 120 --seed 7
    $ python -m bench.chaos --app user_spending --broker kafka --events 30000
    $ python -m bench.chaos --broker kafka --kafka-bootstrap 127.0.0.1:9092  # no broker faults

From Python:
    >>> from bench.chaos import ChaosConfig, run_chaos
    >>> config = ChaosConfig(app="user_spending", duration=60, events=6000, seed=7)
    >>> # report = run_chaos(config); report.ok, report.summary_line()
"""

from bench.chaos.faults import FAULT_KINDS, FaultPlan
from bench.chaos.report import Report
from bench.chaos.runner import BROKERS, ChaosConfig, run_chaos

__all__ = ["BROKERS", "FAULT_KINDS", "ChaosConfig", "FaultPlan", "Report", "run_chaos"]
