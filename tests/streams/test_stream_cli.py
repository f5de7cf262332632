"""`sfm-archiver stream` as a real process: SIGTERM flushes everything, kill -9 loses at most a batch."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sfm_archiver.state import StateStore
from tests.streams.conftest import captured, wait_for, write_config

SCENARIO = {
    "streams": {"messages_per_second": 200, "keepalive_seconds": 0.1},
    "rate_limits": {"search_stream": 1000, "rules_get": 1000, "rules_post": 1000},
}
FLUSH_SECONDS = 0.1


def _start(config: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "sfm_archiver", "stream", "climate", "--config", str(config), *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _files(archive: Path) -> list[Path]:
    return sorted((archive / "climate").rglob("*.jsonl.gz"))


def _ids(archive: Path) -> set[str] | None:
    try:
        return {line["data"]["id"] for line in captured(archive, "climate") if "data" in line}
    except (OSError, EOFError, ValueError):
        return None


@pytest.fixture
def setup(make_simulator, wire_style, tmp_path):
    sim = make_simulator(**SCENARIO, wire=wire_style)
    config = write_config(tmp_path, sim.base_url, [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate"}]}],
                          storage={"stream_flush_seconds": f"{FLUSH_SECONDS}s"})
    return sim, config, tmp_path / "archive", tmp_path / "state"


def test_sigterm_ends_cleanly_with_everything_written(setup):
    sim, config, archive, state = setup
    process = _start(config)
    try:
        wait_for(lambda: len(list(sim.stream_messages())) > 100, timeout=30, what="messages sent")
        snapshot = time.time()
        due = {m["tweet_id"] for m in sim.stream_messages() if m["sent_at"] < snapshot}
        wait_for(lambda: (_ids(archive) or set()) >= due, what="messages on disk")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert out.startswith("climate: ok: ") and " messages" in out
    for path in _files(archive):
        gzip.decompress(path.read_bytes())  # every file complete without any sealing
    store = StateStore(state)
    assert store.open_files() == []
    assert store.stream_events("climate")[-1]["event"] == "stop"
    run = store.runs(collection="climate")[-1]
    assert run["result"] == "ok" and run["counts"]["messages"] == len(captured(archive, "climate"))


def test_kill_9_loses_at_most_the_batch_in_flight(setup):
    sim, config, archive, state = setup
    process = _start(config)
    try:
        wait_for(lambda: len(list(sim.stream_messages())) > 300 and _files(archive), timeout=30, what="messages")
        killed_at = time.time()
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    first_connection = {m["tweet_id"]: m["sent_at"] for m in sim.stream_messages() if m["connection_id"] == 1}
    store = StateStore(state)
    assert store.open_files("climate"), "the dead process left its file registered as open"

    # the next start seals what the dead process left, then captures on
    rerun = _start(config, "--duration", "0.5")
    out, err = rerun.communicate(timeout=30)
    assert rerun.returncode == 0, err
    assert store.open_files() == []
    for path in _files(archive):
        gzip.decompress(path.read_bytes())  # every file decompresses cleanly
    ids = _ids(archive)
    missing = {i: at for i, at in first_connection.items() if i not in ids}
    assert len(first_connection) - len(missing) > 200
    late = [at for at in missing.values() if at < killed_at - FLUSH_SECONDS - 1.0]
    assert not late, f"{len(late)} messages sent well before the kill were lost"
    events = [e["event"] for e in store.stream_events("climate")]
    assert events[:2] == ["start", "connect"] and events[2:5] == ["disconnect", "stop", "start"]
    assert "ended without stopping" in store.stream_events("climate")[2]["reason"]


def test_unknown_or_non_stream_collection_is_a_usage_error(setup, tmp_path):
    sim, config, archive, state = setup
    done = subprocess.run([sys.executable, "-m", "sfm_archiver", "stream", "nosuch", "--config", str(config)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "no collection named 'nosuch'" in done.stderr
