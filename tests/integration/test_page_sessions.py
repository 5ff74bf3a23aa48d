"""Session windows with final results only on a real worker, on both brokers.

Page views timed by their own field go through ``apps/page_sessions.py``; the worker is
stopped after some sessions were summarized, more views come, and a new one takes over on
the same state folder (the consistency harness adds SIGKILLs, broker faults and
rebalances: ``python -m bench.chaos --app page_sessions``). Every finished session is
summarized exactly once, with exact values, and the table view answers a user with their
sessions. The semantic cases are in ``tests/testing/test_windows.py``; the ground truth is
the consistency harness's.
"""

from __future__ import annotations

import random
import time

import orjson
import pytest

from bench.chaos.observe import Record
from bench.chaos.profiles import PageSessions
from streamflow.client import Client
from tests.integration.support import AppRun, wait_until

pytestmark = pytest.mark.kafka

PROFILE = PageSessions()
USERS = [f"user-{n}" for n in range(6)]


def _views(count: int, start_index: int, seed: int) -> list[tuple[str, dict]]:
    """Views in bursts: each user is busy for a second (sessions) then quiet for five (they
    close), with a fifth of the views by anyone (short sessions, bridges, late views)."""
    rng = random.Random(seed)
    start = int(time.time() * 1000)
    users = [
        rng.choice(USERS) if rng.random() < 0.2 else USERS[index // 100 % len(USERS)]
        for index in range(start_index, start_index + count)
    ]
    return [
        (
            user,
            PROFILE.view_of(
                index, {"order_id": f"view-{index}", "user_id": user, "timestamp": start + index}
            ),
        )
        for index, user in enumerate(users, start=start_index)
    ]


def test_each_session_is_summarized_once_across_a_restart(broker, tmp_path):
    run = AppRun(broker, tmp_path / "state", app_path=PROFILE.path)
    views_topic, sessions_topic = f"views-{run.run_id}", f"sessions-{run.run_id}"
    run.extra_env.update(
        STREAMFLOW_TOPIC_PAGE_VIEWS=views_topic,
        STREAMFLOW_TOPIC_USER_SESSIONS=sessions_topic,
        STREAMFLOW_PROCESSING_GUARANTEE="exactly_once",
        **PROFILE.app_env,
    )

    def send(views: list[tuple[str, dict]]) -> None:
        run.send_records(views_topic, [(u.encode(), orjson.dumps(v), None) for u, v in views])

    def expected() -> tuple[dict, dict]:
        inputs = [
            Record(r["partition"], r["offset"], r["key"], r["value"])
            for r in run.read(views_topic, value="json", idle=1.0)
        ]
        finals, sessions, _ = PROFILE.simulate(inputs)
        return finals, sessions

    def written() -> list[dict]:
        return run.read(sessions_topic, value="json", idle=1.0)

    worker = run.worker().start()  # it creates the app's topics, partitioned as declared
    try:
        Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60).get("user-sessions", "x", None)
        send(_views(1200, 0, seed=5))
        first_finals, _ = expected()
        half = sum(len(f) for f in first_finals.values()) // 2
        assert half >= 5
        wait_until(lambda: len(written()) >= half, "some session summaries")
    finally:
        assert worker.stop() == 0, worker.log()
    send(_views(1200, 1200, seed=6))
    finals, sessions = expected()
    worker = run.worker().start()
    try:
        total = sum(len(f) for f in finals.values())
        wait_until(lambda: len(written()) >= total, f"{total} session summaries")
        by_user: dict[str, list[dict]] = {}
        for record in written():
            by_user.setdefault(record["key"], []).append(record["value"])
        assert by_user == finals  # each once, in order, exact

        client = Client(f"http://127.0.0.1:{worker.web_port}", retry_for=60)
        user = max(USERS, key=lambda u: sum(s[0] == u for s in sessions))
        answer = client.get("user-sessions", user)
        assert [(w["start"], w["end"], w["value"]) for w in answer] == sorted(
            (s[1], s[2], v) for s, v in sessions.items() if s[0] == user
        )
        result = run.cli("table", "get", PROFILE.path, "user-sessions", user, "--url", client.url)
        assert result.returncode == 0, result.stderr.decode()
        assert orjson.loads(result.stdout) == answer  # the CLI prints the same sessions
    finally:
        assert worker.stop() == 0, worker.log()
