"""The worker's web API: table views, custom views, metrics, health, and the console.

Every worker serves it on its web port (``--web-port``, ``STREAMFLOW_WEB_PORT``, default
6066); see :mod:`streamflow.web.server` for the endpoints and :mod:`streamflow.client`
for a Python client.

Example:
    $ streamflow worker apps/user_spending.py --web-port 6066
    $ curl http://127.0.0.1:6066/tables/user-spending-store/user-7
"""

from streamflow.web.server import WebServer, build_web_app

__all__ = ["WebServer", "build_web_app"]
