"""A daemon busy in slow requests: overlapping runs are skipped and recorded, a second SIGTERM
exits at once with every file readable; and the disk guard pauses harvesting and lets it resume."""

from __future__ import annotations

import gzip
import signal

from sfm_archiver.simulator import Scenario, Simulator
from sfm_archiver.state import StateStore
from tests.daemon.helpers import NotifySocket, wait_for, write_config
from tests.daemon.test_daemon_process import Daemon


def _runs(root, result=None):
    runs = StateStore(root / "state").runs(collection="news", job="user_timeline")
    return [r for r in runs if result is None or r["result"] == result]


def test_overlap_is_skipped_and_a_second_sigterm_exits_at_once(tmp_path):
    scenario = Scenario.from_dict({"faults": {"endpoint_latency_ms": {"user_tweets": 1500}}, "links": {"probability": 0.0}})
    with Simulator(scenario) as simulator:
        api = simulator.start()
        collections = [
            {"name": "news", "type": "timeline", "schedule": "every 1s", "backfill": 5,
             "accounts": ["sfm_alpha", "sfm_beta", "sfm_locked"]},
            {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "climate"}]},
        ]
        config = write_config(tmp_path / "config.yaml", tmp_path, api, collections,
                              jobs={"update_usernames": "off", "fetch_urls": "off", "bag": "off"})
        notify = NotifySocket(tmp_path)
        daemon = Daemon(tmp_path, config, notify)
        try:
            wait_for(lambda: notify.has("READY=1") or daemon.process.poll() is not None, 20, "READY=1")
            wait_for(lambda: [r for r in _runs(tmp_path, "skipped") if "still running" in r["warnings"][0]], 20,
                     "a skipped overlapping run in the state store")
            wait_for(lambda: list((tmp_path / "archive").rglob("*.jsonl.gz")), 20, "capture files being written")
            wait_for(lambda: _runs(tmp_path, "running"), 10, "a harvest in flight")
            daemon.send(signal.SIGTERM)
            wait_for(lambda: notify.has("STOPPING=1"), 60, "STOPPING=1")
            assert daemon.process.poll() is None  # waiting for the harvest to reach a safe point
            daemon.send(signal.SIGTERM)
            code = daemon.process.wait(60)
            assert code == 128 + signal.SIGTERM, daemon.log_text()
            assert _runs(tmp_path, "running"), "the second SIGTERM ended the process before the harvest's safe point"
        finally:
            daemon.stop()
            notify.close()
    assert "exiting at once" in daemon.log_text()
    files = list((tmp_path / "archive").rglob("*.jsonl.gz"))
    assert files
    for path in files:
        with gzip.open(path, "rb") as handle:
            handle.read()


def test_disk_guard_pauses_below_min_free_and_resumes(tmp_path):
    with Simulator(Scenario.from_dict({"links": {"probability": 0.0}})) as simulator:
        api = simulator.start()
        collections = [{"name": "news", "type": "timeline", "schedule": "every 1s", "backfill": 5, "accounts": ["sfm_alpha"]}]
        jobs = {"update_usernames": "off", "fetch_urls": "off", "bag": "off"}
        full = {"warning_free": "1000TB", "min_free": "1000TB"}
        config = write_config(tmp_path / "config.yaml", tmp_path, api, collections, jobs=jobs, disk=full)
        notify = NotifySocket(tmp_path)
        daemon = Daemon(tmp_path, config, notify)
        try:
            wait_for(lambda: notify.has("READY=1") or daemon.process.poll() is not None, 20, "READY=1")
            wait_for(lambda: len(_runs(tmp_path, "skipped")) >= 2, 15, "harvests skipped for lack of disk space")
            assert "disk" in _runs(tmp_path, "skipped")[0]["warnings"][0]
            assert not _runs(tmp_path, "ok")
            report = daemon.status()
            assert report["overall"] == "critical" and report["exit_code"] == 2
            assert report["disk"]["level"] == "critical"
            assert any("DISK LOW" in f for f in notify.fields() if f.startswith("STATUS="))
            write_config(config, tmp_path, api, collections, jobs=jobs, disk={"warning_free": "1MB", "min_free": "1MB"})
            daemon.send(signal.SIGHUP)
            wait_for(lambda: _runs(tmp_path, "ok"), 20, "harvesting to resume")
            wait_for(lambda: daemon.status()["disk"]["level"] == "ok", 10, "disk level ok in status")
            daemon.send(signal.SIGTERM)
            assert daemon.process.wait(30) == 0, daemon.log_text()
        finally:
            daemon.stop()
            notify.close()
