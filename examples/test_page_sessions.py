"""Page-view sessions per user with final results only (``apps/page_sessions.py``).

Run it with ``pytest examples/test_page_sessions.py``. The views carry their own time
(``at``); the Kafka timestamps of the records piped here say nothing about it. A session
summary comes out once, when the session is over, never as a running update.
"""

import pytest

MINUTE = 60_000


@pytest.fixture
def streamflow_app():
    return "apps/page_sessions.py"


def view(user_id, page, minute):
    return {"user_id": user_id, "page": page, "at": int(minute * MINUTE)}


def test_a_session_is_summarized_once_when_it_is_over(streamflow_driver):
    for page, minute in [("/home", 0), ("/shoes", 5), ("/cart", 20)]:
        streamflow_driver.pipe("page_views", "alice", view("alice", page, minute), timestamp=0)
    # Nothing yet: alice may still come back within 30 minutes (and one of grace).
    assert streamflow_driver.read("user_sessions") == []

    # An hour later her next view starts a new session and closes the first one.
    streamflow_driver.pipe("page_views", "alice", view("alice", "/home", 90), timestamp=0)
    pages = ["/cart", "/home", "/shoes"]
    assert streamflow_driver.read("user_sessions") == [
        ("alice", {"start": 0, "end": 20 * MINUTE, "views": 3, "pages": pages})
    ]


def test_a_late_view_that_bridges_two_sessions_merges_them(streamflow_driver):
    for page, minute in [("/a", 0), ("/b", 30.5)]:  # more than 30 minutes apart: two sessions
        streamflow_driver.pipe("page_views", "bob", view("bob", page, minute), timestamp=0)
    # Out of order, but the first session is still open (it closes at 31 minutes of stream
    # time: 30 of gap, one of grace): a view at 15 minutes bridges both into one.
    streamflow_driver.pipe("page_views", "bob", view("bob", "/late", 15), timestamp=0)
    sessions = dict(streamflow_driver.table("user-sessions").items())
    assert [(w.start, w.end, s["views"]) for w, s in sessions.items()] == [(0, 30.5 * MINUTE, 3)]

    # Too late: stream time is at 90 minutes, any session this view could join is closed.
    streamflow_driver.pipe("page_views", "bob", view("bob", "/x", 90), timestamp=0)
    streamflow_driver.pipe("page_views", "bob", view("bob", "/too-late", 40), timestamp=0)
    [(user, summary)] = streamflow_driver.read("user_sessions")
    assert (user, summary["views"], summary["pages"]) == ("bob", 3, ["/a", "/b", "/late"])
