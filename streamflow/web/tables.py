"""Table queries: read a running app's tables by key or in key order, on any worker.

A table is partitioned like its source topic, and each partition lives on the one worker
that consumes that partition. :class:`TableQueries` answers for the partitions this worker
holds and forwards the rest, over HTTP, to the worker that holds them (the consumer group
tells every member which worker holds what). Reads see committed state only (see
:meth:`streamflow.state.rocksdb.RocksDBStore.get_committed`); while partitions move
between workers the answer is :class:`TableUnavailable` rather than a stale value.

Keys come from URLs as text: a ``str`` key is the text itself; other keys are JSON
(``42``, ``{"user": "u1"}``) converted by the table's key codec.

Example:
    >>> # queries = TableQueries(runtime)
    >>> # await queries.get("user-spending-store", "user-7")
    >>> # {'table': 'user-spending-store', 'key': 'user-7', 'value': '93.10', 'partition': 3}
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from yarl import URL

from streamflow.codecs import Codec, StrCodec
from streamflow.codecs.windowed import WindowedCodec
from streamflow.dsl.windows import Windowed
from streamflow.runtime.sender import partition_for

if TYPE_CHECKING:
    from streamflow.runtime.engine import Runtime
    from streamflow.runtime.tasks import TableRuntime

__all__ = [
    "FORWARDED_HEADER",
    "BadKey",
    "KeyNotFound",
    "TableQueries",
    "TableUnavailable",
    "UnknownTable",
    "decode_cursor",
    "encode_cursor",
    "key_text",
    "parse_key",
]

#: Set on requests forwarded between workers, so a request is forwarded at most once.
FORWARDED_HEADER = "X-Streamflow-Forwarded"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# A page of a filtered scan (prefix on a non-text key) stops after this many keys, so a
# request never holds the event loop for long; the cursor lets the client continue.
MAX_SCANNED = 50_000
RETRY_AFTER_SECONDS = 1


class QueryError(Exception):
    """A table query that cannot be answered; ``status`` is its HTTP status."""

    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details

    def body(self) -> dict[str, Any]:
        """The JSON error body: ``{"error": message, **details}``."""
        return {"error": str(self), **self.details}


class UnknownTable(QueryError):
    """No table of that name in the app."""

    status = 404


class KeyNotFound(QueryError):
    """The table has no value for the key."""

    status = 404


class BadKey(QueryError):
    """The key text does not parse as a key of the table."""

    status = 400


class TableUnavailable(QueryError):
    """The partition is moving between workers or recovering: ask again shortly."""

    status = 503
    retry_after = RETRY_AFTER_SECONDS


def parse_key(codec: Codec, text: str) -> Any:
    """Turn URL text into a key of ``codec``: the text read as JSON, else the text itself.

    A text key is always the text itself; for other keys ``42`` is a number, ``"42"`` a
    string and ``{"a": 1}`` an object.

    >>> from streamflow.codecs import IntCodec, JsonCodec
    >>> parse_key(StrCodec(), "42"), parse_key(IntCodec(), "42"), parse_key(JsonCodec(), "u-1")
    ('42', 42, 'u-1')
    """
    if isinstance(codec, StrCodec):
        return text
    reason = "not valid JSON"
    try:
        return codec.from_json(orjson.loads(text))
    except orjson.JSONDecodeError:
        pass
    except Exception as exc:
        reason = str(exc)
    try:
        return codec.from_json(text)
    except Exception:
        raise BadKey(f"{text!r} is not a {codec.name} key: {reason}", key=text) from None


def encode_cursor(key: bytes) -> str:
    """An opaque, URL-safe paging cursor for a stored key.

    >>> decode_cursor(encode_cursor(b"user-1"))
    b'user-1'
    """
    return base64.urlsafe_b64encode(key).decode("ascii")


def decode_cursor(cursor: str) -> bytes:
    """The stored key behind a cursor from :func:`encode_cursor`."""
    try:
        return base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise BadKey(f"{cursor!r} is not a cursor returned by this API") from None


class TableQueries:
    """Reads the app's tables for the web API, routing to the worker that holds a key.

    >>> # queries = TableQueries(runtime); await queries.get("user-spending-store", "u1")
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._session: aiohttp.ClientSession | None = None
        self._owner_cache: dict[str, tuple[int, dict[str, set[int]]]] = {}

    async def close(self) -> None:
        """Close the HTTP session used to forward requests."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- metadata --------------------------------------------------------------------

    def table(self, name: str) -> TableRuntime:
        """The table called ``name``, or :class:`UnknownTable`."""
        table = self.runtime.tables.get(name)
        if table is None:
            known = ", ".join(sorted(self.runtime.tables)) or "none"
            raise UnknownTable(f"no table {name!r} in this app (tables: {known})", table=name)
        return table

    def describe(self) -> list[dict[str, Any]]:
        """Every table with its types, partitions and the workers holding them."""
        return [
            {
                "name": name,
                "key_type": table.node.key_codec.name,
                "value_type": table.node.value_codec.name,
                "partitions": table.partitions,
                "changelog": table.changelog,
                "workers": {url: sorted(parts) for url, parts in self._owners(table).items()},
            }
            for name, table in self.runtime.tables.items()
        ]

    def _owners(self, table: TableRuntime) -> dict[str, set[int]]:
        """Which worker URL holds which partitions of ``table``.

        Cached per assignment while the worker is ready; during a rebalance the group's
        metadata is in flux, so it is read afresh (and not kept).
        """
        epoch = self.runtime.assignment_epoch
        cached = self._owner_cache.get(table.name)
        if cached is not None and cached[0] == epoch:
            return cached[1]
        ready = self.runtime.is_ready()
        metadata = self.runtime.faust.router.table_metadata(table.name)
        owners: dict[str, set[int]] = {}
        for url, topics in metadata.items():
            partitions = set(topics.get(table.changelog, ()))
            if partitions:
                owners[str(url).rstrip("/")] = partitions
        if ready and epoch == self.runtime.assignment_epoch:
            self._owner_cache[table.name] = (epoch, owners)
        return owners

    def _owner_of(self, table: TableRuntime, partition: int) -> str:
        for url, partitions in self._owners(table).items():
            if partition in partitions:
                return url
        raise TableUnavailable(
            f"partition {partition} of table {table.name!r} has no owner yet "
            "(the group is forming or rebalancing)",
            table=table.name,
            partition=partition,
        )

    def _check_serving(self) -> None:
        if not self.runtime.is_ready():
            raise TableUnavailable("the worker is rebalancing or recovering its tables")

    def _is_local(self, url: str) -> bool:
        return url == self.runtime.url

    # --- point lookups -----------------------------------------------------------------

    async def get(self, name: str, key_text: str, *, forwarded: bool = False) -> dict[str, Any]:
        """The committed value of ``key_text`` as a JSON-ready dict, wherever it lives.

        Raises :class:`UnknownTable`, :class:`BadKey`, :class:`KeyNotFound` or
        :class:`TableUnavailable`.
        """
        return orjson.loads(await self.get_encoded(name, key_text, forwarded=forwarded))

    async def get_encoded(self, name: str, key_text: str, *, forwarded: bool = False) -> bytes:
        """Like :meth:`get`, as encoded JSON: an answer forwarded from the worker holding
        the key is passed on as is."""
        table = self.table(name)
        key_codec = table.node.key_codec
        windowed = isinstance(key_codec, WindowedCodec)
        key = parse_key(key_codec.inner if windowed else key_codec, key_text)
        raw_key = key_codec.prefix(key) if windowed else key_codec.encode(key)
        partition = partition_for(raw_key, table.partitions)
        self._check_serving()
        owner = self._owner_of(table, partition)
        if not self._is_local(owner):
            if forwarded:
                raise TableUnavailable(
                    "this worker no longer holds the key's partition", table=name
                )
            return await self._forward_encoded(owner, f"/tables/{name}/{key_text}", {})
        if not self.runtime.holds(table, partition):
            raise TableUnavailable(
                f"partition {partition} of {name!r} is not ready on this worker", table=name
            )
        value_codec = table.node.value_codec
        if windowed:
            json_key = key_codec.inner.to_json(key)
            value = [
                {"start": w.start, "end": w.end, "value": value_codec.to_json(v)}
                for w, v in self._windows_of(table, partition, raw_key)
            ]
            found = bool(value)
        else:
            json_key = key_codec.to_json(key)
            raw = table.store.get_committed(partition, raw_key)
            found = raw is not None
            value = value_codec.to_json(value_codec.decode(raw)) if found else None
        if not found:
            raise KeyNotFound(
                f"no value for key {key_text!r} in table {name!r}", table=name, key=json_key
            )
        return orjson.dumps(
            {"table": name, "key": json_key, "value": value, "partition": partition}
        )

    def _windows_of(
        self, table: TableRuntime, partition: int, prefix: bytes
    ) -> list[tuple[Windowed, Any]]:
        """The committed windows of the key whose stored keys start with ``prefix``."""
        key_codec, value_codec = table.node.key_codec, table.node.value_codec
        width = len(prefix) + key_codec.suffix_bytes
        found = []
        for raw_key, raw_value in table.store.iter_committed(partition, prefix):
            if not raw_key.startswith(prefix):
                break
            if len(raw_key) == width:  # not a longer key sharing the prefix
                found.append((key_codec.decode(raw_key), value_codec.decode(raw_value)))
        return found

    # --- scans ---------------------------------------------------------------------------

    async def scan(
        self,
        name: str,
        *,
        prefix: str = "",
        after: str | None = None,
        limit: int = DEFAULT_LIMIT,
        local_only: bool = False,
    ) -> dict[str, Any]:
        """A page of committed entries in stored-key order, from every worker.

        ``prefix`` keeps keys whose text starts with it; ``after`` is the ``next`` cursor of
        the previous page. Each item carries its own cursor. ``local_only`` answers for this
        worker's partitions only (what workers ask each other).
        """
        table = self.table(name)
        limit = max(1, min(int(limit), MAX_LIMIT))
        start = decode_cursor(after) if after else None
        self._check_serving()
        owners = self._owners(table)
        covered = set().union(*owners.values()) if owners else set()
        if not local_only and covered != set(range(table.partitions)):
            raise TableUnavailable(f"not every partition of {name!r} has an owner yet", table=name)
        local = owners.get(self.runtime.url, set())
        if not all(self.runtime.holds(table, p) for p in local):
            raise TableUnavailable(f"partitions of {name!r} are not ready here", table=name)
        pages = [self._scan_local(table, sorted(local), prefix, start, limit)]
        if not local_only:
            query = {"prefix": prefix, "limit": str(limit), "scope": "local"}
            if after:
                query["after"] = after
            for url in owners:
                if not self._is_local(url):
                    pages.append(await self._forward(url, f"/tables/{name}", query))
        return {"table": name, **_merge_pages(pages, limit)}

    def _scan_local(
        self,
        table: TableRuntime,
        partitions: list[int],
        prefix: str,
        start: bytes | None,
        limit: int,
    ) -> dict[str, Any]:
        """Up to ``limit`` entries after ``start``; ``next`` is set when the scan stopped early."""
        key_codec, value_codec = table.node.key_codec, table.node.value_codec
        # A windowed key is filtered and sorted by its grouping key first.
        text_codec = key_codec.inner if isinstance(key_codec, WindowedCodec) else key_codec
        raw_prefix = prefix.encode() if isinstance(text_codec, StrCodec) else b""
        filter_text = bool(prefix) and not raw_prefix
        seek = max(raw_prefix, start) if start is not None else raw_prefix
        streams = [
            table.store.iter_committed(p, seek, after=start is not None and seek == start)
            for p in partitions
        ]
        items: list[dict[str, Any]] = []
        for scanned, (raw_key, raw_value) in enumerate(heapq.merge(*streams), 1):
            if raw_prefix and not raw_key.startswith(raw_prefix):
                break
            key = key_codec.decode(raw_key)
            text_key = key.key if isinstance(key, Windowed) else key
            if filter_text and not key_text(text_codec, text_key).startswith(prefix):
                if scanned >= MAX_SCANNED:
                    return {"items": items, "next": encode_cursor(raw_key)}
                continue
            items.append(
                {
                    "key": key_codec.to_json(key),
                    "value": value_codec.to_json(value_codec.decode(raw_value)),
                    "cursor": encode_cursor(raw_key),
                }
            )
            if len(items) > limit:  # one more than asked: there is a next page
                return {"items": items[:limit], "next": items[limit - 1]["cursor"]}
        return {"items": items, "next": None}

    # --- forwarding ----------------------------------------------------------------------

    async def _forward(self, owner: str, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        return orjson.loads(await self._forward_encoded(owner, path, query))

    async def _forward_encoded(self, owner: str, path: str, query: Mapping[str, str]) -> bytes:
        """The owner's answer to ``path``: its bytes on 200, else the error it names."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        url = URL(owner).with_path(path, encoded=False).with_query(dict(query))
        try:
            async with self._session.get(url, headers={FORWARDED_HEADER: "1"}) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TableUnavailable(f"worker {owner} did not answer: {exc}", worker=owner) from None
        if response.status == 200:
            return body
        try:
            details = orjson.loads(body)
        except orjson.JSONDecodeError:
            details = {}
        error = _ERRORS.get(response.status, QueryError)
        raise error(details.pop("error", f"worker {owner} answered {response.status}"), **details)


