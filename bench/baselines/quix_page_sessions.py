"""Page-view sessions, final results only, in Quix Streams (the peer of ``apps/page_sessions.py``).

Page views (key user id, JSON ``{"user_id", "page", "at"}``) timed by ``at`` -> session
windows per key (inactivity gap ``BENCH_GAP_MS``, grace ``BENCH_GRACE_MS``) -> the
number of views and the distinct pages (the same functions as the streamflow app) ->
``final()``: one summary per session when it closes, as
``{"start", "end", "views", "pages"}`` with ``end`` the last view's time (Quix's own
``end`` is exclusive).

Usage::

    BENCH_BROKER=127.0.0.1:9092 BENCH_APP_ID=ps-quix-1 BENCH_INPUT_TOPIC=views \\
    BENCH_OUTPUT_TOPIC=sessions BENCH_PROCESSING_GUARANTEE=exactly_once \\
    BENCH_STATE_DIR=/tmp/ps-quix-1 BENCH_GAP_MS=2000 python bench/baselines/quix_page_sessions.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Reduce

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.page_sessions import add_view, merge_sessions, new_session
from bench.baselines.quix_user_spending import bench_application


def summary(window: dict[str, Any]) -> dict[str, Any]:
    """A closed session as the streamflow app writes it."""
    return {"start": window["start"], "end": window["end"] - 1, **window["session"]}


def build_app() -> Application:
    """The Quix Streams application, configured from ``BENCH_*`` environment variables."""
    app = bench_application("quix-page-sessions")
    views = app.topic(
        os.environ.get("BENCH_INPUT_TOPIC", "page-views"),
        key_deserializer="str",
        value_deserializer="json",
        timestamp_extractor=lambda value, headers, timestamp, kind: value["at"],
    )
    sessions = app.topic(
        os.environ.get("BENCH_OUTPUT_TOPIC", "user-sessions"),
        key_serializer="str",
        value_serializer="json",
    )
    session = Reduce(
        reducer=lambda state, view: add_view("", view, state),
        initializer=lambda view: add_view("", view, new_session()),
        merger=lambda left, right: merge_sessions("", left, right),
    )
    sdf = app.dataframe(views)
    sdf = sdf.session_window(
        inactivity_gap_ms=int(os.environ.get("BENCH_GAP_MS", "2000")),
        grace_ms=int(os.environ.get("BENCH_GRACE_MS", "0")),
    )
    sdf = sdf.agg(session=session).final().apply(summary)
    sdf.to_topic(sessions)
    return app


if __name__ == "__main__":
    build_app().run()
