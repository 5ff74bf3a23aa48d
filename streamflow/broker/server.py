"""The broker service: TCP listener, per-connection request pipeline, lifecycle.

Requests on one connection are processed strictly in order (as Kafka does); a produce
waiting for its group-commit fsync does not block reading the next request, and responses
are always written in request order.

Example:
    >>> import asyncio, tempfile
    >>> async def demo():
    ...     broker = Broker(port=0, data_dir=Path(tempfile.mkdtemp()))
    ...     await broker.start()
    ...     ok = broker.bootstrap.startswith("127.0.0.1:")
    ...     await broker.stop()
    ...     return ok
    >>> asyncio.run(demo())
    True
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import fcntl
import inspect
import logging
import os
import resource
from pathlib import Path
from typing import Any

from .compactor import LogCleaner
from .config import DEFAULT_PORT, BrokerConfig
from .errors import ErrorCode
from .flusher import Flusher
from .groups import GroupCoordinator
from .handlers import Deferred, RequestHandlers
from .offsets import OffsetStore
from .protocol import (
    API_TABLE,
    API_VERSIONS_KEY,
    ProtocolError,
    decode_request,
    encode_response,
    make_response,
    unsupported_api_versions,
)
from .topics import TopicManager
from .transactions import TransactionCoordinator

log = logging.getLogger(__name__)

_client_id: contextvars.ContextVar[str] = contextvars.ContextVar("client_id", default="")
_CLOSE = object()


class BrokerStartError(RuntimeError):
    """The broker could not start (port in use, data dir unusable or locked).

    Example:
        >>> str(BrokerStartError("port 9192 is already in use"))
        'port 9192 is already in use'
    """


class Broker:
    """A single-node Kafka-protocol broker.

    Example:
        >>> b = Broker(port=0, data_dir=Path("/tmp/sf-doc"), num_partitions=3)
        >>> b.config.num_partitions
        3
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        data_dir: Path | str = Path("./state/broker"),
        **options: Any,
    ) -> None:
        self.config = BrokerConfig.from_options(
            host=host, port=port, data_dir=Path(data_dir), **options
        )
        self.port = port
        self.stopping = False
        self.fetch_waiters: set[asyncio.Future[None]] = set()
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._lock_fd: int | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` clients should use."""
        return f"{self.config.advertised}:{self.port}"

    def current_client_id(self) -> str:
        return _client_id.get()

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the data directory, recover state and start listening."""
        cfg = self.config
        _raise_fd_limit()
        try:
            cfg.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(cfg.data_dir / "broker.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise BrokerStartError(f"data directory {cfg.data_dir} is not usable: {e}") from e
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise BrokerStartError(
                f"data directory {cfg.data_dir} is used by another broker process"
            ) from e
        self.flusher = Flusher(cfg.fsync_policy, cfg.flush_interval_ms)
        self.flusher.start()
        self.topics = TopicManager(cfg)
        self.offsets = OffsetStore(cfg.data_dir / "coordinator")
        self.groups = GroupCoordinator(
            cfg.group_initial_rebalance_delay_ms,
            cfg.group_min_session_timeout_ms,
            cfg.group_max_session_timeout_ms,
            state_dir=cfg.data_dir / "coordinator",
        )
        self.groups.start()
        self.txns = TransactionCoordinator(cfg, self.topics, self.offsets, self.flusher)
        await self.txns.start()
        self.handlers = RequestHandlers(self)
        try:
            self._server = await asyncio.start_server(
                self._on_connection, cfg.host, cfg.port, reuse_address=True, limit=1 << 20
            )
        except OSError as e:
            await self._shutdown_state()
            if e.errno == errno.EADDRINUSE:
                raise BrokerStartError(f"port {cfg.port} on {cfg.host} is already in use") from e
            raise BrokerStartError(f"cannot listen on {cfg.host}:{cfg.port}: {e}") from e
        self.port = self._server.sockets[0].getsockname()[1]
        self.cleaner = LogCleaner(self)
        self.cleaner.start()
        log.info("broker listening on %s (data in %s)", self.bootstrap, cfg.data_dir)

    async def stop(self) -> None:
        """Stop accepting, finish in-flight work, sync and close everything."""
        if self.stopping or not hasattr(self, "cleaner"):
            return  # already stopped, or never fully started
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for w in list(self.fetch_waiters):
            if not w.done():
                w.set_result(None)
        await self.cleaner.stop()
        await self.groups.stop()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections, timeout=5)
        await self._shutdown_state()
        log.info("broker stopped")

    async def _shutdown_state(self) -> None:
        await self.txns.stop()
        await self.flusher.stop()
        self.topics.close()
        self.offsets.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def serve_forever(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then shut down gracefully."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    # -- connections --------------------------------------------------------------------------
    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        out: asyncio.Queue[Any] = asyncio.Queue()
        writer_task = asyncio.create_task(self._write_loop(writer, out))
        max_size = self.config.max_request_bytes
        try:
            while not self.stopping:
                head = await reader.readexactly(4)
                size = int.from_bytes(head, "big", signed=True)
                if size <= 0 or size > max_size:
                    log.warning("closing %s: invalid request size %d", peer, size)
                    break
                payload = await reader.readexactly(size)
                result = await self._dispatch(payload, peer)
                if result is _CLOSE:
                    break
                if result is not None:
                    out.put_nowait(result)
                if writer_task.done():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("connection %s failed", peer)
        finally:
            out.put_nowait(None)
            try:
                await asyncio.wait_for(writer_task, timeout=5)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                writer_task.cancel()
            writer.close()
            self._connections.discard(task)

    async def _write_loop(self, writer: asyncio.StreamWriter, out: asyncio.Queue[Any]) -> None:
        try:
            while True:
                item = await out.get()
                if item is None:
                    break
                if isinstance(item, asyncio.Future):
                    item = await item
                writer.write(item)
                if out.empty() or writer.transport.get_write_buffer_size() > (1 << 22):
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass

    async def _dispatch(self, payload: bytes, peer: Any) -> Any:
        try:
            req = decode_request(payload)
        except ProtocolError as e:
            log.warning("closing %s: %s", peer, e)
            return _CLOSE
        if not req.supported:
            if req.api_key == API_VERSIONS_KEY:
                return unsupported_api_versions(req.correlation_id)
            log.warning(
                "closing %s: unsupported API key %d version %d (client %s)",
                peer,
                req.api_key,
                req.version,
                req.client_id,
            )
            return _CLOSE
        spec = API_TABLE[req.api_key]
        _client_id.set(req.client_id or "")
        try:
            result = getattr(self.handlers, spec.name)(req.body, req.version)
            if inspect.isawaitable(result):
                result = await result
        except Exception:
            log.exception("error handling %s v%d from %s", spec.name, req.version, peer)
            return _CLOSE
        if result is None:
            return None
        if isinstance(result, Deferred):
            if result.waiter is None or (
                isinstance(result.waiter, asyncio.Future) and result.waiter.done()
            ):
                return encode_response(
                    make_response(spec, req.version, result.response), req.correlation_id
                )
            return asyncio.ensure_future(
                self._finish(spec, req.version, result, req.correlation_id)
            )
        return encode_response(make_response(spec, req.version, result), req.correlation_id)

    @staticmethod
    async def _finish(spec: Any, version: int, deferred: Deferred, correlation_id: int) -> bytes:
        assert deferred.waiter is not None
        await deferred.waiter
        return encode_response(make_response(spec, version, deferred.response), correlation_id)


def _raise_fd_limit() -> None:
    # Every partition keeps its segment files open; the default soft limit (1024) is low.
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass


__all__ = ["Broker", "BrokerStartError", "ErrorCode"]
