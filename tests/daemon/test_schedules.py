"""Schedules across restarts and busy locks, with the real daemon process against the simulator.

Runs are counted from the state store's run records (what each job writes when it starts),
and expected times are computed here from the schedule text, not by the scheduling module.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

import pytest

from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import parse_timestamp, utcnow
from tests.daemon.helpers import NotifySocket, cli, wait_for, write_config
from tests.daemon.test_daemon_process import Daemon
from tests.test_locks import HOLDER, REPO

NO_OTHER_JOBS = {"update_usernames": "off", "fetch_urls": "off", "bag": "off", "report": "off"}


def _runs(root, collection: str, job: str = "user_timeline") -> list[dict]:
    """Runs that started (a skipped run never did)."""
    return [r for r in StateStore(root / "state").runs(collection=collection, job=job) if r["result"] != "skipped"]


def _skipped(root, collection: str, job: str = "user_timeline") -> list[dict]:
    return [r for r in StateStore(root / "state").runs(collection=collection, job=job) if r["result"] == "skipped"]


def _job(report: dict, job_id: str) -> dict:
    return next(job for job in report["jobs"] if job["job_id"] == job_id)


def _status(config) -> dict:
    import json

    result = cli("--config", str(config), "status", "--json")
    return json.loads(result.stdout)


class Restarts:
    """One configuration's daemon, started again and again; whatever still runs is stopped at the end."""

    def __init__(self, root, config):
        self.root, self.config = root, config
        self.notify = NotifySocket(root)
        self.started: list[Daemon] = []

    def start(self) -> Daemon:
        """A new daemon process, once it said READY=1."""
        readies = self.notify.count("READY=1")
        daemon = Daemon(self.root, self.config, self.notify)
        self.started.append(daemon)
        wait_for(lambda: self.notify.count("READY=1") > readies or daemon.process.poll() is not None, 30, "READY=1")
        assert daemon.process.poll() is None, daemon.log_text()
        return daemon

    def __enter__(self) -> Restarts:
        return self

    def __exit__(self, *exc) -> None:
        for daemon in self.started:
            daemon.stop()
        self.notify.close()


def stop_cleanly(daemon: Daemon) -> None:
    daemon.send(signal.SIGTERM)
    assert daemon.process.wait(30) == 0, daemon.log_text()


