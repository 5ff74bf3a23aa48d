"""Page-view sessions per user, final results only.

Page views (``page_views``, JSON ``{"user_id", "page", "at"}``, keyed by user) are timed
by the ``at`` field (epoch milliseconds), not by when they reached Kafka. A user's views
less than ``PAGE_SESSIONS_GAP_SECONDS`` apart (default 30 minutes) form one session; a
late view that bridges two sessions merges them. Each session's summary goes to
``user_sessions`` exactly once, when it is over: once stream time has passed its last
view plus the gap plus ``PAGE_SESSIONS_GRACE_SECONDS`` (default one minute) for views
that arrive out of order. Views later than that are dropped and counted in ``/metrics``
(``streamflow_late_records_total``). The table ``user-sessions`` answers a user with
their sessions, open and closed, through table views; ``recent-views`` with their views
in every ``PAGE_SESSIONS_RECENT_SECONDS`` (default five minutes) a view began or ended
(sliding windows, kept up to date, grace ``PAGE_SESSIONS_RECENT_GRACE_SECONDS``; ``0``
seconds leaves that table out):

    $ streamflow worker apps/page_sessions.py
    $ curl localhost:6066/tables/user-sessions/user-1
"""

from __future__ import annotations

import os
from typing import Any

import streamflow
from streamflow import Windowed

app = streamflow.App("page-sessions")
GAP_SECONDS = float(os.environ.get("PAGE_SESSIONS_GAP_SECONDS", "1800"))
GRACE_SECONDS = float(os.environ.get("PAGE_SESSIONS_GRACE_SECONDS", "60"))
RECENT_SECONDS = float(os.environ.get("PAGE_SESSIONS_RECENT_SECONDS", "300"))
RECENT_GRACE_SECONDS = float(os.environ.get("PAGE_SESSIONS_RECENT_GRACE_SECONDS", "60"))

page_views = app.topic("page_views", key="str", value="json")
user_sessions = app.topic("user_sessions", key="str", value="json")


def new_session() -> dict[str, Any]:
    """A session before its first view."""
    return {"views": 0, "pages": []}


def add_view(user_id: str, view: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    """Count ``view`` into ``session``; ``pages``: the distinct pages seen, sorted.

    >>> add_view("u1", {"page": "/cart", "at": 5}, {"views": 1, "pages": ["/home"]})
    {'views': 2, 'pages': ['/cart', '/home']}
    """
    return {"views": session["views"] + 1, "pages": sorted({*session["pages"], view["page"]})}


def merge_sessions(user_id: str, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """One session of two that a view bridged.

    >>> merge_sessions("u1", {"views": 2, "pages": ["/a"]}, {"views": 1, "pages": ["/b"]})
    {'views': 3, 'pages': ['/a', '/b']}
    """
    return {
        "views": left["views"] + right["views"],
        "pages": sorted({*left["pages"], *right["pages"]}),
    }


def summary(window: Windowed, session: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The record of a finished session: keyed by user, with its start and end.

    >>> summary(Windowed("u1", 1_000, 4_000), {"views": 2, "pages": ["/a"]})
    ('u1', {'start': 1000, 'end': 4000, 'views': 2, 'pages': ['/a']})
    """
    return window.key, {"start": window.start, "end": window.end, **session}


views_by_user = app.stream(page_views, timestamp=lambda user_id, view: view["at"]).group_by_key(
    name="views-by-user"
)
sessions = views_by_user.windowed_by(
    streamflow.session(GAP_SECONDS, grace=GRACE_SECONDS, emit="close")
).aggregate(new_session, add_view, merger=merge_sessions, name="user-sessions", value="json")
sessions.to_stream().map(summary).to(user_sessions)
if RECENT_SECONDS > 0:
    recent_views = views_by_user.windowed_by(
        streamflow.sliding(RECENT_SECONDS, grace=RECENT_GRACE_SECONDS)
    ).count(name="recent-views")
