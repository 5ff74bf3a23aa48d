"""CLI, background broker management and start-up errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import ROOT

from streamflow.broker.local import ensure_local_broker, probe, stop_local_broker


def _cli(*args: str, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "streamflow.broker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
    )


def test_ensure_local_broker_concurrent_and_stop(tmp_path: Path) -> None:
    data = tmp_path / "state" / "broker"
    with ThreadPoolExecutor(4) as pool:
        addrs = list(pool.map(lambda _: ensure_local_broker(data), range(4)))
    try:
        assert len(set(addrs)) == 1
        host, port = addrs[0].rsplit(":", 1)
        assert probe(host, int(port))
        assert ensure_local_broker(data) == addrs[0]
        status = _cli("--data", str(data), "status")
        assert status.returncode == 0 and "running" in status.stdout
    finally:
        assert stop_local_broker(data)
    assert not probe(host, int(port))
    assert not stop_local_broker(data)
    status = _cli("--data", str(data), "status")
    assert status.returncode != 0 and "not running" in status.stdout
    assert (data / "broker.log").exists()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _cli("--listen", f"127.0.0.1:{port}", "--data", str(tmp_path / "b"))
    assert r.returncode == 1
    assert "already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_unwritable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = _cli("--listen", "127.0.0.1:0", "--data", str(blocker / "broker"))
    assert r.returncode == 1
    assert "not usable" in r.stderr
    assert "Traceback" not in r.stderr


def test_foreground_broker_stops_gracefully_on_sigint(tmp_path: Path) -> None:
    import signal
    import time

    from streamflow.broker.testing import free_port

    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["STREAMFLOW_STATE_DIR"] = str(tmp_path / "state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamflow.broker", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not probe("127.0.0.1", port):
            time.sleep(0.05)
        info = tmp_path / "state" / "broker" / "broker.json"
        assert info.exists(), "default data dir must be $STREAMFLOW_STATE_DIR/broker"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert b"broker stopped" in out and b"Traceback" not in out
    assert not info.exists()
