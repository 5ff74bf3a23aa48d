"""A Python client for a running app's web API: table lookups, scans, readiness, metrics.

Any worker of the app answers any query (it forwards to the worker holding the key), so
one URL is enough. Values come back as JSON (decimals as strings that keep their scale).
While partitions move between workers, the client retries for up to ``retry_for`` seconds.

Example:
    >>> # from streamflow.client import Client
    >>> # client = Client("http://127.0.0.1:6066")
    >>> # client.get("user-spending-store", "user-7")
    >>> # '93.10'
    >>> # for user, total in client.items("user-spending-store", prefix="user-1"):
    >>> #     print(user, total)
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import orjson

__all__ = ["Client", "ClientError", "KeyNotFound", "Unavailable", "default_url"]

_MISSING: Any = object()


def default_url() -> str:
    """``STREAMFLOW_URL``, else the local worker on ``STREAMFLOW_WEB_PORT`` (default 6066).

    >>> os.environ.pop("STREAMFLOW_URL", None) and None
    >>> default_url().startswith("http://127.0.0.1:")
    True
    """
    url = os.environ.get("STREAMFLOW_URL")
    if url:
        return url.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('STREAMFLOW_WEB_PORT') or 6066}"


class ClientError(Exception):
    """The worker answered with an error (``status``) or could not be reached (status 0)."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


class KeyNotFound(ClientError, KeyError):
    """No such key (or no such table): HTTP 404."""

    def __str__(self) -> str:
        return str(self.args[0])


class Unavailable(ClientError):
    """The data is moving between workers or recovering (HTTP 503), or nobody answered."""


class Client:
    """Talks to one worker of an app (any worker will do).

    >>> Client("http://127.0.0.1:6066/").url
    'http://127.0.0.1:6066'
    """

    def __init__(
        self, url: str | None = None, *, timeout: float = 10.0, retry_for: float = 30.0
    ) -> None:
        self.url = (url or default_url()).rstrip("/")
        self.timeout = timeout
        self.retry_for = retry_for

    def tables(self) -> list[dict[str, Any]]:
        """The app's tables: types, partitions, and which worker holds which partitions."""
        return self._get_json("/tables")["tables"]

    def get(self, table: str, key: Any, default: Any = _MISSING) -> Any:
        """The committed value of ``key`` (raises :class:`KeyNotFound` unless ``default``).

        ``key`` is a string, or any JSON value for tables with non-text keys.
        """
        try:
            return self.lookup(table, key)["value"]
        except KeyNotFound:
            if default is _MISSING:
                raise
            return default

    def lookup(self, table: str, key: Any) -> dict[str, Any]:
        """The full answer for ``key``: ``{"table", "key", "value", "partition"}``."""
        text = key if isinstance(key, str) else orjson.dumps(key).decode()
        return self._get_json(f"/tables/{quote(table, safe='')}/{quote(text, safe='')}")

    def page(
        self, table: str, *, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """One page of entries in stored-key order: ``{"items": [...], "next": cursor}``."""
        query = {"prefix": prefix, "limit": limit}
        if after:
            query["after"] = after
        return self._get_json(f"/tables/{quote(table, safe='')}?{urlencode(query)}")

    def items(
        self, table: str, *, prefix: str = "", page_size: int = 500
    ) -> Iterator[tuple[Any, Any]]:
        """Every ``(key, value)`` of ``table`` (keys starting with ``prefix``), page by page."""
        after = None
        while True:
            page = self.page(table, prefix=prefix, after=after, limit=page_size)
            for item in page["items"]:
                yield item["key"], item["value"]
            after = page["next"]
            if after is None:
                return

    def ready(self) -> bool:
        """True if the worker is ready: in its group, not rebalancing, tables recovered."""
        try:
            return bool(self._request("/ready", retry=False)[1].get("ready"))
        except ClientError:
            return False

    def metrics(self) -> str:
        """The worker's Prometheus metrics, as text."""
        request = urllib.request.Request(self.url + "/metrics")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            return response.read().decode()

    def _get_json(self, path: str) -> Any:
        return self._request(path, retry=True)[1]

    def _request(self, path: str, *, retry: bool) -> tuple[int, Any]:
        deadline = time.monotonic() + (self.retry_for if retry else 0)
        while True:
            try:
                with urllib.request.urlopen(self.url + path, timeout=self.timeout) as response:
                    return response.status, orjson.loads(response.read())
            except urllib.error.HTTPError as exc:
                error = _error_from(exc)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                error = Unavailable(0, f"no worker answers at {self.url}: {reason}")
            if not isinstance(error, Unavailable) or time.monotonic() >= deadline:
                raise error
            time.sleep(min(1.0, max(0.1, deadline - time.monotonic())))


def _error_from(exc: urllib.error.HTTPError) -> ClientError:
    try:
        body = orjson.loads(exc.read())
        message = body.get("error") or f"HTTP {exc.code}"
    except (orjson.JSONDecodeError, AttributeError):
        body, message = {}, f"HTTP {exc.code}"
    kind = {404: KeyNotFound, 503: Unavailable}.get(exc.code, ClientError)
    return kind(exc.code, message, body)
