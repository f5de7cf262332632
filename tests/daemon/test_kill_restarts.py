"""A year of restarts in a minute: the daemon killed with SIGKILL every 2-3 s and restarted each time.

An `every 5s` timeline must still run at least 8 times, and a weekly `update-usernames` whose
time falls inside that minute must run exactly once: not lost to a kill before it starts, not
repeated by a restart after it started. Its time passes during one of the outages (a kill just
before it, the restart just after), so only a catch-up at start can run it; and it shares the
collection's harvest lock with the slowed-down timeline, so it has to wait for that lock too.
Runs are counted from the run records the jobs write.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest

from sfm_archiver.timeutil import parse_timestamp, utcnow
from tests.daemon.helpers import wait_for, write_config
from tests.daemon.test_schedules import Restarts, _job, _runs, stop_cleanly

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.mark.parametrize("simulator", [{"faults": {"endpoint_latency_ms": {"user_tweets": 700}}}], indirect=True)
def test_every_5s_and_a_weekly_job_survive_a_minute_of_kill_9(tmp_path, simulator):
    began = utcnow()
    weekly_at = (began + timedelta(seconds=75)).replace(second=0, microsecond=0)  # 15-75 s from now
    weekly = f"{weekly_at.minute} {weekly_at.hour} * * {DAYS[weekly_at.weekday()]}"
    collections = [{"name": "news", "type": "timeline", "schedule": "every 5s", "accounts": ["sfm_alpha"], "backfill": 5}]
    jobs = {"update_usernames": weekly, "fetch_urls": "off", "bag": "off"}
    config = write_config(tmp_path / "config.yaml", tmp_path, simulator.base_url, collections, jobs=jobs)
    cadence = random.Random(20261201)
    until = max(began + timedelta(seconds=60), weekly_at + timedelta(seconds=10))
    kills = 0
    with Restarts(tmp_path, config) as daemons:
        while utcnow() < until:
            daemon = daemons.start()
            life = cadence.uniform(2.0, 3.0)  # the kill cadence itself, not a wait for anything
            straddle = utcnow() < weekly_at < utcnow() + timedelta(seconds=life + 1)
            time.sleep(max(0.0, (weekly_at - utcnow()).total_seconds() - 1) if straddle else life)
            daemon.process.kill()
            daemon.process.wait(30)
            kills += 1
            if straddle:  # down while the weekly time passes
                time.sleep(max(0.0, (weekly_at - utcnow()).total_seconds() + 1))
        daemon = daemons.start()  # the last start: no more kills; a weekly run still owed is made now
        wait_for(lambda: [r for r in _runs(tmp_path, "news", "update_usernames") if r["ended_at"]], 60,
                 "the weekly run to have ended")
        report = daemon.status()
        stop_cleanly(daemon)
    assert kills >= 8  # fewer than one every 2-3 s only when start-up itself is slow
    harvests = _runs(tmp_path, "news")
    print(f"{kills} kills, {len(harvests)} harvests started")
    assert len(harvests) >= 8, f"{len(harvests)} harvests in {kills} kills"
    checks = _runs(tmp_path, "news", "update_usernames")
    assert len(checks) == 1, checks
    assert parse_timestamp(checks[0]["started_at"]) >= weekly_at
    assert parse_timestamp(_job(report, "update-usernames")["next_run"]) == weekly_at + timedelta(days=7)
