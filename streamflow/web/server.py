"""The worker's web server: table views, custom views, metrics, health and the console.

One aiohttp server per worker, on the worker's web port (``--web-port``,
``STREAMFLOW_WEB_PORT``, default 6066). It starts with the worker, before the worker
joins its group, so ``/health`` and ``/ready`` answer during start-up and recovery.

Example:
    >>> # faust.Worker(runtime.faust, WebServer(runtime)).execute_from_commandline()
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web
from mode import Service

from streamflow.web.openapi import openapi_spec
from streamflow.web.responses import json_response
from streamflow.web.status_routes import status_routes
from streamflow.web.table_routes import table_routes
from streamflow.web.tables import TableQueries
from streamflow.web.views import view_routes

if TYPE_CHECKING:
    from streamflow.runtime.engine import Runtime

__all__ = ["STATIC_DIR", "WebServer", "build_web_app"]

log = logging.getLogger(__name__)

#: The console's files, shipped with the package.
STATIC_DIR = Path(__file__).with_name("static")


def build_web_app(runtime: Runtime, queries: TableQueries) -> web.Application:
    """The aiohttp application of a worker's web API and console.

    >>> # web.run_app(build_web_app(runtime, TableQueries(runtime)))
    """
    application = web.Application()
    spec = openapi_spec(runtime.app.id, list(runtime.tables), list(runtime.app.views))

    async def openapi(request: web.Request) -> web.Response:
        return json_response(spec)

    async def console(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC_DIR / "index.html")

    application.add_routes(
        [
            web.get("/", console),
            web.get("/openapi.json", openapi),
            *status_routes(runtime),
            *table_routes(queries),
            *view_routes(runtime.app.views, queries),
        ]
    )
    application.router.add_static("/static", STATIC_DIR)
    return application


class WebServer(Service):
    """Serves :func:`build_web_app` for the lifetime of the worker.

    >>> # WebServer(runtime) is passed to faust.Worker with the app
    """

    def __init__(self, runtime: Runtime, **kwargs) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.queries = TableQueries(runtime)
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        settings = self.runtime.settings
        self._runner = web.AppRunner(build_web_app(self.runtime, self.queries), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.web_host, settings.web_port)
        await site.start()
        log.info("Web API and console at %s", self.runtime.url)

    async def on_stop(self) -> None:
        await self.queries.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
