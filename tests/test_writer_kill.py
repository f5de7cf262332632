"""kill -9 a real writer process at random moments; nothing acknowledged may be lost, and every
file must decompress cleanly (with Python's gzip and with zcat) once sealed."""

from __future__ import annotations

import gzip
import json
import os
import random
import select
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sfm_archiver.state import StateStore
from sfm_archiver.storage.writer import CaptureWriter, seal_abandoned_files

TRIALS = 30


def write_until_killed(archive: Path, state: Path, seed: int, report_fd: int) -> None:
    """The writer process: batches of random size (a few bytes to ~2 MB, so some kills land
    inside a write()), a clock that moves 7 minutes per batch so files rotate and new ones are
    created and registered while kills happen. Reports each batch id once write_batch returned."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)
    batch = 0
    writer = CaptureWriter(
        archive, "killed", "stream", clock=lambda: start + timedelta(minutes=7 * batch),
        registry=StateStore(state), rotation=timedelta(minutes=10), compresslevel=1,
    )
    os.write(report_fd, b"ready\n")
    while True:
        count = rng.randint(1, 40)
        big = rng.random() < 0.2
        lines = []
        for index in range(count):
            pad = os.urandom(rng.randint(20_000, 30_000) if big else rng.randint(0, 300)).hex().encode()
            lines.append(b'{"batch":%d,"line":%d,"of":%d,"pad":"%s"}\n' % (batch, index, count, pad))
        writer.write_batch(lines)
        os.write(report_fd, b"%d\n" % batch)
        batch += 1


def run_and_kill(archive: Path, state: Path, seed: int, kill_after: float) -> list[str]:
    """Fork a writer process, let it write for `kill_after` seconds once ready, SIGKILL it, reap
    it, and return every complete line it reported."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the writer process: it only ever ends by SIGKILL
        try:
            os.close(read_fd)
            write_until_killed(archive, state, seed, write_fd)
        finally:
            os._exit(70)
    os.close(write_fd)
    output = b""
    try:
        deadline = time.monotonic() + 30
        while b"ready\n" not in output:
            assert time.monotonic() < deadline, "the writer process did not start"
            readable, _, _ = select.select([read_fd], [], [], 1)
            if readable:
                chunk = os.read(read_fd, 65536)
                assert chunk, "the writer process ended before it was ready"
                output += chunk
        time.sleep(kill_after)  # the random kill moment, not a wait for a condition
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)  # reaped: its pid is now dead, not a zombie
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"writer ended with status {status}"
        while chunk := os.read(read_fd, 65536):
            output += chunk
    finally:
        os.close(read_fd)
    text = output.decode()
    return text[: text.rfind("\n") + 1].splitlines()[1:]


def test_kill_9_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(20261127)
    reported_total, sealed_bytes, trials_with_data = 0, 0, 0
    for trial in range(TRIALS):
        archive, state = tmp_path / f"t{trial}" / "archive", tmp_path / f"t{trial}" / "state"
        printed = run_and_kill(archive, state, trial, rng.uniform(0.0, 0.15))
        durable = {int(text) for text in printed}

        store = StateStore(state)
        try:
            sealed_bytes += sum(removed for _, removed in seal_abandoned_files(store))
            assert store.open_files() == []
        finally:
            store.close()

        lines_per_batch: Counter = Counter()
        expected_per_batch: dict[int, int] = {}
        for path in sorted(archive.rglob("*.jsonl.gz")):
            content = gzip.decompress(path.read_bytes())
            zcat = subprocess.run(["zcat", str(path)], capture_output=True, timeout=60)
            assert zcat.returncode == 0, f"trial {trial}: zcat {path}: {zcat.stderr.decode()}"
            assert zcat.stdout == content
            assert content.endswith(b"\n"), f"trial {trial}: {path} ends inside a line"
            for raw in content.splitlines():
                record = json.loads(raw)
                lines_per_batch[record["batch"]] += 1
                expected_per_batch[record["batch"]] = record["of"]

        missing = sorted(durable - set(lines_per_batch))
        assert missing == [], f"trial {trial}: batches reported durable but missing: {missing}"
        partial = {b: n for b, n in lines_per_batch.items() if n != expected_per_batch[b]}
        assert partial == {}, f"trial {trial}: batches present only in part: {partial}"
        present = sorted(lines_per_batch)
        assert present == list(range(len(present))), f"trial {trial}: a gap in the batches written: {present}"
        assert len(present) - len(durable) <= 1, "at most the batch in flight is present but unacknowledged"
        reported_total += len(durable)
        trials_with_data += bool(durable)

    assert trials_with_data >= TRIALS // 2, "the kills came too early to test anything"
    print(f"{TRIALS} kills, {reported_total} acknowledged batches all present, {sealed_bytes} torn bytes sealed")
