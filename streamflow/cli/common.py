"""Options and helpers shared by the commands.

Example:
    >>> from streamflow.cli.common import topic_for
    >>> topic_for(None, "events").value_codec.name
    'json'
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import click
from aiokafka.errors import KafkaConnectionError, KafkaError

from streamflow.app import App
from streamflow.runtime.settings import (
    DEFAULT_KAFKA,
    bootstrap_servers,
    normalize_broker,
    state_dir,
)
from streamflow.topics import Topic, topic_name_override

__all__ = ["broker_errors", "broker_option", "progress", "resolve_bootstrap", "topic_for"]

broker_option = click.option(
    "--broker",
    metavar="URL",
    help="Broker address, e.g. kafka://127.0.0.1:9092 (env STREAMFLOW_BROKER). "
    "Default: the local embedded broker, started on demand.",
)


@contextlib.contextmanager
def broker_errors(bootstrap: str) -> Iterator[None]:
    """Turn broker connection failures into a readable command-line error.

    >>> with broker_errors("127.0.0.1:9092"):
    ...     pass
    """
    try:
        yield
    except KafkaConnectionError as exc:
        raise click.ClickException(
            f"cannot reach a Kafka broker at {bootstrap} ({exc}). Start Apache Kafka "
            "(scripts/kafka start), or leave out --broker/STREAMFLOW_BROKER to use the "
            "embedded broker."
        ) from None
    except KafkaError as exc:
        raise click.ClickException(f"the broker at {bootstrap} refused: {exc}") from None


def resolve_broker(option: str | None, app: App | None = None) -> str:
    """The broker URL to use: option, environment, app default, else the local broker."""
    chosen = option or os.environ.get("STREAMFLOW_BROKER") or (app.broker if app else None)
    if chosen:
        return normalize_broker(chosen)
    return normalize_broker(_local_broker() or DEFAULT_KAFKA)


def _local_broker() -> str | None:
    try:
        from streamflow.broker.local import ensure_local_broker
    except ImportError:
        return None
    return ensure_local_broker(state_dir() / "broker")


def resolve_bootstrap(option: str | None, app: App | None = None) -> str:
    """``host:port`` list for plain Kafka clients (see :func:`resolve_broker`)."""
    return bootstrap_servers(resolve_broker(option, app))


def topic_for(app: App | None, name: str) -> Topic:
    """The topic ``name`` as declared by the app (its codecs), or a str/JSON topic."""
    if app is None:
        return Topic(topic_name_override(name), key="str", value="json")
    resolved = topic_name_override(name)
    if resolved in app.topics:
        return app.topics[resolved]
    if resolved == app.dead_letter_topic:
        return Topic(resolved, key="bytes", value="bytes")
    for store in app.topology().stores:
        if resolved == f"{app.id}-{store.store}-changelog":
            return Topic(resolved, key=store.key_codec, value=store.value_codec)
    known = ", ".join(sorted(app.topics)) or "none"
    raise click.ClickException(f"app {app.id!r} declares no topic {name!r} (declared: {known})")


class progress:
    """Counts work on a terminal (stderr), silent when stderr is not a terminal.

    >>> with progress("produced") as counter:
    ...     counter.add(3)
    """

    def __init__(self, label: str) -> None:
        self.label = label
        self.count = 0
        self.enabled = sys.stderr.isatty()
        self._shown = 0

    def add(self, n: int = 1) -> None:
        self.count += n
        if self.enabled and self.count - self._shown >= 1000:
            self._shown = self.count
            click.echo(f"\r{self.label} {self.count:,} records", nl=False, err=True)

    def __enter__(self) -> progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled and self._shown:
            click.echo(f"\r{self.label} {self.count:,} records", err=True)
