"""Agents at run time: ``@app.agent`` functions fed the records of a batch.

An agent is a long-running async function iterating an :class:`AgentStream`; it runs in
``concurrency`` instances sharing one stream. The batch task hands an agent the records
of one source partition as :class:`RecordScope` s and waits until every one is done: a
record is done when the instance that took it asks for the next one. Everything the
instance does for a record (``await topic.send(...)``, what an async-generator agent
yields into its ``sink``, writes to its stores) is kept in the record's scope, and written
by the batch task with the rest of the batch: under exactly-once in the transaction that
commits the record's offset, whatever partition the output goes to; under at-least-once
before the offset is committed. A record whose instance raises leaves nothing behind: its
scope is dropped, the record follows the error policy (dead letter, retry or stop) and the
instance is started again.

``topic.send`` and store access find the record being processed through a context
variable each instance's task carries, so they also work in helpers the agent calls and
in tasks it spawns while it holds the record.

Example:
    >>> from streamflow import App
    >>> from streamflow.testing import TestDriver
    >>> app = App("shop")
    >>> orders, paid = app.topic("orders"), app.topic("paid")
    >>> @app.agent(orders)
    ... async def keep_paid(stream):
    ...     async for order_id, order in stream.items():
    ...         if order["status"] == "PAID":
    ...             await paid.send(order_id, order)
    >>> with TestDriver(app) as driver:
    ...     driver.pipe_many(orders, [("o1", {"status": "NEW"}), ("o2", {"status": "PAID"})])
    ...     driver.read(paid)
    [('o2', {'status': 'PAID'})]
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from streamflow.runtime.batch import MISSING, TableBatch
from streamflow.runtime.failures import RETRY_ATTEMPT
from streamflow.runtime.processor_api import KeyValueStore

if TYPE_CHECKING:
    from streamflow.dsl.processing import StateStore
    from streamflow.dsl.topology import AgentNode
    from streamflow.topics import Topic

__all__ = [
    "AgentBroken",
    "AgentRunner",
    "AgentStream",
    "Emitter",
    "Event",
    "OutRecord",
    "RecordScope",
    "current_emitter",
    "emitting",
]

log = logging.getLogger(__name__)


class AgentBroken(RuntimeError):
    """An agent function ended outside of a record (it cannot process any)."""


Headers = list[tuple[str, bytes]]

#: A record an agent sent: ``(topic, partition or None, key, value, timestamp, headers)``,
#: key and value encoded.
OutRecord = tuple[str, int | None, bytes | None, bytes | None, int, Headers]


class Emitter(Protocol):
    """Where ``topic.send`` goes: the record an agent holds, or a timer's producer."""

    async def send(
        self,
        topic: Topic,
        key: Any,
        value: Any,
        *,
        timestamp: int | None,
        headers: Sequence[tuple[str, bytes]] | None,
        partition: int | None,
    ) -> None: ...


_emitter: contextvars.ContextVar[Emitter | None] = contextvars.ContextVar(
    "streamflow_emitter", default=None
)


def current_emitter(what: str) -> Emitter:
    """The emitter of the running agent record or timer; a clear error outside of one.

    >>> try:
    ...     current_emitter("orders.send()")
    ... except RuntimeError as error:
    ...     print(str(error)[:60])
    orders.send() works inside an agent, a timer or a crontab of
    """
    emitter = _emitter.get()
    if emitter is None:
        raise RuntimeError(
            f"{what} works inside an agent, a timer or a crontab of a running app "
            "(a worker or the test driver)"
        )
    return emitter


@contextlib.contextmanager
def emitting(emitter: Emitter):
    """Run a block (a timer's body) with ``emitter`` receiving its ``topic.send`` calls.

    >>> with emitting(None):
    ...     pass
    """
    token = _emitter.set(emitter)
    try:
        yield
    finally:
        _emitter.reset(token)


