"""Run a broker in a subprocess for tests (so it can be killed with SIGKILL).

Example:
    >>> from pathlib import Path
    >>> with embedded_broker(Path("/tmp/sf-test")) as b:  # doctest: +SKIP
    ...     print(b.bootstrap)
    ...     b.kill(); b.restart()
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .local import LOG_FILE, _spawn_env, probe


def free_port() -> int:
    """A TCP port that is free right now on 127.0.0.1.

    Example:
        >>> free_port() > 0
        True
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """Handle on a broker subprocess.

    Example:
        >>> EmbeddedBroker(Path("/tmp/x"), 9999).bootstrap
        '127.0.0.1:9999'
    """

    def __init__(self, data_dir: Path, port: int, options: dict[str, Any] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.options = options or {}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until it answers ApiVersions."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "streamflow.broker",
            "--listen",
            self.bootstrap,
            "--data",
            str(self.data_dir),
        ]
        for k, v in self.options.items():
            cmd += ["--option", f"{k}={v}"]
        with open(self.data_dir / LOG_FILE, "ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_spawn_env(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited early:\n{self.log_tail()}")
            if probe("127.0.0.1", self.port, timeout=0.5):
                return
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker did not start within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        try:
            return (self.data_dir / LOG_FILE).read_text(errors="replace")[-n:]
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the broker (simulates a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful stop (SIGTERM), escalating to SIGKILL after ``timeout``."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and data directory."""
        self.stop()
        self.start()


@contextmanager
def embedded_broker(data_dir: Path, port: int = 0, **options: Any) -> Iterator[EmbeddedBroker]:
    """Run a broker subprocess for the duration of the block.

    ``options`` are broker options (e.g. ``compaction_interval_ms=500``).

    Example:
        >>> with embedded_broker(Path("/tmp/sf-doc-broker")) as b:  # doctest: +SKIP
        ...     b.kill()
        ...     b.restart()
    """
    b = EmbeddedBroker(data_dir, port or free_port(), options)
    b.start()
    try:
        yield b
    finally:
        b.stop()
