"""Disk full: the archive (and outbox) on an 8 MB tmpfs that the test fills to the last byte.

Harvesting pauses (runs skipped for lack of space, stream messages held in memory), `status`
goes critical, no capture file is ever torn (each decompresses, even while the disk is full),
and once space is freed everything resumes by itself: the final invariant check finds every
post and every stream message sent while the daemon was connected, exactly once.

Mounting needs root; where it is refused the test is skipped, saying why.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sfm_archiver.config import load_config
from sfm_archiver.simulator import Scenario, Simulator
from sfm_archiver.state import StateStore
from tests.chaos.helpers import TOKEN, cli, wait_for
from tests.invariants import RunExpectations, check_run, check_storage

SCENARIO = {
    "seed": 3,
    "accounts": [{"id": "100001", "username": "sfm_alpha", "tweets": 200, "posts_per_second": 3},
                 {"id": "100002", "username": "sfm_beta", "tweets": 100, "posts_per_second": 3}],
    "streams": {"messages_per_second": 150, "message_bytes": 2000, "keepalive_seconds": 1},
    "links": {"probability": 0.0},
}


@pytest.fixture
def small_disk(tmp_path: Path):
    """An 8 MB tmpfs mounted for the test, unmounted afterwards (lazily if still busy)."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount an 8 MB tmpfs (needs root and mount rights): {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def fill(folder: Path) -> Path:
    """Write one file until the filesystem has no byte left (ENOSPC)."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 18, 1 << 12, 1 << 9, 1):
            block = b"\xa5" * size
            while True:
                try:
                    os.write(fd, block)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def status(config: Path) -> tuple[int, dict]:
    result = cli("--config", str(config), "status", "--json")
    return result.returncode, json.loads(result.stdout)


def runs(state: Path, result: str) -> list[dict]:
    store = StateStore(state)
    try:
        return [run for run in store.runs(collection="tl", job="user_timeline") if run["result"] == result]
    finally:
        store.close()


def test_a_full_disk_pauses_everything_corrupts_nothing_and_resumes(tmp_path, small_disk):
    import yaml

    scenario = Scenario.from_dict(SCENARIO)
    with Simulator(scenario) as sim:
        config_path = tmp_path / "config.yaml"
        config_path.write_text(yaml.safe_dump({
            "paths": {"archive": str(small_disk / "archive"), "outbox": str(small_disk / "outbox"),
                      "state": str(tmp_path / "state")},
            "x": {"api_base_url": sim.base_url, "bearer_token": TOKEN},
            "collections": [
                {"name": "tl", "type": "timeline", "schedule": "every 1s", "backfill": 200,
                 "accounts": ["sfm_alpha", "sfm_beta"]},
                {"name": "sample", "type": "sample_stream"},
            ],
            "jobs": {"update_usernames": "off", "fetch_urls": "off", "bag": "off"},
            "storage": {"stream_flush_seconds": "250ms"},
            "disk": {"warning_free": "3MB", "min_free": "2MB"},
        }))
        log = open(tmp_path / "daemon.log", "wb")
        env = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "NOTIFY_SOCKET")}
        daemon = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(config_path), "run"],
                                  stdout=subprocess.DEVNULL, stderr=log, env=env)
        try:
            archive = small_disk / "archive"
            wait_for(lambda: list(archive.rglob("tl-timeline-*.jsonl.gz")) and list(archive.rglob("sample-stream-*")),
                     30, "timeline and stream captures on the small disk")

            filler = fill(small_disk)
            assert os.statvfs(small_disk).f_bavail == 0
            wait_for(lambda: status(config_path)[0] == 2, 30, "status critical (exit 2)")
            code, report = status(config_path)
            assert report["disk"]["level"] == "critical", report["disk"]
            wait_for(lambda: any("disk" in " ".join(run["warnings"]) for run in runs(tmp_path / "state", "skipped")),
                     30, "a harvest skipped for lack of disk space")
            sizes = {path: path.stat().st_size for path in archive.rglob("*.gz")}
            wait_for(lambda: daemon.poll() is None, 1, "the daemon still running")
            full = check_storage(archive, small_disk / "outbox")
            assert not [v for v in full.violations if v.check.startswith("capture.")], full.summary()

            filler.unlink()
            wait_for(lambda: status(config_path)[1]["disk"]["level"] == "ok", 30, "disk level ok again")
            wait_for(lambda: any(path not in sizes or path.stat().st_size > sizes[path]
                                 for path in archive.rglob("sample-stream-*.jsonl.gz")), 30, "the stream written again")
            resumed_after = len(runs(tmp_path / "state", "ok"))
            wait_for(lambda: len(runs(tmp_path / "state", "ok")) > resumed_after + 1, 30, "harvests succeeding again")

            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(60) == 0, (tmp_path / "daemon.log").read_text()[-3000:]
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
            log.close()
        final = cli("--config", str(config_path), "user-timeline")
        assert final.returncode == 0, final.stdout + final.stderr
        config = load_config(config_path)
        report = check_run(config, sim.published(stream_messages=False), scenario.accounts,
                           RunExpectations(loss_window_seconds=3.0), stream_messages=sim.stream_messages())
    print(report.summary())
    assert report.ok, report.summary()
    assert report.counts["stream_messages_sent_sample"] > 500
    assert report.counts["stream_messages_lost_at_breaks"] <= 450  # only the last moments of the clean stop
