"""A mail server that accepts connections and never answers holds up no harvest.

The disk warning threshold is set above the free space, so the daemon has an alert to send
from its first evaluation; the SMTP target is a port that never speaks. Harvests every second
must go on at their pace while the message waits in the queue.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys

from sfm_archiver.simulator import Scenario, Simulator
from tests import operator
from tests.notify.receivers import Blackhole, WebhookReceiver
from tests.polling import wait_for


def ok_runs(root) -> list[tuple[str, str]]:
    with sqlite3.connect(root / "state" / "state.sqlite3") as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alerts'").fetchone():
            return []  # the daemon is still creating the schema
        return db.execute("SELECT started_at, ended_at FROM runs WHERE job = 'user_timeline' AND result = 'ok' "
                          "ORDER BY started_at").fetchall()


def test_a_hung_smtp_server_slows_no_harvest(tmp_path):
    hole, hook = Blackhole(), WebhookReceiver()
    simulator = Simulator(Scenario.from_dict({"links": {"probability": 0.0}}))
    api = simulator.start()
    sections = {
        "jobs": {"update_usernames": "off", "fetch_urls": "off", "bag": "off", "report": "off"},
        "disk": {"warning_free": "1000TB", "min_free": "1MB"},
        "notify": {"targets": [hook.url], "digest": "off",
                   "smtp": {"host": "127.0.0.1", "port": hole.port, "security": "none", "to": ["a@example.edu"], "timeout": "300s"}},
    }
    collections = [{"name": "news", "type": "timeline", "schedule": "every 1s", "accounts": ["sfm_alpha"], "backfill": 5}]
    config = operator.write_config(tmp_path / "config.yaml", tmp_path, api, collections, token="tok-dead-smtp", **sections)
    env = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "NOTIFY_SOCKET")}
    daemon = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(config), "run"],
                              stdout=subprocess.DEVNULL, stderr=open(tmp_path / "daemon.log", "wb"), env=env)
    try:
        wait_for(lambda: (tmp_path / "state" / "state.sqlite3").exists() and ok_runs(tmp_path), 60, "a first harvest")
        with sqlite3.connect(tmp_path / "state" / "state.sqlite3") as db:
            wait_for(lambda: db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0], 30, "the disk alert")
        first = len(ok_runs(tmp_path))
        wait_for(lambda: len(ok_runs(tmp_path)) >= first + 8, 60, "eight more harvests while the mail server hangs")
        with sqlite3.connect(tmp_path / "state" / "state.sqlite3") as db:
            pending = db.execute("SELECT pending FROM notify_outbox").fetchall()
        assert pending and all("smtp" in row[0] for row in pending), "the message still waits for the mail server"
        assert hook.texts(), "the other target is not held up either"
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        simulator.stop()
        hole.stop()
        hook.stop()
