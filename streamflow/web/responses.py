"""JSON responses of the web API, encoded with orjson.

Example:
    >>> json_response({"ok": True}).text
    '{"ok":true}'
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

__all__ = ["error_response", "json_response"]


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None):
    """An ``application/json`` response of ``body``.

    >>> json_response([1, 2], status=201).status
    201
    """
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(status: int, message: str, **details: Any) -> web.Response:
    """A JSON error: ``{"error": message, **details}`` with ``status``.

    >>> error_response(404, "no such table").status
    404
    """
    return json_response({"error": message, **details}, status=status)