def encode_out(
    topic: Topic,
    key: Any,
    value: Any,
    timestamp: int,
    headers: Sequence[tuple[str, bytes]] | None,
    partition: int | None,
) -> OutRecord:
    """One record to send, encoded with ``topic``'s codecs (``None`` stays ``None``).

    >>> from streamflow.topics import Topic
    >>> encode_out(Topic("t", key="str", value="str"), "k", "v", 7, None, None)
    ('t', None, b'k', b'v', 7, [])
    """
    return (
        topic.name,
        partition,
        None if key is None else topic.key_codec.encode(key),
        None if value is None else topic.value_codec.encode(value),
        timestamp,
        [(str(k), bytes(v)) for k, v in headers or ()],
    )


@dataclass(frozen=True, slots=True)
class Event:
    """A consumed record as ``stream.events()`` gives it.

    >>> Event("o1", {"status": "PAID"}, 1700000000000, [], "orders", 3, 42).partition
    3
    """

    key: Any
    value: Any
    #: The record's timestamp, ms since the epoch.
    timestamp: int
    headers: list[tuple[str, bytes]]
    topic: str
    partition: int
    offset: int

    @property
    def retry_attempt(self) -> int:
        """Which retry this is under ``on_error=Retry(...)``: 0 the first time, then 1, 2 …

        >>> Event("o1", {}, 0, [("streamflow.retry.attempt", b"2")], "t", 0, 0).retry_attempt
        2
        """
        for name, value in self.headers:
            if name == RETRY_ATTEMPT:
                return int(value)
        return 0


@dataclass(eq=False)
class RecordScope:
    """One record handed to an agent, and what the agent did for it until it was done."""

    event: Event
    #: The consumed record's index in its batch.
    source_index: int
    #: The stores the agent may use, by name: ``(batch view, default, partitions)``.
    stores: dict[str, tuple[TableBatch, Callable[[], Any] | None, int]] = field(
        default_factory=dict
    )
    outputs: list[OutRecord] = field(default_factory=list)
    #: Per-record overlays of the stores it touched (written only if the record succeeds).
    overlays: dict[str, TableBatch] = field(default_factory=dict)
    # The agent's view of each store over its overlay, made on first use.
    _views: dict[str, KeyValueStore] = field(default_factory=dict, repr=False)
    error: BaseException | None = None
    done: bool = False
    agent: str = ""

    async def send(
        self,
        topic: Topic,
        key: Any,
        value: Any,
        *,
        timestamp: int | None,
        headers: Sequence[tuple[str, bytes]] | None,
        partition: int | None,
    ) -> None:
        """Keep a record the agent sends for this record (timed like it by default)."""
        stamp = self.event.timestamp if timestamp is None else int(timestamp)
        self.outputs.append(encode_out(topic, key, value, stamp, headers, partition))

    def finish(self, error: BaseException | None) -> None:
        """The agent is done with the record: its store writes become the batch's (the
        next record sees them), unless it failed."""
        self.error = error
        self.done = True
        if error is None:
            for name, overlay in self.overlays.items():
                self.stores[name][0].updated.update(overlay.updated)

    def store(self, store: StateStore) -> KeyValueStore:
        """The agent's view of ``store`` for this record."""
        entry = self.stores.get(store.name)
        if entry is None:
            known = ", ".join(sorted(self.stores)) or "none"
            raise KeyError(
                f"agent {self.agent!r} uses store {store.name!r} but does not declare it "
                f"(its stores: {known}); declare it: @app.agent(topic, stores=[...])"
            )
        view = self._views.get(store.name)
        if view is None:
            base, default, partitions = entry
            overlay = self.overlays[store.name] = TableBatch(
                {}, lambda key: base.load(key, _missing)
            )
            view = self._views[store.name] = KeyValueStore(
                store.name,
                overlay,
                default,
                owner=(self.event.partition, partitions, store.key_codec.encode),
            )
        return view


def _missing() -> Any:
    return MISSING


