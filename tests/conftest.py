"""Shared fixtures: the brokers integration tests run against.

``broker`` is parametrized over every Kafka-compatible broker available to the suite:
Apache Kafka from ``scripts/kafka`` (127.0.0.1:9092, or ``STREAMFLOW_TEST_KAFKA``) and the
embedded streamflow broker once it is importable. A missing Apache Kafka fails the tests
with instructions; it is never skipped silently.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

KAFKA = os.environ.get("STREAMFLOW_TEST_KAFKA", "127.0.0.1:9092")


def _answers(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


def _embedded_available() -> bool:
    try:
        from streamflow.broker.testing import embedded_broker  # noqa: F401
    except ImportError:
        return False
    return os.environ.get("STREAMFLOW_TEST_EMBEDDED", "1") != "0"


BROKERS = ["kafka"] + (["embedded"] if _embedded_available() else [])


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Apache Kafka's address; fails with instructions when it is not running."""
    if not _answers(KAFKA):
        pytest.fail(f"Apache Kafka is not answering on {KAFKA}: run `scripts/kafka start` first")
    return KAFKA


@pytest.fixture(scope="session")
def embedded_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A streamflow embedded broker in a subprocess, for the whole session."""
    from streamflow.broker.testing import embedded_broker

    with embedded_broker(tmp_path_factory.mktemp("embedded-broker")) as running:
        yield running.bootstrap


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> str:
    """The bootstrap address of each broker under test, in turn."""
    if request.param == "kafka":
        return request.getfixturevalue("kafka_bootstrap")
    return request.getfixturevalue("embedded_bootstrap")


@pytest.fixture
def project_root() -> Path:
    """The repository root (where apps/ and schemas/ live)."""
    return Path(__file__).resolve().parent.parent
