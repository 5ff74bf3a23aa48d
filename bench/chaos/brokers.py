"""The broker a chaos run talks to, and how to restart it.

* :class:`EmbeddedBroker` — streamflow's own broker in a subprocess on its own port and data
  directory; restarts are graceful (SIGTERM) or crashes (SIGKILL).
* :class:`PrivateKafka` — an Apache Kafka of its own, through ``scripts/kafka`` with another
  ``KAFKA_PORT`` (so its own data directory): restarts are ``stop`` then ``start``; the run's
  data is wiped at the end.
* :class:`ExistingKafka` — a broker someone else runs (e.g. the shared test Kafka): never
  restarted; only the run's topics are deleted at the end.

Example:
    >>> broker = ExistingKafka("127.0.0.1:9092")
    >>> broker.bootstrap, broker.restart_kinds
    ('127.0.0.1:9092', ())
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
from pathlib import Path

from streamflow.broker.testing import EmbeddedBroker as EmbeddedBrokerProcess
from streamflow.broker.testing import free_port

__all__ = ["ROOT", "Broker", "EmbeddedBroker", "ExistingKafka", "PrivateKafka"]

ROOT = Path(__file__).resolve().parents[2]


class Broker:
    """A broker the run can use; :attr:`restart_kinds` says which restarts it supports."""

    bootstrap: str
    restart_kinds: tuple[str, ...] = ()

    def start(self) -> None:
        """Start it (and wait until it serves requests)."""

    def restart(self, kind: str) -> None:
        """Restart it the way ``kind`` (one of :attr:`restart_kinds`) says."""
        raise NotImplementedError(f"{type(self).__name__} cannot be restarted")

    def close(self, keep_data: bool = False) -> None:
        """Stop it if the run started it, and remove its data unless ``keep_data``."""

    def describe(self) -> str:
        """One line for the report."""
        return self.bootstrap


class EmbeddedBroker(Broker):
    """streamflow's embedded broker as a subprocess of the run.

    >>> EmbeddedBroker(Path("/tmp/chaos-doc"), port=19999).bootstrap
    '127.0.0.1:19999'
    """

    restart_kinds = ("broker-restart", "broker-kill9")

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.process = EmbeddedBrokerProcess(data_dir, port or free_port())
        self.bootstrap = self.process.bootstrap
        self.restarts = 0

    def start(self) -> None:
        self.process.start()

    def restart(self, kind: str) -> None:
        if kind == "broker-kill9":
            self.process.kill()
        else:
            self.process.stop()
        self.restarts += 1
        self._keep_journals(f"{self.restarts:02d}-{kind}")
        self.process.start()

    def close(self, keep_data: bool = False) -> None:
        self.process.stop()
        if keep_data:
            self._keep_journals("end")
        else:
            shutil.rmtree(self.process.data_dir, ignore_errors=True)
            shutil.rmtree(self._journals, ignore_errors=True)

    @property
    def _journals(self) -> Path:
        return self.process.data_dir.parent / "broker-journals"

    def _keep_journals(self, label: str) -> None:
        """Copy the coordinator's journals (offsets, transactions) while the broker is down.

        The broker compacts them when it starts: the copies keep their history as evidence.
        """
        source = self.process.data_dir / "coordinator"
        if source.is_dir():
            shutil.copytree(source, self._journals / label, dirs_exist_ok=True)

    def describe(self) -> str:
        return f"embedded {self.bootstrap} (data {self.process.data_dir})"


class PrivateKafka(Broker):
    """An Apache Kafka for this run only, started through ``scripts/kafka``.

    ``port`` must not be the shared Kafka's (9092): its data is wiped when the run ends.

    >>> PrivateKafka(19092).bootstrap
    '127.0.0.1:19092'
    """

    restart_kinds = ("broker-restart",)
    SHARED_PORT = 9092

    def __init__(self, port: int) -> None:
        if port == self.SHARED_PORT:
            raise ValueError("the private Kafka needs a port of its own, not the shared 9092")
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"

    @staticmethod
    def free_port_pair(rng: random.Random) -> int:
        """A port ``p`` with ``p`` and ``p + 1`` (Kafka's controller) free right now."""
        for _ in range(50):
            port = rng.randrange(20000, 40000)
            if _port_free(port) and _port_free(port + 1):
                return port
        raise OSError("no free pair of ports for a private Kafka")

    def _script(self, command: str, timeout: float = 180) -> None:
        env = {**os.environ, "KAFKA_PORT": str(self.port)}
        result = subprocess.run(
            [str(ROOT / "scripts" / "kafka"), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"scripts/kafka {command} (port {self.port}) failed:\n{result.stderr}"
            )

    def start(self) -> None:
        self._script("start")

    def restart(self, kind: str) -> None:
        self._script("stop")
        self._script("start")

    def close(self, keep_data: bool = False) -> None:
        self._script("stop" if keep_data else "reset")

    def describe(self) -> str:
        return f"private Apache Kafka {self.bootstrap} (scripts/kafka, KAFKA_PORT={self.port})"


class ExistingKafka(Broker):
    """A broker that runs anyway: used as is, never restarted."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def describe(self) -> str:
        return f"existing broker {self.bootstrap} (no broker restarts)"


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
