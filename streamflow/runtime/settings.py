"""Worker settings: command-line options over environment variables over app defaults.

Example:
    >>> from streamflow.runtime.settings import normalize_broker
    >>> normalize_broker("127.0.0.1:9092")
    'kafka://127.0.0.1:9092'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_KAFKA",
    "DEFAULT_WEB_PORT",
    "WorkerSettings",
    "normalize_broker",
    "state_dir",
]

DEFAULT_KAFKA = "kafka://127.0.0.1:9092"
DEFAULT_WEB_PORT = 6066


def normalize_broker(url: str) -> str:
    """Turn ``host:port`` (or a comma list of them) into faust's ``kafka://`` form.

    >>> normalize_broker("kafka://a:9092")
    'kafka://a:9092'
    >>> normalize_broker("a:1,b:2")
    'kafka://a:1;b:2'
    """
    url = url.strip()
    if "://" in url:
        return url
    return "kafka://" + ";".join(part.strip() for part in url.split(","))


def bootstrap_servers(url: str) -> str:
    """The ``host:port,host:port`` list of a broker URL, for plain Kafka clients.

    >>> bootstrap_servers("kafka://a:1;b:2")
    'a:1,b:2'
    """
    return normalize_broker(url).split("://", 1)[1].replace(";", ",")


def state_dir() -> Path:
    """The state folder: ``STREAMFLOW_STATE_DIR`` or ``./state``.

    >>> import os
    >>> os.environ["STREAMFLOW_STATE_DIR"] = "/tmp/sf"
    >>> str(state_dir())
    '/tmp/sf'
    >>> del os.environ["STREAMFLOW_STATE_DIR"]
    """
    return Path(os.environ.get("STREAMFLOW_STATE_DIR") or "state").absolute()


@dataclass
class WorkerSettings:
    """Everything a worker process needs besides the app itself."""

    broker: str
    web_port: int
    web_host: str = "127.0.0.1"
    processing_guarantee: str | None = None
    loglevel: str = "info"

    @property
    def bootstrap(self) -> str:
        """``host:port`` list of the broker."""
        return bootstrap_servers(self.broker)

    @classmethod
    def resolve(
        cls,
        *,
        broker: str | None = None,
        web_port: int | None = None,
        app_broker: str | None = None,
        loglevel: str = "info",
    ) -> WorkerSettings:
        """Merge options (``--broker``/``--web-port``), environment and the app's defaults.

        >>> WorkerSettings.resolve(broker="127.0.0.1:9092", web_port=7000).broker
        'kafka://127.0.0.1:9092'
        """
        chosen = broker or os.environ.get("STREAMFLOW_BROKER") or app_broker or DEFAULT_KAFKA
        port = web_port or int(os.environ.get("STREAMFLOW_WEB_PORT") or DEFAULT_WEB_PORT)
        guarantee = os.environ.get("STREAMFLOW_PROCESSING_GUARANTEE") or None
        return cls(
            broker=normalize_broker(chosen),
            web_port=port,
            processing_guarantee=guarantee,
            loglevel=loglevel,
        )
