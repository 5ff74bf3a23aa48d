"""``python -m bench.chaos``: one chaos run, a one-line verdict, a non-zero exit on violations.

Example:
    $ python -m bench.chaos --app order_pipeline --broker embedded --duration 120 --seed 7
    ...
    app=order_pipeline broker=embedded events=24000 faults=kill9:3,start:2,term:1 duplicates=0 ...

Exit codes: 0 no violation, 1 violations found, 2 the run itself failed, 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from bench.chaos.faults import FAULT_KINDS, FaultPlan
from bench.chaos.profiles import PROFILES
from bench.chaos.runner import BROKERS, DEFAULT_OUT, ChaosConfig, run_chaos


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM cleans up like Ctrl-C does."""
    raise KeyboardInterrupt


def _kinds(value: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in value.split(",") if k.strip())
    unknown = set(kinds) - set(FAULT_KINDS)
    if unknown:
        raise click.BadParameter(
            f"unknown: {', '.join(sorted(unknown))}; known: {', '.join(FAULT_KINDS)}"
        )
    return kinds


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--app", type=click.Choice(sorted(PROFILES)), default="user_spending", show_default=True
)
@click.option(
    "--broker",
    type=click.Choice(BROKERS),
    default="embedded",
    show_default=True,
    help="embedded: a streamflow broker of the run's own; kafka: a private Apache Kafka "
    "started with scripts/kafka (or --kafka-bootstrap).",
)
@click.option(
    "--kafka-bootstrap",
    metavar="HOST:PORT",
    help="Use this running Kafka instead of a private one (never restarted).",
)
@click.option(
    "--duration", type=float, default=120.0, show_default=True, help="Seconds of input and faults."
)
@click.option(
    "--events",
    type=int,
    default=24_000,
    show_default=True,
    help="Orders written, evenly over the duration.",
)
@click.option("--users", type=int, default=50, show_default=True)
@click.option("--seed", type=int, help="Seed of the input and the faults (random if not given).")
@click.option("--workers", type=int, default=2, show_default=True, help="Workers at the start.")
@click.option("--max-workers", type=int, default=3, show_default=True)
@click.option(
    "--faults",
    "kinds",
    default=",".join(FAULT_KINDS),
    show_default=True,
    callback=lambda ctx, param, value: _kinds(value),
    help="Fault kinds to inject.",
)
@click.option(
    "--fault-gap",
    nargs=2,
    type=float,
    default=(6.0, 14.0),
    show_default=True,
    metavar="MIN MAX",
    help="Seconds between faults, drawn uniformly.",
)
@click.option("--drain-timeout", type=float, default=300.0, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=str(DEFAULT_OUT),
    show_default=True,
    help="Where each run keeps its log, report and (on failure) state.",
)
@click.option(
    "--source",
    type=click.Path(exists=True, file_okay=False),
    help="Run the workers with the streamflow package of this checkout (e.g. a patched copy).",
)
@click.option("--keep", is_flag=True, help="Keep broker data and worker state even on success.")
def main(
    app,
    broker,
    kafka_bootstrap,
    duration,
    events,
    users,
    seed,
    workers,
    max_workers,
    kinds,
    fault_gap,
    drain_timeout,
    out_dir,
    source,
    keep,
) -> None:
    """Run an app's workers under random faults and check exactly-once against a ground truth."""
    plan = FaultPlan(
        kinds=kinds, max_workers=max_workers, min_gap=fault_gap[0], max_gap=fault_gap[1]
    )
    config = ChaosConfig(
        app=app,
        broker=broker,
        kafka_bootstrap=kafka_bootstrap,
        duration=duration,
        events=events,
        users=users,
        seed=seed,
        workers=workers,
        plan=plan,
        drain_timeout=drain_timeout,
        out_dir=Path(out_dir),
        keep=keep,
        source=Path(source).resolve() if source else None,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = run_chaos(config)
    except KeyboardInterrupt:
        click.echo("interrupted: every process of the run was stopped", err=True)
        sys.exit(130)
    details = report.details()
    if details:
        click.echo(details)
    click.echo(report.summary_line())
    sys.exit(0 if report.ok else (2 if report.error else 1))


if __name__ == "__main__":
    main()