class AgentStream:
    """The stream an agent function iterates.

    ``async for value in stream`` gives values, ``stream.items()`` ``(key, value)`` pairs
    and ``stream.events()`` :class:`Event` s (key, value, timestamp, headers, topic,
    partition, offset). The agent is done with a record when it asks for the next one.

    >>> # async for order in stream: ...
    >>> # async for order_id, order in stream.items(): ...
    >>> # async for event in stream.events(): event.headers ...
    """

    def __init__(self, queue: asyncio.Queue[RecordScope], on_done: Callable[[], None]) -> None:
        self._queue = queue
        self._on_done = on_done
        #: The record this instance holds (``None`` between records).
        self.current: RecordScope | None = None

    async def _scopes(self) -> AsyncIterator[RecordScope]:
        while True:
            self.finish()
            scope = self.current = await self._queue.get()
            yield scope

    def finish(self, error: BaseException | None = None) -> None:
        """Mark the held record done (failed if ``error``)."""
        scope, self.current = self.current, None
        if scope is not None and not scope.done:
            scope.finish(error)
            self._on_done()

    async def _values(self) -> AsyncIterator[Any]:
        async for scope in self._scopes():
            yield scope.event.value

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._values()

    async def _items(self) -> AsyncIterator[tuple[Any, Any]]:
        async for scope in self._scopes():
            yield scope.event.key, scope.event.value

    def items(self) -> AsyncIterator[tuple[Any, Any]]:
        """Iterate ``(key, value)`` pairs."""
        return self._items()

    async def _events(self) -> AsyncIterator[Event]:
        async for scope in self._scopes():
            yield scope.event

    def events(self) -> AsyncIterator[Event]:
        """Iterate :class:`Event` s: key, value, timestamp, headers and where from."""
        return self._events()

    async def send(
        self,
        topic: Topic,
        key: Any,
        value: Any,
        *,
        timestamp: int | None,
        headers: Sequence[tuple[str, bytes]] | None,
        partition: int | None,
    ) -> None:
        """``topic.send`` from this instance: part of the record it holds."""
        await self._held(f"{topic.name}.send()").send(
            topic, key, value, timestamp=timestamp, headers=headers, partition=partition
        )

    def _held(self, what: str) -> RecordScope:
        if self.current is None:
            raise RuntimeError(
                f"{what} in an agent works while it holds a record (inside its "
                "`async for` loop): what it sends is committed with that record"
            )
        return self.current


def agent_store(store: StateStore) -> KeyValueStore:
    """The running agent's view of ``store`` for the record it holds (``stock[sku]`` in an
    agent); a clear error anywhere else.

    >>> from streamflow import App
    >>> try:
    ...     agent_store(App("shop").table_store("stock"))
    ... except RuntimeError as error:
    ...     print(str(error)[:57])
    store 'stock' works inside an agent that declares it (@ap
    """
    emitter = _emitter.get()
    if not isinstance(emitter, AgentStream):
        raise RuntimeError(
            f"store {store.name!r} works inside an agent that declares it "
            f"(@app.agent(topic, stores=[...])); processors use ctx.store({store.name!r})"
        )
    return emitter._held(f"store {store.name!r}").store(store)