_ERRORS: dict[int, type[QueryError]] = {
    400: BadKey,
    404: KeyNotFound,
    503: TableUnavailable,
}


def _cursor_order(item: Mapping[str, Any]) -> bytes:
    return decode_cursor(item["cursor"])


def _merge_pages(pages: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """One page out of the pages of several workers, in stored-key order.

    A worker page with a ``next`` cursor may hold more entries after it, so nothing past
    the smallest such cursor can be returned yet: the next page continues from there.
    """
    stops = [decode_cursor(p["next"]) for p in pages if p["next"]]
    boundary = min(stops) if stops else None
    items = [
        item
        for item in heapq.merge(*(p["items"] for p in pages), key=_cursor_order)
        if boundary is None or _cursor_order(item) <= boundary
    ]
    if len(items) > limit:
        items = items[:limit]
        return {"items": items, "next": items[-1]["cursor"]}
    return {"items": items, "next": encode_cursor(boundary) if boundary is not None else None}


def key_text(codec: Codec, key: Any) -> str:
    """The text form of a key, as URLs carry it (see :func:`parse_key`).

    >>> from streamflow.codecs import IntCodec
    >>> key_text(IntCodec(), 42)
    '42'
    """
    json_key = codec.to_json(key)
    return json_key if isinstance(json_key, str) else orjson.dumps(json_key).decode()
