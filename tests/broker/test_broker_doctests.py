"""The usage examples in the broker's docstrings run and are right."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "streamflow.broker",
    "streamflow.broker.config",
    "streamflow.broker.errors",
    "streamflow.broker.records",
    "streamflow.broker.log",
    "streamflow.broker.flusher",
    "streamflow.broker.producer_state",
    "streamflow.broker.partition",
    "streamflow.broker.topics",
    "streamflow.broker.offsets",
    "streamflow.broker.groups",
    "streamflow.broker.transactions",
    "streamflow.broker.protocol",
    "streamflow.broker.handlers",
    "streamflow.broker.server",
    "streamflow.broker.compactor",
    "streamflow.broker.local",
    "streamflow.broker.testing",
    "streamflow.broker.cli",
]


@pytest.mark.parametrize("name", MODULES)
def test_broker_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
