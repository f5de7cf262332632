"""`status`: what it reports from a state store built by hand, its levels and exit codes."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from sfm_archiver.config import load_config
from sfm_archiver.errors import ConfigError
from sfm_archiver.state import StateStore
from sfm_archiver.status import collect, exit_code, load_for_reading, pending_periods, render_text
from sfm_archiver.streams.gaps import stored_disconnected_seconds
from tests.daemon.helpers import cli, write_config

NOW = datetime(2026, 11, 27, 13, 30, tzinfo=timezone.utc)
COLLECTIONS = [
    {"name": "news", "type": "timeline", "schedule": "0 */6 * * *", "accounts": ["sfm_alpha", "sfm_beta"]},
    {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "climate"}]},
]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


@pytest.fixture
def config(tmp_path):
    return load_config(write_config(tmp_path / "config.yaml", tmp_path, "http://127.0.0.1:9", COLLECTIONS))


def _running_daemon(store: StateStore, heartbeat: datetime = NOW) -> None:
    store.set_daemon_values(pid=os.getpid(), state="running", started_at=_iso(NOW - timedelta(hours=2)),
                            heartbeat_at=_iso(heartbeat), config_loaded_at=_iso(NOW - timedelta(hours=2)))
    store.set_job_schedule("timeline:news", "0 */6 * * *", None, True, NOW - timedelta(hours=2))
    store.update_job_schedule("timeline:news", last_start=NOW - timedelta(minutes=90), last_end=NOW - timedelta(minutes=89),
                              last_result="ok", pid=os.getpid())


def test_never_started_is_critical(config):
    report = collect(config, now=NOW)
    assert set(report) >= {"overall", "daemon", "collections", "accounts", "disk", "bags", "api", "problems"}
    assert report["overall"] == "critical" and exit_code(report) == 2
    assert report["daemon"]["state"] == "never started"
    assert "never run" in render_text(report)


def test_a_healthy_daemon_is_ok_and_shows_runs_accounts_and_streams(config):
    store = StateStore(config.paths.state)
    _running_daemon(store)
    run = store.start_run("user_timeline", "news")
    store.finish_run(run, "ok", {"posts": 40, "pages": 3})
    store.record_skipped_run("user_timeline", "news", "skipped: the previous run was still running")
    store.upsert_account("100001", username="sfm_alpha")
    store.upsert_account("100004", username="sfm_banned", status="suspended")
    store.link_account("news", "100001", "username:sfm_alpha")
    store.link_account("news", "100004", "username:sfm_banned")
    store.record_stream_event("climate", "start", at=NOW - timedelta(hours=30))
    store.record_stream_event("climate", "connect", at=NOW - timedelta(hours=30))
    store.record_stream_event("climate", "disconnect", "operational-disconnect", at=NOW - timedelta(minutes=10))
    store.record_stream_event("climate", "connect", at=NOW - timedelta(minutes=9))
    store.add_stream_counts("climate", "climate", NOW - timedelta(minutes=5), 120, 0, NOW - timedelta(seconds=3))
    report = collect(config, now=NOW)
    assert report["overall"] == "ok", report["problems"]
    news, climate = report["collections"]
    assert news["last_run"]["result"] == "ok" and news["last_run"]["counts"]["posts"] == 40
    assert news["last_skipped"]["result"] == "skipped"
    assert news["next_run"] == _iso(NOW.replace(hour=18, minute=0))  # "0 */6 * * *" after the 12:00 run
    assert [(job["job_id"], job["last_result"], job["next_run"]) for job in report["jobs"]] == [
        ("timeline:news", "ok", news["next_run"])]
    assert news["accounts"]["tracked"] == 2
    assert climate["stream"]["connected"] is True
    assert climate["stream"]["messages_last_hour"] == 120
    assert climate["stream"]["last_message_age_seconds"] == 3.0
    assert climate["stream"]["disconnected_seconds_24h"] == 60.0
    assert report["accounts"]["by_state"] == {"active": 1, "suspended": 1}
    assert [a["reason"] for a in report["accounts"]["attention"]] == ["suspended"]
    text = render_text(report)
    assert "sfm_banned" in text and "connected, 120 msg/h" in text and "posts=40" in text
    assert "timeline:news  0 */6 * * *  11-27 12:00:00  11-27 12:01:00  ok" in text
    json.dumps(report)


def test_problems_raise_the_level(config):
    store = StateStore(config.paths.state)
    _running_daemon(store)
    run = store.start_run("user_timeline", "news")
    store.finish_run(run, "failed", errors=["token refused"])
    store.upsert_account("100002", username="sfm_beta")
    for _ in range(3):
        store.record_account_failure("100002", "HTTP 503")
    store.set_usage_cap("token:abc", NOW + timedelta(days=2), "usage-capped")
    store.set_daemon_values(last_reload_error={"at": _iso(NOW), "problems": ["config.yaml:7: unknown key 'schedul'"]})
    report = collect(config, now=NOW)
    assert report["overall"] == "warning" and exit_code(report) == 1
    messages = " | ".join(p["message"] for p in report["problems"])
    for expected in ("token refused", "failing repeatedly", "usage cap", "config.yaml:7", "stream is not connected"):
        assert expected in messages
    assert "last reload FAILED" in render_text(report)
    _running_daemon(store, heartbeat=NOW - timedelta(minutes=5))
    stale = collect(config, now=NOW)
    assert stale["overall"] == "critical" and not stale["daemon"]["responding"]


def test_disconnected_seconds_reads_events_like_the_stream_supervisor(tmp_path):
    store = StateStore(tmp_path)
    start, end = NOW - timedelta(hours=24), NOW
    assert stored_disconnected_seconds(store, "s", start, end) is None
    store.record_stream_event("s", "connect", at=start - timedelta(hours=1))
    store.record_stream_event("s", "disconnect", at=start + timedelta(minutes=10))
    store.record_stream_event("s", "connect", at=start + timedelta(minutes=12))
    store.record_stream_event("s", "stop", at=start + timedelta(hours=1))  # not meant to run: no gap
    store.record_stream_event("s", "start", at=start + timedelta(hours=2))
    store.record_stream_event("s", "connect", at=start + timedelta(hours=2, seconds=30))
    assert stored_disconnected_seconds(store, "s", start, end) == 120 + 30
    assert stored_disconnected_seconds(store, "s", start, end, alive=False) == 150 + (end - start - timedelta(hours=2, seconds=30)).total_seconds()


def test_pending_periods_are_complete_folders_not_yet_bagged(config):
    archive = config.paths.archive
    for hour in ("2026/11/25/10", "2026/11/27/09", "2026/11/27/13"):
        (archive / "news" / hour).mkdir(parents=True)
        (archive / "news" / hour / "news-timeline-20261127T090000Z.jsonl.gz").write_bytes(b"")
    pending = pending_periods(config, NOW, bagged=lambda name: False)
    assert [p["label"] for p in pending] == ["2026-11-25"]  # period day, grace 2h: the 27th is not over
    late = collect(config, now=NOW)["problems"]
    assert any("bagging is behind" in p["message"] for p in late)


def test_invalid_file_falls_back_to_the_configuration_the_daemon_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("SFM_X_TOKEN_FOR_STATUS", raising=False)
    path = write_config(tmp_path / "config.yaml", tmp_path, "http://127.0.0.1:9", COLLECTIONS)
    text = path.read_text().replace("test-token-5e1f0a9c", "${SFM_X_TOKEN_FOR_STATUS}")
    path.write_text(text)
    config, problems = load_for_reading(path)  # the token variable is unset in this shell: not needed
    assert problems == [] and [c.name for c in config.collections] == ["news", "climate"]
    path.write_text(text.replace("schedule:", "schedul:", 1))
    with pytest.raises(ConfigError):
        load_for_reading(path)  # no daemon has recorded the configuration it runs
    StateStore(tmp_path / "state").set_daemon_values(config_text=text)
    config, problems = load_for_reading(path)
    assert [c.name for c in config.collections] == ["news", "climate"]
    assert any("schedul" in p for p in problems)
    result = cli("--config", str(path), "status", "--json")
    report = json.loads(result.stdout)
    assert any("configuration file is invalid" in p["message"] for p in report["problems"])
    assert result.returncode == 2  # and the daemon is not running


def test_status_command_exit_code_and_text(config):
    result = cli("--config", str(config.source), "status")
    assert result.returncode == 2
    assert result.stdout.startswith("sfm-archiver status: CRITICAL")


def test_the_view_the_daemon_records_spares_parsing_the_yaml(tmp_path):
    from sfm_archiver.status import view_record

    path = write_config(tmp_path / "config.yaml", tmp_path, "http://127.0.0.1:9", COLLECTIONS)
    StateStore(tmp_path / "state").set_daemon_values(config_view=view_record(load_config(path), path.stat()))
    stat = path.stat()
    text = path.read_text()
    path.write_text(text.replace("collections:", "collectionz:"))  # same size, invalid
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    view, problems = load_for_reading(path)
    assert problems == []  # not parsed: the file is the one the daemon loaded, as far as stat can tell
    assert [(c.name, c.accounts) for c in view.collections] == [("news", 2), ("climate", 0)]
    os.utime(path)  # edited since: parsed, found invalid, and no running copy to fall back on
    with pytest.raises(ConfigError):
        load_for_reading(path)


def test_jobs_show_waiting_running_and_a_run_a_dead_daemon_left(config):
    store = StateStore(config.paths.state)
    _running_daemon(store)
    for job_id in ("timeline:news", "update-usernames", "bag"):
        store.set_job_schedule(job_id, "every 1h", 3600.0, True, NOW - timedelta(days=1))
    store.update_job_schedule("timeline:news", pending_since=NOW - timedelta(minutes=3), pid=os.getpid(),
                              last_start=NOW - timedelta(minutes=63), last_result="ok")
    store.update_job_schedule("update-usernames", last_start=NOW - timedelta(minutes=1), last_result="running", pid=os.getpid())
    store.update_job_schedule("bag", last_start=NOW - timedelta(minutes=2), last_result="running", pid=2**22 + 12345)
    jobs = {job["job_id"]: job for job in collect(config, now=NOW)["jobs"]}
    assert (jobs["timeline:news"]["state"], jobs["timeline:news"]["waiting_since"]) == ("waiting", _iso(NOW - timedelta(minutes=3)))
    assert jobs["timeline:news"]["next_run"] == _iso(NOW)  # overdue: due now
    assert (jobs["update-usernames"]["state"], jobs["update-usernames"]["last_result"]) == ("running", "running")
    assert (jobs["bag"]["state"], jobs["bag"]["last_result"]) == ("idle", "interrupted")  # its process is gone
    assert jobs["bag"]["next_run"] == _iso(NOW + timedelta(minutes=58))
    text = render_text(collect(config, now=NOW))
    assert "waiting for its lock since 11-27 13:27:00" in text
