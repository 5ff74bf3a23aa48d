"""Operational endpoints: ``/health``, ``/ready``, ``/metrics``, ``/stats``, ``/topology``.

==================  ===================================================================
``GET /health``     200 while the worker process runs (liveness)
``GET /ready``      200 once the worker is in its group, not rebalancing, and its tables
                    are recovered; 503 otherwise (readiness)
``GET /metrics``    Prometheus text format (``streamflow_*`` metrics)
``GET /stats``      per-topic totals and lag as JSON, for the console
``GET /topology``   the app's topology as a graph of nodes and edges
==================  ===================================================================

Example:
    $ curl -s http://127.0.0.1:6066/ready
    {"ready":true,"app":"user-spending","worker":"http://127.0.0.1:6066"}
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from streamflow.dsl.graph import topology_graph
from streamflow.web.responses import json_response

if TYPE_CHECKING:
    from streamflow.runtime.engine import Runtime

__all__ = ["status_routes", "topic_roles"]


def topic_roles(runtime: Runtime) -> dict[str, str]:
    """Every topic of the app with its role: source, repartition, retry, sink, changelog
    or dead-letter.

    >>> # topic_roles(runtime)["order_events"] == "source"
    """
    roles: dict[str, str] = {}
    for sub in runtime.topology.subtopologies:
        for source in sub.sources:
            if source.retry_attempt:
                roles[source.topic.name] = "retry"
            else:
                roles[source.topic.name] = "repartition" if source.internal else "source"
        for sink in sub.sinks:
            roles.setdefault(sink.topic.name, "sink")
    for table in runtime.tables.values():
        roles[table.changelog] = "changelog"
    roles[runtime.app.dead_letter_topic] = "dead-letter"
    for sub in runtime.topology.subtopologies:
        if sub.dead_letter_topic:
            roles[sub.dead_letter_topic] = "dead-letter"
    return roles


def status_routes(runtime: Runtime) -> list[web.RouteDef]:
    """The aiohttp routes of the operational endpoints of ``runtime``.

    >>> # app.add_routes(status_routes(runtime))
    """
    identity = {"app": runtime.app.id, "worker": runtime.url}
    graph = topology_graph(runtime.topology).to_json()
    roles = topic_roles(runtime)

    async def health(request: web.Request) -> web.Response:
        return json_response({"status": "ok", **identity})

    async def ready(request: web.Request) -> web.Response:
        is_ready = runtime.is_ready()
        return json_response({"ready": is_ready, **identity}, status=200 if is_ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        body, content_type = runtime.metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def stats(request: web.Request) -> web.Response:
        totals = runtime.metrics.totals()
        topics = [
            {
                "topic": topic,
                "role": role,
                "records_in_total": totals["consumed"].get(topic, 0),
                "records_out_total": totals["produced"].get(topic, 0),
                "lag": totals["lag"].get(topic),
            }
            for topic, role in roles.items()
        ]
        tables = [
            {"table": name, "keys": totals["table_keys"].get(name, 0)} for name in runtime.tables
        ]
        return json_response(
            {
                **identity,
                "ready": runtime.is_ready(),
                "time": time.time(),
                "topics": topics,
                "tables": tables,
            }
        )

    async def topology(request: web.Request) -> web.Response:
        return json_response(graph)

    return [
        web.get("/health", health),
        web.get("/ready", ready),
        web.get("/metrics", metrics),
        web.get("/stats", stats),
        web.get("/topology", topology),
    ]