class AgentRunner:
    """Runs ``node.concurrency`` instances of an agent over one shared stream.

    Instances start on first use, on the running loop, and live until :meth:`stop`; an
    instance that raises fails the record it held and is started again (as is one that
    returns: an agent iterates its stream as long as the app runs).

    >>> import asyncio
    >>> from streamflow.dsl.topology import AgentNode
    >>> seen = []
    >>> async def audit(stream):
    ...     async for value in stream:
    ...         seen.append(value)
    >>> def scope(value):
    ...     return RecordScope(Event(None, value, 0, [], "orders", 0, 0), 0)
    >>> async def run():
    ...     runner = AgentRunner(AgentNode(name="audit", fn=audit))
    ...     await runner.run([scope(1), scope(2)])
    ...     await runner.stop()
    >>> asyncio.run(run())
    >>> seen
    [1, 2]
    """

    def __init__(self, node: AgentNode) -> None:
        self.node = node
        self.name = node.name
        self._queue: asyncio.Queue[RecordScope] | None = None
        self._instances: list[tuple[asyncio.Task, AgentStream]] = []
        self._outstanding = 0
        self._all_done: asyncio.Future | None = None

    def _record_done(self) -> None:
        self._outstanding -= 1
        if self._outstanding <= 0 and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)

    def _start_instance(self, index: int) -> tuple[asyncio.Task, AgentStream]:
        assert self._queue is not None
        stream = AgentStream(self._queue, self._record_done)
        context = contextvars.copy_context()
        context.run(_emitter.set, stream)
        task = asyncio.get_running_loop().create_task(
            self._instance(stream), name=f"agent {self.name}[{index}]", context=context
        )
        return task, stream

    async def _instance(self, stream: AgentStream) -> None:
        # add_agent checked the function: a coroutine function, or an async generator
        # with a sink.
        fn = self.node.fn
        sink = self.node.sink
        if sink is not None:
            async for item in fn(stream):
                if not isinstance(item, tuple) or len(item) != 2:
                    raise TypeError(
                        f"agent {self.name!r} yields (key, value) pairs into {sink.name}, "
                        f"got {item!r}"
                    )
                await stream.send(
                    sink, item[0], item[1], timestamp=None, headers=None, partition=None
                )
        else:
            await fn(stream)

    async def run(self, scopes: Sequence[RecordScope]) -> None:
        """Hand ``scopes`` over and wait until every one is done (or failed)."""
        if not scopes:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._instances = [
                self._start_instance(index) for index in range(self.node.concurrency)
            ]
        loop = asyncio.get_running_loop()
        self._all_done = loop.create_future()
        self._outstanding = len(scopes)
        for scope in scopes:
            scope.agent = self.name
            self._queue.put_nowait(scope)
        while not self._all_done.done():
            tasks = [task for task, _ in self._instances]
            await asyncio.wait([self._all_done, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for index, (task, stream) in enumerate(self._instances):
                if task.done():
                    self._ended(task, stream)
                    self._instances[index] = self._start_instance(index)

    def _ended(self, task: asyncio.Task, stream: AgentStream) -> None:
        """An instance ended: fail the record it held (if it raised), say why.

        One that ends holding no record is broken outside its record handling (it would
        end again at once): that is raised, as :class:`AgentBroken`.
        """
        error = None if task.cancelled() else task.exception()
        if stream.current is None:
            what = f"raised {type(error).__name__}: {error}" if error else "returned"
            raise AgentBroken(
                f"agent {self.name!r} {what} without holding a record; an agent iterates "
                "its stream (`async for ... in stream`) for as long as the app runs"
            ) from error
        if error is None:
            log.warning(
                "Agent %s returned; it is started again (an agent iterates its stream for "
                "as long as the app runs)",
                self.name,
            )
        stream.finish(error)

    async def stop(self) -> None:
        """Cancel the instances and wait for them to end."""
        instances, self._instances = self._instances, []
        for task, _ in instances:
            task.cancel()
        for task, _ in instances:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._queue = None


def compile_agent(node: AgentNode, forward: Any) -> Callable[[list, Any], None]:
    """The operator of an agent: it keeps the batch's records for the agent pass.

    The batch task runs the agent over them once the synchronous operators are done (see
    :meth:`streamflow.runtime.tasks.SubtopologyTask.process`).
    """
    slot = agent_slot(node)

    def push(records: list, ctx: Any) -> None:
        ctx.scratch.setdefault(slot, []).extend(records)

    return push


def agent_slot(node: AgentNode) -> tuple[str, str]:
    """Where a batch keeps the records for agent ``node`` (in ``BatchContext.scratch``).

    >>> from streamflow.dsl.topology import AgentNode
    >>> agent_slot(AgentNode(name="audit"))
    ('agent', 'audit')
    """
    return ("agent", node.name)