def _hold_harvest_lock(root) -> subprocess.Popen:
    """A one-shot command (as cron starts it) holding the collection's harvest lock."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root / "state")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, cwd=REPO)
    assert holder.stdout.readline() == b"held\n"
    return holder


def test_an_interval_job_is_due_at_its_last_start_plus_the_interval_after_a_restart(tmp_path, simulator):
    collections = [
        {"name": "news", "type": "timeline", "schedule": "every 1h", "accounts": ["sfm_alpha"], "backfill": 5},
        {"name": "tick", "type": "timeline", "schedule": "every 1s", "accounts": ["sfm_beta"], "backfill": 5},
    ]
    config = write_config(tmp_path / "config.yaml", tmp_path, simulator.base_url, collections, jobs=NO_OTHER_JOBS)
    with Restarts(tmp_path, config) as daemons:
        first = daemons.start()
        wait_for(lambda: [r for r in _runs(tmp_path, "news") if r["ended_at"]], 30, "the first harvest of news to end")
        before = first.status()
        first.process.kill()  # a crash, a deploy, a reboot
        first.process.wait(30)
        while_down = _status(config)
        second = daemons.start()
        ticks = len(_runs(tmp_path, "tick"))
        wait_for(lambda: len(_runs(tmp_path, "tick")) >= ticks + 2, 30, "two more harvests of tick after the restart")
        assert len(_runs(tmp_path, "news")) == 1, "the restart ran news again instead of an hour after its last start"
        (run,) = _runs(tmp_path, "news")
        planned = _job(before, "timeline:news")
        expected = parse_timestamp(run["started_at"]) + timedelta(hours=1)
        assert abs(parse_timestamp(planned["next_run"]) - expected) < timedelta(seconds=5)
        assert planned["last_result"] == "ok" and planned["last_end"]
        for report in (while_down, second.status()):
            job = _job(report, "timeline:news")
            assert (job["last_start"], job["next_run"]) == (planned["last_start"], planned["next_run"])
        text = cli("--config", str(config), "status").stdout
        assert "timeline:news" in text and "every 1h" in text and "NEXT RUN" in text
        stop_cleanly(second)


@pytest.mark.parametrize("catch_up", [True, False])
def test_a_crontab_time_missed_while_the_daemon_was_down_runs_once_at_start(tmp_path, simulator, catch_up):
    now = utcnow()
    fire = (now - timedelta(hours=2)).replace(second=0, microsecond=0)
    schedule = f"{fire.minute} {fire.hour} * * *"  # daily; its last four times passed while the daemon was down
    store = StateStore(tmp_path / "state")  # what the previous daemon left: scheduled 10 days ago, ran 4 days ago
    store.set_job_schedule("update-usernames", schedule, None, True, now - timedelta(days=10))
    store.update_job_schedule("update-usernames", last_start=now - timedelta(days=4, hours=2),
                              last_end=now - timedelta(days=4, hours=2) + timedelta(seconds=3), last_result="ok")
    store.set_job_schedule("timeline:gone", "every 1h", 3600.0, True, now - timedelta(days=10))  # removed since
    store.close()
    collections = [{"name": "news", "type": "timeline", "schedule": "every 1s", "accounts": ["sfm_alpha"], "backfill": 5}]
    jobs = {**NO_OTHER_JOBS, "update_usernames": schedule, "catch_up": {"update_usernames": catch_up}}
    config = write_config(tmp_path / "config.yaml", tmp_path, simulator.base_url, collections, jobs=jobs)
    with Restarts(tmp_path, config) as daemons:
        daemon = daemons.start()
        if catch_up:
            wait_for(lambda: [r for r in _runs(tmp_path, "news", "update_usernames") if r["ended_at"]], 30,
                     "the catch-up run of update-usernames")
        harvests = len(_runs(tmp_path, "news"))
        wait_for(lambda: len(_runs(tmp_path, "news")) >= harvests + 3, 30, "three more harvests beside it")
        assert len(_runs(tmp_path, "news", "update_usernames")) == (1 if catch_up else 0)
        assert not _skipped(tmp_path, "news", "update_usernames")
        report = daemon.status()
        assert parse_timestamp(_job(report, "update-usernames")["next_run"]) == fire + timedelta(days=1)
        assert {job["job_id"] for job in report["jobs"]} == {"timeline:news", "update-usernames"}
        stop_cleanly(daemon)


def test_a_job_waits_for_a_lock_a_one_shot_holds_and_runs_when_it_frees(tmp_path, simulator):
    collections = [{"name": "news", "type": "timeline", "schedule": "every 2s", "accounts": ["sfm_alpha"], "backfill": 5}]
    config = write_config(tmp_path / "config.yaml", tmp_path, simulator.base_url, collections, jobs=NO_OTHER_JOBS)
    holder = _hold_harvest_lock(tmp_path)
    try:
        with Restarts(tmp_path, config) as daemons:
            _wait_then_run(tmp_path, config, daemons, holder)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _wait_then_run(tmp_path, config, daemons: Restarts, holder: subprocess.Popen) -> None:
    """A stop while the job waits, a restart that still owes the run, the run once the holder ends."""
    first = daemons.start()
    wait_for(lambda: _skipped(tmp_path, "news"), 30, "a run due while one is pending, recorded as skipped")
    reasons = {r["warnings"][0] for r in _skipped(tmp_path, "news")}
    assert reasons == {"skipped: the previous run was still running or waiting for its lock"}
    assert _job(first.status(), "timeline:news")["state"] == "waiting"
    first.send(signal.SIGTERM)  # a stop while waiting ends the wait at once
    assert first.process.wait(15) == 0, first.log_text()
    assert "stopped while waiting" in first.log_text()
    assert not _runs(tmp_path, "news")
    second = daemons.start()
    wait_for(lambda: _job(second.status(), "timeline:news")["state"] == "waiting", 30, "news waiting again: the run is owed")
    assert "waiting for its lock since" in cli("--config", str(config), "status").stdout
    holder.stdin.close()  # the one-shot ends
    holder.wait(30)
    wait_for(lambda: [r for r in _runs(tmp_path, "news") if r["result"] == "ok"], 30, "the harvest once the lock is free")
    job = _job(second.status(), "timeline:news")
    assert job["last_waited_seconds"] > 0
    reasons = {r["warnings"][0] for r in _skipped(tmp_path, "news")}
    assert reasons == {"skipped: the previous run was still running or waiting for its lock"}
    stop_cleanly(second)
