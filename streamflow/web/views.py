"""Custom read-only views declared with :meth:`streamflow.App.view`.

A view function gets the request and :class:`TableReaders`, the app's tables read through
the same routed, committed-state queries as ``/tables``, with native keys and values.

Example:
    >>> # @app.view("top-spenders")
    >>> # async def top_spenders(request, tables):
    >>> #     return [k async for k, _ in tables["user-spending-store"].items(limit=10)]
    >>> # $ curl http://127.0.0.1:6066/views/top-spenders
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from aiohttp import web

from streamflow.app import ViewSpec
from streamflow.codecs import to_jsonable
from streamflow.codecs.windowed import WindowedCodec
from streamflow.dsl.windows import Windowed
from streamflow.web.responses import error_response, json_response
from streamflow.web.tables import KeyNotFound, QueryError, TableQueries, key_text

__all__ = ["TableReader", "TableReaders", "view_routes"]

log = logging.getLogger(__name__)


class TableReader:
    """Reads one table for a view, wherever its partitions live.

    >>> # total = await tables["user-spending-store"].get("user-7", default=0)
    """

    def __init__(self, queries: TableQueries, name: str) -> None:
        self.name = name
        self._queries = queries
        node = queries.table(name).node
        self._key_codec, self._value_codec = node.key_codec, node.value_codec

    async def get(self, key: Any, default: Any = None) -> Any:
        """The committed value of ``key``, or ``default`` when the table has none.

        For a windowed table: the key's windows, oldest first, as ``(Windowed, value)``.
        """
        windowed = isinstance(self._key_codec, WindowedCodec)
        text_codec = self._key_codec.inner if windowed else self._key_codec
        try:
            found = await self._queries.get(self.name, key_text(text_codec, key))
        except KeyNotFound:
            return default
        if not windowed:
            return self._value_codec.from_json(found["value"])
        # A windowed table answers with its windows: [(Windowed, value), ...].
        return [
            (
                Windowed(key, window["start"], window["end"]),
                self._value_codec.from_json(window["value"]),
            )
            for window in found["value"]
        ]

    async def items(self, prefix: str = "", limit: int | None = None) -> AsyncIterator[tuple]:
        """``(key, value)`` pairs in stored-key order, optionally of keys starting with
        ``prefix``, at most ``limit`` of them."""
        after, seen = None, 0
        while True:
            page = await self._queries.scan(self.name, prefix=prefix, after=after, limit=1000)
            for item in page["items"]:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield (
                    self._key_codec.from_json(item["key"]),
                    self._value_codec.from_json(item["value"]),
                )
            after = page["next"]
            if after is None:
                return


class TableReaders(Mapping[str, TableReader]):
    """The app's tables by name, as :class:`TableReader` objects."""

    def __init__(self, queries: TableQueries) -> None:
        self._readers = {name: TableReader(queries, name) for name in queries.runtime.tables}

    def __getitem__(self, name: str) -> TableReader:
        return self._readers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._readers)

    def __len__(self) -> int:
        return len(self._readers)


def view_routes(views: Mapping[str, ViewSpec], queries: TableQueries) -> list[web.RouteDef]:
    """The aiohttp routes serving ``views`` at ``/views/<name>``.

    >>> view_routes({}, None)
    []
    """
    if not views:
        return []
    readers = TableReaders(queries)

    def handler(spec: ViewSpec):
        async def serve(request: web.Request) -> web.StreamResponse:
            try:
                result = await spec.fn(request, readers)
            except QueryError as exc:
                return error_response(exc.status, str(exc), **exc.details)
            except Exception as exc:
                log.exception("View %s failed", spec.name)
                kind = type(exc).__name__
                return error_response(500, f"view {spec.name!r} failed: {kind}: {exc}")
            if isinstance(result, web.StreamResponse):
                return result
            return json_response(to_jsonable(result))

        return serve

    return [web.get(f"/views/{name}", handler(spec)) for name, spec in views.items()]
