"""The usage examples in the codecs' docstrings must run as written."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

MODULES = [
    "streamflow.codecs",
    "streamflow.codecs.errors",
    "streamflow.codecs.base",
    "streamflow.codecs.primitive",
    "streamflow.codecs.json",
    "streamflow.codecs.avro",
    "streamflow.codecs.avro_schema",
    "streamflow.codecs.avro_values",
    "streamflow.codecs.avro_compat",
    "streamflow.codecs.registry",
    "streamflow.codecs.avro_evolution",
    "streamflow.codecs.avro_registry",
    "streamflow.cli.schemas",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)  # examples read schemas/ and the repository's HEAD
    monkeypatch.delenv("STREAMFLOW_SCHEMAS_DIR", raising=False)
    monkeypatch.delenv("STREAMFLOW_SCHEMA_REGISTRY_URL", raising=False)
    # `streamflow.codecs.avro` as an attribute is the avro() function; go via the import system.
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
