"""Fixtures for the broker conformance suite.

The same tests run against the embedded streamflow broker (a subprocess) and against the
Apache Kafka on 127.0.0.1:9092 (skipped, with the reason printed, if nothing listens there).
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streamflow.broker.testing import EmbeddedBroker, embedded_broker  # noqa: E402

KAFKA = ("127.0.0.1", 9092)


def kafka_listening() -> bool:
    try:
        with socket.create_connection(KAFKA, timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def shared_embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded broker shared by the conformance tests that do not restart it."""
    with embedded_broker(tmp_path_factory.mktemp("shared-broker")) as b:
        yield b


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A private embedded broker (for restart / kill -9 tests)."""
    with embedded_broker(
        tmp_path / "broker",
        compaction_interval_ms=300,
        retention_check_interval_ms=300,
        transaction_check_interval_ms=200,
    ) as b:
        yield b


@pytest.fixture(params=["embedded", "kafka"])
def bootstrap(request: pytest.FixtureRequest) -> str:
    """Bootstrap address of the broker under test."""
    if request.param == "kafka":
        if not kafka_listening():
            reason = "Apache Kafka not listening on 127.0.0.1:9092 (start it: scripts/kafka start)"
            print(f"SKIP kafka side: {reason}")
            pytest.skip(reason)
        return f"{KAFKA[0]}:{KAFKA[1]}"
    return request.getfixturevalue("shared_embedded").bootstrap


@pytest.fixture
def is_kafka(bootstrap: str) -> bool:
    return bootstrap.endswith(":9092")


@pytest.fixture
def topic() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark this directory's coroutine tests for pytest-asyncio (no repo-wide ini needed)."""
    import inspect

    here = Path(__file__).parent
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and inspect.iscoroutinefunction(fn) and here in Path(item.path).parents:
            item.add_marker(pytest.mark.asyncio)
