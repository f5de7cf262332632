"""kill -9 of a real `sfm-archiver bag` process at named steps and at random moments.

After each kill, a second `bag` run (which recovers first; run in this process to keep the
test fast) must leave every capture file in exactly one place, every bag in the outbox valid,
and `.staging` empty; and at the moment of the kill, anything visible in the outbox must
already be a whole, valid bag.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import bagit

from sfm_archiver.bagging import bag_completed_periods, verify_paths
from sfm_archiver.bagging.pausepoints import PAUSE_ENV
from tests.bagging.conftest import DAY1, BagEnv, assert_each_capture_once, staging_entries, write_config

TAR = {"serialization": "tar", "ready_marker": True}
# (pause point, bagging options); then random-time kills, and kills during recovery itself.
NAMED = [
    ("intent", {}),
    ("move#3", {}),
    ("provenance", {}),
    ("hash#5", {}),
    ("tagfiles", {}),
    ("validated", {}),
    ("before_rename", {}),
    ("after_rename", {}),
    ("cleanup", {"ready_marker": True}),
    ("done", {}),
    ("move#2", TAR),
    ("tar", TAR),
    ("before_rename", TAR),
    ("after_rename", TAR),
    ("move#4", {"copy": True}),
    ("after_rename", {"copy": True}),
]
RANDOM_TRIALS = 4
APTRUST = {"profile": "aptrust", "aptrust": {"institution": "example.edu"}, "ready_marker": True}
ARCHIVEMATICA = {"profile": "archivematica"}
BTR = {"profile": "btr", "serialization": "tar"}
EVERY_STEP = ("intent", "move#3", "provenance", "hash#5", "tagfiles", "validated", "fsynced", "tar",
              "before_rename", "after_rename", "cleanup", "done")
PROFILED = (
    [(step, APTRUST) for step in EVERY_STEP]
    + [(step, ARCHIVEMATICA) for step in ("hash#2", "tagfiles", "validated", "tar", "before_rename", "after_rename", "cleanup")]
    + [(step, BTR) for step in ("tagfiles", "validated", "tar", "after_rename")]
)
TIMEOUT = 60


def start_bag(config: Path, pause: str | None) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != PAUSE_ENV}
    if pause:
        environ[PAUSE_ENV] = pause
    return subprocess.Popen(
        [sys.executable, "-m", "sfm_archiver", "--config", str(config), "bag"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environ,
    )


def wait_for_line(process: subprocess.Popen, needle: bytes, deadline: float) -> bool:
    """Read stderr until a line holds `needle`; False when the process ended first."""
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 0.1)
        if ready:
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                return False
            buffer += chunk
            if needle in buffer:
                return True
        elif process.poll() is not None:
            return False
    raise AssertionError(f"no {needle!r} within the deadline; stderr so far: {buffer[-2000:]!r}")


def kill9(process: subprocess.Popen) -> None:
    try:
        process.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=TIMEOUT)
    process.stderr.close()


def visible_bags(outbox: Path) -> list[Path]:
    if not outbox.exists():
        return []
    return sorted(p for p in outbox.iterdir() if not p.name.startswith(".") and not p.name.endswith(".ready"))


def assert_visible_bags_whole(outbox: Path) -> None:
    for bag in visible_bags(outbox):
        if bag.is_dir():
            assert bagit.Bag(str(bag)).is_valid(), f"partial bag visible: {bag}"
        assert verify_paths([bag], workers=1) == [], f"partial bag visible: {bag}"


def make_trial(root: Path, options: dict, seed: int) -> BagEnv:
    root.mkdir(parents=True)
    outbox = None
    if options.get("copy"):
        outbox = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="sfm-kill9-")) / "outbox"
    env = BagEnv(root, write_config(root, bagging=options, outbox=outbox), outbox_path=outbox)
    env.rng.seed(seed)
    text = env.config_path.read_text().replace("log_level: WARNING", "log_level: INFO")
    env.config_path.write_text(text)
    env.fill("gw", days=2, hours=(1, 9, 17), per_hour=2, lines=100, noise=400)
    return env


def run_trial(root: Path, pause: str | None, options: dict, seed: int, recovery_pause: str | None = None) -> str:
    env = make_trial(root, options, seed)
    try:
        deadline = time.monotonic() + TIMEOUT
        first = start_bag(env.config_path, pause)
        if pause:
            assert wait_for_line(first, b"paused at", deadline), f"{pause}: ended without pausing"
        else:
            wait_for_line(first, b"run started", deadline)
            time.sleep(random.Random(seed).uniform(0, 0.12))  # the random kill moment itself
        kill9(first)
        assert_visible_bags_whole(env.outbox)
        if recovery_pause:
            second = start_bag(env.config_path, recovery_pause)
            wait_for_line(second, b"paused at", deadline)
            kill9(second)
            assert_visible_bags_whole(env.outbox)
        results = bag_completed_periods(env.context(), pause=lambda step: None)
        assert all(r["status"] == "bagged" for r in results), results
        assert_each_capture_once(env)
        assert list(env.archive.rglob("*.gz")) == [], "every period is bagged after the second run"
        assert staging_entries(env) == []
        bags = visible_bags(env.outbox)
        assert [b.name for b in bags] == [outbox_name(f"gw_2024-03-0{day}", options) for day in (1, 2)]
        for bag in bags:
            if bag.is_dir():
                assert bagit.Bag(str(bag)).is_valid()
        assert verify_paths(bags, workers=1) == []
        if options.get("ready_marker"):
            assert all((env.outbox / f"{b.name.removesuffix('.gz').removesuffix('.tar')}.ready").exists() for b in bags)
        return f"{pause or 'random'}: ok"
    finally:
        if options.get("copy"):
            import shutil

            shutil.rmtree(env.outbox.parent, ignore_errors=True)


def outbox_name(bag: str, options: dict) -> str:
    """The documented outbox names: APTrust `<institution>.<bag>.tar`, Archivematica `<bag>.tar.gz`."""
    if options.get("profile") == "aptrust":
        return f"{options['aptrust']['institution']}.{bag}.tar"
    if options.get("profile") == "archivematica":
        return f"{bag}.tar.gz"
    return f"{bag}.tar" if options.get("serialization") == "tar" else bag


def run_trials(tmp_path: Path, trials: list) -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {
            name: pool.submit(run_trial, tmp_path / name, pause, options, seed, recovery)
            for name, pause, options, seed, recovery in trials
        }
        failures = {}
        for name, future in futures.items():
            try:
                future.result()
            except Exception as error:  # collect every failing trial, not just the first
                failures[name] = error
    assert not failures, "\n".join(f"{name}: {error}" for name, error in failures.items())


def test_kill9_during_profiled_bags_leaves_no_half_bag(tmp_path):
    """Every pause point of an APTrust bag (renamed, md5, aptrust-info.txt, tar), the serialization
    steps of Archivematica's .tar.gz, and the tag steps of BTR: whole and valid for its profile, or absent."""
    trials = [(f"profiled-{i}", pause, options, 300 + i, None) for i, (pause, options) in enumerate(PROFILED)]
    trials.append(("profiled-recovery", "tar", ARCHIVEMATICA, 400, "rollback#1"))
    run_trials(tmp_path, trials)


def test_kill9_at_every_step_and_at_random_moments(tmp_path):
    rng = random.Random(20261127)
    trials = [(f"named-{i}", pause, options, i, None) for i, (pause, options) in enumerate(NAMED)]
    for i in range(RANDOM_TRIALS):
        options = rng.choice([{}, TAR, {"ready_marker": True}])
        trials.append((f"random-{i}", None, options, 100 + i, None))
    trials.append(("recovery-1", "move#5", {}, 200, "rollback#2"))
    trials.append(("recovery-2", "hash#3", TAR, 201, "rollback#1"))
    assert len(trials) >= 20
    run_trials(tmp_path, trials)


def test_pause_points_stop_exactly_where_named(tmp_path):
    """The harness itself: a paused process holds files in staging and nothing in the outbox."""
    env = make_trial(tmp_path / "t", {}, 1)
    process = start_bag(env.config_path, "hash#2")
    try:
        assert wait_for_line(process, b"paused at hash#2", time.monotonic() + TIMEOUT)
        staged = list((env.outbox / ".staging").rglob("*.gz"))
        assert len(staged) == 6 and visible_bags(env.outbox) == []
    finally:
        kill9(process)
    assert DAY1 + timedelta(days=1)  # fixture days exist
