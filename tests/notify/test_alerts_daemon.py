"""Alerts from the real daemon to a real SMTP server and a real JSON webhook.

A token the simulator refuses makes every timeline run fail: one alert reaches each target.
A restart neither repeats it nor forgets it; fixing the token (SIGHUP) sends one all-clear.
Afterwards the metrics text parses with prometheus_client and agrees with `status --json`.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sfm_archiver.config import load_config
from sfm_archiver.metrics import metrics_text
from sfm_archiver.simulator import Scenario, Simulator
from tests import operator
from tests.notify.receivers import SmtpReceiver, WebhookReceiver, free_port
from tests.polling import wait_for

GOOD, BAD = "good-token-1f3a9c", "revoked-token-77b2"


def start_daemon(config, log):
    env = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "NOTIFY_SOCKET")}
    return subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(config), "run"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env=env)


def stop(process):
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 0


def failed_runs(root) -> int:
    with sqlite3.connect(root / "state" / "state.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM runs WHERE result = 'failed'").fetchone()[0]


def alert_rows(root) -> list[tuple]:
    with sqlite3.connect(root / "state" / "state.sqlite3") as db:
        return db.execute("SELECT key, ended_at FROM alerts ORDER BY started_at").fetchall()


def count(texts: list[str], word: str) -> int:
    return sum(1 for text in texts if word in text)


@pytest.fixture
def receivers():
    smtp, hook = SmtpReceiver(), WebhookReceiver()
    yield smtp, hook
    smtp.stop()
    hook.stop()


def test_failing_job_one_alert_restart_keeps_it_fix_sends_one_all_clear(tmp_path, receivers):
    smtp, hook = receivers
    metrics_port = free_port()
    simulator = Simulator(Scenario.from_dict({"tokens": [GOOD], "links": {"probability": 0.0}}))
    api = simulator.start()
    notify = {"targets": [hook.url], "smtp": {"host": "127.0.0.1", "port": smtp.port, "security": "none",
                                              "from": "sfm@example.edu", "to": ["archives@example.edu"]},
              "digest": "off", "stream_down_after": "1s"}
    sections = {"jobs": {"update_usernames": "off", "fetch_urls": "off", "bag": "off", "report": "off"},
                "notify": notify, "metrics": {"textfile": str(tmp_path / "metrics" / "sfm.prom"), "interval": "1s",
                                              "listen": f"127.0.0.1:{metrics_port}"}}
    collections = [{"name": "news", "type": "timeline", "schedule": "every 1s", "accounts": ["sfm_alpha"], "backfill": 5}]
    config = operator.write_config(tmp_path / "config.yaml", tmp_path, api, collections, token=BAD, **sections)
    (tmp_path / "metrics").mkdir()
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        wait_for(lambda: count(hook.texts(), "PROBLEM") and count(smtp.texts(), "PROBLEM"), 60, "the alert at both targets")
        assert "refused the token" in hook.texts()[0]
        stop(daemon)
        failed_before = failed_runs(tmp_path)
        daemon = start_daemon(config, log)
        wait_for(lambda: failed_runs(tmp_path) >= failed_before + 3, 60, "more failing runs after the restart")
        wait_for(lambda: (tmp_path / "metrics" / "sfm.prom").exists(), 30, "the metrics text file")
        served = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30)
        assert served.status_code == 200
        assert {f.name for f in text_string_to_metric_families(served.text)} >= {"sfm_archiver_daemon_up", "sfm_archiver_alerts_active"}
        assert count(hook.texts(), "PROBLEM") == 1 and count(smtp.texts(), "PROBLEM") == 1, hook.texts()
        assert [key for key, ended in alert_rows(tmp_path) if ended is None] == ["api:auth"]
        document = yaml.safe_load(config.read_text())
        document["x"]["bearer_token"] = GOOD
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: count(hook.texts(), "RESOLVED") and count(smtp.texts(), "RESOLVED"), 60, "the all-clear at both targets")
        stop(daemon)
    finally:
        if daemon.poll() is None:
            daemon.kill()
        simulator.stop()
    assert count(hook.texts(), "PROBLEM") == 1 and count(hook.texts(), "RESOLVED") == 1, hook.texts()
    assert count(smtp.texts(), "PROBLEM") == 1 and count(smtp.texts(), "RESOLVED") == 1, smtp.texts()
    assert BAD not in log.read_text() and GOOD not in log.read_text()
    assert all(ended for _key, ended in alert_rows(tmp_path))
    check_metrics_match_status(tmp_path, config)


def check_metrics_match_status(root, config_path):
    """The metrics text parses, and its values are those of `status --json` (daemon stopped: nothing moves)."""
    result = operator.cli("--config", str(config_path), "status", "--json")
    report = json.loads(result.stdout)
    families = {f.name: f for f in text_string_to_metric_families(metrics_text(load_config(config_path)))}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("sfm_archiver_status", ())] == {"ok": 0, "warning": 1, "critical": 2}[report["overall"]]
    assert samples[("sfm_archiver_daemon_up", ())] == (1 if report["daemon"]["responding"] else 0)
    for state, n in report["accounts"]["by_state"].items():
        assert samples[("sfm_archiver_accounts", (("state", state),))] == n
    for name, space in report["disk"]["paths"].items():
        assert abs(samples[("sfm_archiver_disk_free_bytes", (("path", name),))] - space["free_bytes"]) < 64 * 2**20
    for limit in report["api"]["rate_limits"]:
        labels = (("credential", limit["credential"]), ("endpoint", limit["endpoint"]))
        assert samples[("sfm_archiver_rate_limit_remaining", labels)] == limit["remaining"]
    with sqlite3.connect(root / "state" / "state.sqlite3") as db:
        posts = sum(json.loads(c or "{}").get("posts", 0) for (c,) in db.execute("SELECT counts FROM runs WHERE job = 'user_timeline'"))
        failed = db.execute("SELECT COUNT(*) FROM runs WHERE result = 'failed' AND job = 'user_timeline'").fetchone()[0]
    assert posts > 0
    assert samples[("sfm_archiver_posts_captured_total", (("collection", "news"),))] == posts
    assert samples[("sfm_archiver_run_failures_total", (("collection", "news"), ("job", "user_timeline")))] == failed
    written = (root / "metrics" / "sfm.prom").read_text()
    assert any(f.name == "sfm_archiver_posts_captured" for f in text_string_to_metric_families(written))
