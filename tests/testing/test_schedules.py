"""``@app.timer`` and ``@app.crontab`` in the test driver: when they run, what they send."""

from datetime import timedelta, timezone

import pytest

from streamflow import App
from streamflow.testing import TestDriver


def test_a_timer_runs_every_interval_after_the_start_and_its_sends_are_processed():
    app = App("timers")
    pings = app.topic("pings", value="json")
    app.stream(pings).group_by_key().count(name="pings-per-source")
    runs = []

    @app.timer(30.0)
    async def ping():
        runs.append(driver.now)
        await pings.send("timer", {"n": len(runs)})

    with TestDriver(app, start_time=1000) as driver:
        driver.advance_time(29)
        assert runs == []
        driver.advance_time(100)
        assert runs == [1030, 1060, 1090, 1120]
        assert [r.timestamp for r in driver.read_records(pings)] == [
            1_030_000,
            1_060_000,
            1_090_000,
            1_120_000,
        ]
        assert driver.table("pings-per-source")["timer"] == 4


def test_a_crontab_runs_at_the_times_of_its_expression_in_its_timezone():
    app = App("crons")
    runs = []
    plus_two = timezone(timedelta(hours=2))

    @app.crontab("30 9 * * 1-5", timezone=plus_two)  # 9:30 on weekdays, at UTC+2
    def standup():  # plain functions work too
        runs.append(driver.now)

    # 1970-01-01 was a Thursday
    with TestDriver(app, start_time=0) as driver:
        driver.advance_time(7 * 86400)
    hours = [(t - 7.5 * 3600) / 86400 for t in runs]
    assert hours == [0, 1, 4, 5, 6]  # Thu, Fri, Mon, Tue, Wed at 7:30 UTC


def test_a_schedule_that_raises_is_logged_and_runs_again(caplog):
    app = App("flaky")
    runs = []

    @app.timer(10)
    async def sometimes():
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("service down")

    with TestDriver(app) as driver:
        driver.advance_time(30)
    assert runs == [0, 1, 2]
    assert "Schedule sometimes raised" in caplog.text and "service down" in caplog.text


def test_schedules_are_checked_when_declared():
    app = App("checks")

    @app.timer(5)
    async def once():
        pass

    with pytest.raises(ValueError, match="already exists"):
        app.timer(5)(once)
    with pytest.raises(ValueError, match="interval must be a positive number"):
        app.timer(-1)(once)
    with pytest.raises(ValueError, match="not a cron expression"):
        app.crontab("61 * * * *")(once)

    async def needs_argument(app):
        pass

    with pytest.raises(TypeError, match="called with no arguments, but takes app"):
        app.timer(5)(needs_argument)
