"""HTTP endpoints of table views: ``/tables``, ``/tables/{table}``, ``/tables/{table}/{key}``.

=====================================  ==================================================
``GET /tables``                        every table: key/value types, partitions, and
                                       which worker holds which partitions
``GET /tables/{table}/{key}``          the committed value of a key (404 if missing,
                                       400 if the key does not parse)
``GET /tables/{table}?prefix=&after=   a page of entries in stored-key order; pass the
&limit=``                              page's ``next`` as ``after`` for the next page
=====================================  ==================================================

Any worker answers any request, forwarding to the worker that holds the data; while the
data moves between workers the answer is ``503`` with ``Retry-After``.

Example:
    $ curl http://127.0.0.1:6066/tables/user-spending-store/user-7
    {"table":"user-spending-store","key":"user-7","value":"93.10","partition":3}
"""

from __future__ import annotations

from aiohttp import web

from streamflow.web.responses import error_response, json_response
from streamflow.web.tables import (
    DEFAULT_LIMIT,
    FORWARDED_HEADER,
    QueryError,
    TableQueries,
    TableUnavailable,
)

__all__ = ["table_routes"]


def _error(exc: QueryError) -> web.Response:
    response = error_response(exc.status, str(exc), **exc.details)
    if isinstance(exc, TableUnavailable):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def table_routes(queries: TableQueries) -> list[web.RouteDef]:
    """The aiohttp routes of the table views, answering through ``queries``.

    >>> # app.add_routes(table_routes(TableQueries(runtime)))
    """

    async def list_tables(request: web.Request) -> web.Response:
        return json_response({"tables": queries.describe()})

    async def get_key(request: web.Request) -> web.Response:
        try:
            body = await queries.get_encoded(
                request.match_info["table"],
                request.match_info["key"],
                forwarded=FORWARDED_HEADER in request.headers,
            )
        except QueryError as exc:
            return _error(exc)
        return web.Response(body=body, content_type="application/json")

    async def scan(request: web.Request) -> web.Response:
        query = request.query
        try:
            limit = int(query.get("limit", DEFAULT_LIMIT))
        except ValueError:
            return error_response(400, f"limit must be an integer, got {query['limit']!r}")
        try:
            body = await queries.scan(
                request.match_info["table"],
                prefix=query.get("prefix", ""),
                after=query.get("after") or None,
                limit=limit,
                local_only=query.get("scope") == "local",
            )
        except QueryError as exc:
            return _error(exc)
        return json_response(body)

    return [
        web.get("/tables", list_tables),
        web.get("/tables/{table}", scan),
        web.get("/tables/{table}/{key:.+}", get_key),
    ]
