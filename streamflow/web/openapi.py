"""The OpenAPI 3 description of a worker's web API, served at ``GET /openapi.json``.

Example:
    >>> spec = openapi_spec("user-spending", ["user-spending-store"], ["top-spenders"])
    >>> sorted(spec["paths"])[:3]
    ['/health', '/metrics', '/ready']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["openapi_spec"]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def _simple_get(summary: str, description: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": {"description": description}}}}


_ERROR = _ref("Error")
_ERRORS = {
    "400": _json(_ERROR, "The key or a parameter does not parse"),
    "404": _json(_ERROR, "No such table, or no value for the key"),
    "503": {
        **_json(_ERROR, "Partitions are moving between workers or recovering; retry"),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
_TABLE_PARAM = {"name": "table", "in": "path", "required": True, "schema": {"type": "string"}}


def openapi_spec(app_id: str, tables: Sequence[str], views: Sequence[str]) -> dict[str, Any]:
    """The OpenAPI document for an app with ``tables`` and custom ``views``."""
    table_param = {**_TABLE_PARAM, "schema": {"type": "string", "enum": list(tables)}}
    paths: dict[str, Any] = {
        "/tables": {
            "get": {
                "summary": "The app's tables, their types, and which worker holds which partition",
                "responses": {"200": _json(_ref("Tables"), "Tables")},
            }
        },
        "/tables/{table}": {
            "get": {
                "summary": "A page of committed entries in stored-key order",
                "parameters": [
                    table_param,
                    {"name": "prefix", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "description": "The `next` cursor of the previous page",
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {"200": _json(_ref("Page"), "A page"), **_ERRORS},
            }
        },
        "/tables/{table}/{key}": {
            "get": {
                "summary": "The committed value of a key",
                "description": 'A text key as is; other key types as JSON (`42`, `{"a":1}`).',
                "parameters": [
                    table_param,
                    {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {"200": _json(_ref("Entry"), "The value"), **_ERRORS},
            }
        },
        "/health": _simple_get("Liveness", "Alive"),
        "/ready": {
            "get": {
                "summary": "Readiness: in the group, not rebalancing, tables recovered",
                "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready"}},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Prometheus text exposition format"}},
            }
        },
        "/stats": _simple_get("Per-topic totals and lag", "Stats"),
        "/topology": _simple_get("The topology as nodes and edges", "Graph"),
    }
    for view in views:
        paths[f"/views/{view}"] = _simple_get(f"Custom view {view}", "JSON")
    value = {"description": "Any JSON value; decimals are strings that keep their scale"}
    return {
        "openapi": "3.0.3",
        "info": {"title": f"{app_id} (streamflow worker)", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Entry": {
                    "type": "object",
                    "properties": {
                        "table": {"type": "string"},
                        "key": value,
                        "value": value,
                        "partition": {"type": "integer"},
                    },
                },
                "Page": {
                    "type": "object",
                    "properties": {
                        "table": {"type": "string"},
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "key": value,
                                    "value": value,
                                    "cursor": {"type": "string"},
                                },
                            },
                        },
                        "next": {"type": "string", "nullable": True},
                    },
                },
                "Tables": {
                    "type": "object",
                    "properties": {
                        "tables": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "key_type": {"type": "string"},
                                    "value_type": {"type": "string"},
                                    "partitions": {"type": "integer"},
                                    "changelog": {"type": "string"},
                                    "workers": {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "array",
                                            "items": {"type": "integer"},
                                        },
                                    },
                                },
                            },
                        }
                    },
                },
            }
        },
    }
