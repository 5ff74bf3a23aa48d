"""The usage examples in docstrings run and are right."""

import doctest
import importlib

import pytest

MODULES = [
    "streamflow",
    "streamflow.app",
    "streamflow.topics",
    "streamflow.dsl.stream",
    "streamflow.dsl.topology",
    "streamflow.runtime.batch",
    "streamflow.runtime.processors",
    "streamflow.runtime.sender",
    "streamflow.runtime.settings",
    "streamflow.runtime.dead_letters",
    "streamflow.cli.loader",
    "streamflow.cli.produce",
    "streamflow.client",
    "streamflow.codecs.windowed",
    "streamflow.codecs.change",
    "streamflow.codecs.join",
    "streamflow.runtime.global_tables",
    "streamflow.dsl.policies",
    "streamflow.dsl.windows",
    "streamflow.runtime.failures",
    "streamflow.state.files",
    "streamflow.runtime.metrics",
    "streamflow.web.openapi",
    "streamflow.web.responses",
    "streamflow.web.tables",
    "streamflow.web.views",
    "streamflow.state",
    "streamflow.state.base",
    "streamflow.state.memory",
    "streamflow.runtime.tasks",
    "streamflow.testing",
    "streamflow.testing.driver",
    "streamflow.runtime.agents",
    "streamflow.dsl.agents",
    "streamflow.testing.records",
    "streamflow.testing.tables",
    "streamflow.testing.topics",
    "streamflow.runtime.windowing",
    "apps.page_sessions",
    "bench.page_sessions",
    "bench.recovery",
    "bench.chaos.profiles",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
