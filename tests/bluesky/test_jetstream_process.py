"""Jetstream collections in real processes: the daemon (status, reload, SIGTERM, kill -9 and a
restart) and the foreground `stream` command, against the real simulator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from sfm_archiver.state import StateStore
from tests.bluesky.conftest import captured, event_keys, jetstream, officials, published_key, write_config
from tests.daemon.helpers import cli
from tests.polling import wait_for


def start_daemon(config: Path, log: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key not in ("SFM_ARCHIVER_CONFIG", "NOTIFY_SOCKET")}
    return subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(config), "run"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env=env)


def connected(state: Path, collection: str) -> bool:
    if not (state / "state.sqlite3").exists():
        return False
    last = StateStore(state).last_stream_event(collection)
    return bool(last) and last["event"] == "connect"


def posts_of(sim, did: str) -> list[dict]:
    return [e for e in sim.jetstream_events() if e["did"] == did]


def status(config: Path) -> dict:
    result = cli("--config", str(config), "status", "--json")
    assert result.returncode in (0, 1, 2), result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def daemon_setup(make_bsky, tmp_path):
    sim = make_bsky(jetstream={"events_per_second": 30})
    config = write_config(tmp_path, sim, [officials("alice.bsky.test"), jetstream(from_collections=["officials"])])
    processes: list[subprocess.Popen] = []
    yield sim, config, tmp_path, processes
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_daemon_runs_a_jetstream_collection_shows_it_in_status_reloads_and_stops(daemon_setup):
    sim, config, root, processes = daemon_setup
    alice, bob = sim.did_of("alice.bsky.test"), sim.did_of("bob.bsky.test")
    processes.append(daemon := start_daemon(config, root / "daemon.log"))
    wait_for(lambda: connected(root / "state", "live"), timeout=60, what="the jetstream connected")
    for number in range(3):
        sim.post(alice, text=f"daemon post {number}")
    wait_for(lambda: len(captured(root / "archive", "live")) >= 3, what="3 posts on disk")
    report = status(config)
    entry = next(c for c in report["collections"] if c["name"] == "live")
    assert entry["type"] == "jetstream" and entry["platform"] == "bluesky"
    assert entry["stream"]["connected"] is True and entry["stream"]["messages_last_hour"] >= 3
    assert entry["stream"]["cursor"] == max(line["time_us"] for line in captured(root / "archive", "live"))
    assert entry["stream"]["cursor_lag_seconds"] is not None
    text = cli("--config", str(config), "status").stdout
    assert "live" in text and "jetstream" in text and "connected" in text and "cursor lag" in text

    # a reload that follows bob too reconnects the collection with both DIDs
    document = yaml.safe_load(config.read_text())
    document["collections"][0]["accounts"].append(bob)
    config.write_text(yaml.safe_dump(document))
    before = sim.counters["jetstream_connections"]
    daemon.send_signal(signal.SIGHUP)
    wait_for(lambda: sim.counters["jetstream_connections"] > before and connected(root / "state", "live"),
             timeout=60, what="the reconnect after the reload")
    sim.post(bob, text="bob is followed now")
    wait_for(lambda: any(line["did"] == bob for line in captured(root / "archive", "live")), what="bob's post")

    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    store = StateStore(root / "state")
    assert store.open_files() == []
    assert store.last_stream_event("live")["event"] == "stop"
    lines = captured(root / "archive", "live")
    keys = event_keys(lines)
    assert len(keys) == len(set(keys))
    first = min(line["time_us"] for line in lines)
    sent = {published_key(e) for e in posts_of(sim, alice) + posts_of(sim, bob) if e["time_us"] >= first}
    assert set(keys) == sent


def test_kill_9_mid_capture_and_a_restart_capture_every_event_once(daemon_setup):
    sim, config, root, processes = daemon_setup
    alice = sim.did_of("alice.bsky.test")
    processes.append(first := start_daemon(config, root / "daemon.log"))
    wait_for(lambda: connected(root / "state", "live"), timeout=60, what="the jetstream connected")
    stop_posting = threading.Event()
    first_post: list[int] = []

    def keep_posting() -> None:
        number = 0
        while not stop_posting.wait(0.01):
            sim.post(alice, text=f"steady post {number}")
            number += 1
            if number == 1:
                first_post.append(posts_of(sim, alice)[-1]["time_us"])

    poster = threading.Thread(target=keep_posting, daemon=True)
    poster.start()
    try:
        wait_for(lambda: len(captured(root / "archive", "live")) >= 100, timeout=60, what="100 posts on disk")
        first.kill()  # SIGKILL: no flush, no stop event, a file left open
        first.wait(10)
        on_disk_at_kill = len(captured(root / "archive", "live"))
        processes.append(second := start_daemon(config, root / "daemon.log"))
        wait_for(lambda: connected(root / "state", "live"), timeout=60, what="the restarted jetstream connected")
        wait_for(lambda: len(captured(root / "archive", "live")) >= on_disk_at_kill + 100, timeout=60,
                 what="100 more posts after the restart")
    finally:
        stop_posting.set()
        poster.join(10)
    wanted = {published_key(e) for e in posts_of(sim, alice) if e["time_us"] >= first_post[0]}
    wait_for(lambda: wanted <= set(event_keys(captured(root / "archive", "live"))), timeout=60,
             what="every post on disk")
    second.send_signal(signal.SIGTERM)
    assert second.wait(30) == 0
    keys = event_keys(captured(root / "archive", "live"))
    assert len(keys) == len(set(keys)), "an event was captured twice"
    assert wanted <= set(keys)
    events = [e["event"] for e in StateStore(root / "state").stream_events("live")]
    assert "disconnect" in events[events.index("start", 1) - 2:]  # the dead process's silence is a gap


def test_the_stream_command_runs_a_jetstream_collection_in_the_foreground(make_bsky, tmp_path):
    sim = make_bsky()
    alice = sim.did_of("alice.bsky.test")
    config = write_config(tmp_path, sim, [officials("alice.bsky.test"), jetstream(from_collections=["officials"])])
    env = {key: value for key, value in os.environ.items() if key != "SFM_ARCHIVER_CONFIG"}
    process = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "stream", "live", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for(lambda: connected(tmp_path / "state", "live"), timeout=60, what="the jetstream connected")
        sim.post(alice, text="one")
        sim.post(alice, text="two")
        wait_for(lambda: len(captured(tmp_path / "archive", "live")) >= 2, what="2 posts on disk")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out.startswith("live: ok: 2 messages"), out
