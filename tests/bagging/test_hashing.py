"""Fixity in worker processes: one read for all algorithms, copy while hashing, workers die with us."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sfm_archiver.bagging.hashing import HashPool, HashTask, hash_file


def test_one_read_gives_every_digest_and_copy_matches(tmp_path):
    source = tmp_path / "source.bin"
    data = os.urandom(3 * (1 << 20) + 123)
    source.write_bytes(data)
    copy = tmp_path / "copy.bin"
    result = hash_file(HashTask(str(copy), ("sha256", "sha512", "md5"), source=str(source)))
    assert copy.read_bytes() == data
    assert result.size == len(data)
    for name in ("sha256", "sha512", "md5"):
        assert result.digests[name] == hashlib.new(name, data).hexdigest()
    assert os.stat(copy).st_mtime_ns == os.stat(source).st_mtime_ns


def test_pool_and_inline_agree(tmp_path):
    files = []
    for n in range(5):
        path = tmp_path / f"f{n}"
        path.write_bytes(os.urandom(20_000 * (n + 1)))
        files.append(path)
    tasks = [HashTask(str(p), ("sha256",), size=p.stat().st_size) for p in files]
    seen = []
    with HashPool(2, inline_below=0) as pool:
        pooled = {r.target: r.digests for r in pool.run(tasks, seen.append)}
    inline = {r.target: r.digests for r in HashPool(1).run(tasks)}
    assert pooled == inline and len(seen) == 5


# Keeps both workers busy for two minutes (as a long hash would), then prints their pids.
WORKER_PARENT = """
import os, time
from sfm_archiver.bagging.hashing import HashPool
if __name__ == "__main__":
    pool = HashPool(2, inline_below=0)
    executor = pool._pool()
    for _ in range(2):
        executor.submit(time.sleep, 120)
    while len(executor._processes) < 2:
        time.sleep(0.01)
    print(" ".join(str(pid) for pid in executor._processes), flush=True)
    time.sleep(120)
"""


def test_workers_die_when_the_bagger_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(WORKER_PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not any(_alive(pid) for pid in workers):
            return
        time.sleep(0.05)
    raise AssertionError(f"workers {workers} outlived their parent")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return status != "Z"
