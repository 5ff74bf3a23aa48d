"""Find or start the background broker that streamflow apps use by default.

Example:
    >>> from pathlib import Path
    >>> addr = ensure_local_broker(Path("state/broker"))  # doctest: +SKIP
    >>> stop_local_broker(Path("state/broker"))  # doctest: +SKIP
    True
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .config import DEFAULT_PORT

BROKER_FILE = "broker.json"
LOG_FILE = "broker.log"
_SPAWN_LOCK = "broker.spawn.lock"


def probe(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if a Kafka-protocol broker answers an ApiVersions request at ``host:port``.

    Example:
        >>> probe("127.0.0.1", 1, timeout=0.2)
        False
    """
    from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse

    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            req = ApiVersionsRequest[0]()
            req.with_header(correlation_id=1, client_id="streamflow-probe")
            s.sendall(bytes(req.encode(header=True, framed=True)))
            head = recv_exact(s, 4)
            body = recv_exact(s, int.from_bytes(head, "big"))
            resp = ApiVersionsResponse.decode(body, version=0, header=True)
            return resp.error_code == 0 and bool(resp.api_keys)
    except (OSError, ValueError, EOFError):
        return False
    except Exception:
        return False


def recv_exact(s: socket.socket, n: int) -> bytes:
    """Read exactly ``n`` bytes from ``s`` (``ConnectionError`` if the peer closes first)."""
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed before the reply was complete")
        buf += chunk
    return bytes(buf)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (zombies count as dead).

    Example:
        >>> pid_alive(os.getpid())
        True
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_broker_file(data_dir: Path) -> dict[str, Any] | None:
    """The ``broker.json`` record (host, port, pid) or None.

    Example:
        >>> read_broker_file(Path("/nonexistent")) is None
        True
    """
    try:
        info = json.loads((Path(data_dir) / BROKER_FILE).read_text())
        if {"host", "port", "pid"} <= set(info):
            return info
    except (OSError, ValueError):
        pass
    return None


def _running(data_dir: Path) -> str | None:
    info = read_broker_file(data_dir)
    if info and pid_alive(int(info["pid"])) and probe(info["host"], int(info["port"])):
        return f"{info['host']}:{info['port']}"
    return None


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _spawn_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def ensure_local_broker(data_dir: Path, timeout: float = 30.0) -> str:
    """Return ``host:port`` of the background broker for ``data_dir``, starting it if needed.

    Safe to call from several processes at once (a file lock serialises the spawn).

    Example:
        >>> ensure_local_broker(Path("state/broker"))  # doctest: +SKIP
        '127.0.0.1:9192'
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    found = _running(data_dir)
    if found:
        return found
    lock_fd = os.open(data_dir / _SPAWN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        found = _running(data_dir)
        if found:
            return found
        port = DEFAULT_PORT if _port_free(DEFAULT_PORT) else 0
        (data_dir / BROKER_FILE).unlink(missing_ok=True)
        with open(data_dir / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streamflow.broker",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--data",
                    str(data_dir.resolve()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=_spawn_env(),
                close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = (data_dir / LOG_FILE).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"broker exited with code {proc.returncode}:\n{tail}")
            info = read_broker_file(data_dir)
            if info and int(info["pid"]) == proc.pid and probe(info["host"], int(info["port"])):
                return f"{info['host']}:{info['port']}"
            time.sleep(0.05)
        proc.terminate()
        raise RuntimeError(f"broker did not answer within {timeout}s (see {data_dir / LOG_FILE})")
    finally:
        fcntl.flock(lock_fd, fcntl.LOCK_UN)
        os.close(lock_fd)


def stop_local_broker(data_dir: Path, timeout: float = 15.0) -> bool:
    """Stop the background broker of ``data_dir``; False if none was running.

    Example:
        >>> stop_local_broker(Path("/nonexistent-streamflow-dir"))
        False
    """
    data_dir = Path(data_dir)
    info = read_broker_file(data_dir)
    if not info or not pid_alive(int(info["pid"])):
        (data_dir / BROKER_FILE).unlink(missing_ok=True)
        return False
    pid = int(info["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    (data_dir / BROKER_FILE).unlink(missing_ok=True)
    return True
