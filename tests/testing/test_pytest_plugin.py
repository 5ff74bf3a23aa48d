"""The pytest plugin: installed with streamflow, a ``streamflow_driver`` fixture per test."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_app.py"
    test_file.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_fixture_drives_the_app_the_test_names(tmp_path):
    result = run_pytest(
        tmp_path,
        f"""
        import pytest
        from streamflow.testing import TestDriver

        @pytest.fixture
        def streamflow_app():
            return {str(ROOT / "apps" / "user_spending.py")!r}

        def test_one(streamflow_driver):
            assert isinstance(streamflow_driver, TestDriver)
            assert streamflow_driver.app.id == "user-spending"
            assert streamflow_driver.read("user_spending_summary") == []

        def test_factory(streamflow_driver_factory):
            driver = streamflow_driver_factory(
                {str(ROOT / "apps" / "user_spending.py")!r}, start_time=30
            )
            assert driver.now_ms == 30_000
        """,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_without_an_app_the_fixture_says_what_to_define(tmp_path):
    result = run_pytest(
        tmp_path,
        """
        def test_one(streamflow_driver):
            pass
        """,
    )
    assert result.returncode != 0
    assert "define a fixture named streamflow_app" in result.stdout + result.stderr
