"""The real daemon process against the simulator, steered by signals and a YAML file.

One daemon runs for the whole module (starting one costs seconds); the tests run in file
order and each checks one promise: READY=1, harvest and bag on schedule, single instance,
reload of a valid and an invalid edit, and a clean SIGTERM with every file readable.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from sfm_archiver.bagging import verify_paths
from sfm_archiver.ledger import Ledger
from sfm_archiver.simulator import Scenario, Simulator
from sfm_archiver.state import StateStore
from sfm_archiver.storage import layout
from sfm_archiver.storage.records import json_line
from sfm_archiver.storage.writer import CaptureWriter
from sfm_archiver.timeutil import utcnow
from tests.daemon.helpers import NotifySocket, cli, wait_for, write_config

OLD_HOURS = 3


class Daemon:
    """A `sfm-archiver run` subprocess with its notify socket, config and log."""

    def __init__(self, root: Path, config: Path, notify: NotifySocket, extra_env: dict | None = None):
        self.root, self.config, self.notify = root, config, notify
        self.log = root / "daemon.log"
        env = {**os.environ, "NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "2000000", **(extra_env or {})}
        env.pop("SFM_ARCHIVER_CONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sfm_archiver", "--config", str(config), "run"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "wb"), env=env,
        )

    def status(self) -> dict:
        result = cli("--config", str(self.config), "status", "--json")
        assert result.returncode in (0, 1, 2), result.stderr
        report = json.loads(result.stdout)
        report["exit_code"] = result.returncode
        return report

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def collection_doc(accounts: list[str]) -> list[dict]:
    return [
        {"name": "news", "type": "timeline", "schedule": "every 2s", "accounts": accounts, "backfill": 20},
        {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "climate"}]},
    ]


JOBS = {"update_usernames": "every 5s", "fetch_urls": "off", "bag": "every 2s"}
BAGGING = {"period": "hour", "grace": "0s", "checksums": ["sha256"]}


def place_old_captures(archive: Path) -> Path:
    """Capture files of an hour long past: the bag job must find and bag that period."""
    old = utcnow() - timedelta(hours=OLD_HOURS)
    writer = CaptureWriter(archive, "news", "timeline", clock=lambda: old)
    path = writer.write_batch([json_line({"data": [{"id": str(n), "text": f"old post {n}"}], "__sfm": {"n": n}}) for n in range(3)])
    writer.close()
    return path


def captured_account_ids(archive: Path) -> set[str]:
    found = set()
    for path in sorted((archive / "news").rglob("news-timeline-*.jsonl.gz")):
        with gzip.open(path, "rt") as handle:
            for line in handle:
                account = json.loads(line).get("__sfm", {}).get("account")
                if account:
                    found.add(account["id"])
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("daemon")
    simulator = Simulator(Scenario.from_dict({"links": {"probability": 0.0}, "streams": {"messages_per_second": 20}}))
    api = simulator.start()
    config = write_config(root / "config.yaml", root, api, collection_doc(["sfm_alpha"]), jobs=JOBS, bagging=BAGGING)
    old_file = place_old_captures(root / "archive")
    notify = NotifySocket(root)
    daemon = Daemon(root, config, notify)
    yield {"root": root, "api": api, "daemon": daemon, "old_file": old_file, "simulator": simulator}
    daemon.stop()
    notify.close()
    simulator.stop()


def test_ready_arrives_and_watchdog_pings(world):
    daemon = world["daemon"]
    wait_for(lambda: daemon.notify.has("READY=1") or daemon.process.poll() is not None, 20, "READY=1")
    assert daemon.process.poll() is None, daemon.log_text()
    wait_for(lambda: daemon.notify.count("WATCHDOG=1") >= 2, 10, "two WATCHDOG=1 pings")
    assert any(field.startswith("STATUS=2 collections") for field in daemon.notify.fields())


def test_timeline_harvest_and_bag_happen_on_schedule(world):
    daemon, root = world["daemon"], world["root"]
    wait_for(lambda: "100001" in captured_account_ids(root / "archive"), 30, "a harvest of sfm_alpha")
    old_hour = layout.period_of(utcnow() - timedelta(hours=OLD_HOURS), "hour")
    bag = root / "outbox" / f"news_{old_hour.label}"
    wait_for(bag.exists, 30, f"bag {bag.name} in the outbox")
    assert verify_paths([bag]) == []
    assert not world["old_file"].exists()
    report = daemon.status()
    news = next(c for c in report["collections"] if c["name"] == "news")
    assert news["last_run"]["job"] == "user_timeline"
    assert news["next_run"] is not None
    assert report["daemon"]["alive"] and report["daemon"]["responding"]
    climate = next(c for c in report["collections"] if c["name"] == "climate")
    wait_for(lambda: next(c for c in daemon.status()["collections"] if c["name"] == "climate")["stream"]["connected"],
             20, "the filter stream to connect")
    assert climate["type"] == "filter_stream"
    assert set(report) >= {"overall", "daemon", "collections", "accounts", "disk", "bags"}


def test_a_second_daemon_refuses_to_start(world):
    daemon = world["daemon"]
    result = cli("--config", str(daemon.config), "run", timeout=30)
    assert result.returncode == 2
    assert f"pid {daemon.process.pid}" in result.stderr
    assert "already running" in result.stderr
    assert daemon.process.poll() is None


def test_an_account_added_to_the_yaml_is_harvested_after_sighup(world):
    daemon, root = world["daemon"], world["root"]
    assert "100002" not in captured_account_ids(root / "archive")
    readies = daemon.notify.count("READY=1")
    write_config(daemon.config, root, world["api"], collection_doc(["sfm_alpha", "sfm_beta"]), jobs=JOBS, bagging=BAGGING)
    daemon.send(signal.SIGHUP)
    wait_for(lambda: daemon.notify.count("READY=1") > readies, 10, "READY=1 after the reload")
    assert daemon.notify.has("RELOADING=1")
    wait_for(lambda: "100002" in captured_account_ids(root / "archive"), 30, "a harvest of the added sfm_beta")
    added = [r for r in Ledger(root / "state").records() if r["account_id"] == "100002" and r["event"] == "added"]
    assert added
    assert daemon.process.poll() is None


def test_an_invalid_edit_keeps_the_old_configuration(world):
    daemon, root = world["daemon"], world["root"]
    good = daemon.config.read_text()
    document = yaml.safe_load(good)
    document["collections"][0]["schedul"] = "every 1s"
    daemon.config.write_text(yaml.safe_dump(document, sort_keys=False))
    bad_line = next(n for n, line in enumerate(daemon.config.read_text().splitlines(), 1) if "schedul:" in line)
    readies = daemon.notify.count("READY=1")
    daemon.send(signal.SIGHUP)
    wait_for(lambda: daemon.notify.count("READY=1") > readies, 10, "READY=1 after the refused reload")
    report = daemon.status()
    error = report["daemon"]["last_reload_error"]
    assert error and any(f"config.yaml:{bad_line}:" in p and "schedul" in p for p in error["problems"]), error
    assert report["overall"] in ("warning", "critical") and report["exit_code"] >= 1
    assert daemon.process.poll() is None
    runs_before = len(StateStore(root / "state").runs(collection="news", job="user_timeline"))
    wait_for(lambda: len(StateStore(root / "state").runs(collection="news", job="user_timeline")) > runs_before + 1,
             20, "harvests going on under the old configuration")
    daemon.config.write_text(good)
    readies = daemon.notify.count("READY=1")
    daemon.send(signal.SIGHUP)
    wait_for(lambda: daemon.notify.count("READY=1") > readies, 10, "READY=1 after the repaired reload")
    wait_for(lambda: daemon.status()["daemon"]["last_reload_error"] is None, 10, "the reload error to clear")


def test_sigterm_stops_cleanly_with_every_file_readable(world):
    daemon, root = world["daemon"], world["root"]
    daemon.send(signal.SIGTERM)
    assert daemon.process.wait(30) == 0, daemon.log_text()
    assert daemon.notify.has("STOPPING=1")
    files = list((root / "archive").rglob("*.gz"))
    assert any("stream" in f.name for f in files) and any("timeline" in f.name for f in files)
    for path in files:
        with gzip.open(path, "rb") as handle:
            data = handle.read()  # every member complete: a torn one raises here
        if path.name.endswith(".jsonl.gz"):
            for line in data.splitlines():
                json.loads(line)
    store = StateStore(root / "state")
    assert store.open_files() == []
    assert not [r for r in store.runs() if r["result"] == "running"]
    assert Ledger(root / "state").verify().ok
    assert "Traceback" not in daemon.log_text()
    report = daemon.status()
    assert report["daemon"]["state"] == "stopped" and report["exit_code"] == 2
