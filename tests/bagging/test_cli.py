"""`sfm-archiver bag` through the real entry point: output and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.bagging.conftest import assert_each_capture_once


def run(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sfm_archiver", "--config", str(env.config_path), "bag", *args],
        capture_output=True, text=True, timeout=60,
    )


def test_bag_command_dry_run_then_bag(env):
    env.fill("gw", days=2)
    dry = run(env, "--dry-run", "--before", "2024-03-02T00:00:00Z")
    assert dry.returncode == 0, dry.stderr
    [line] = dry.stdout.splitlines()
    assert line.startswith("would bag gw_2024-03-01: 2 files, ")
    assert not (env.outbox / "gw_2024-03-01").exists()
    done = run(env, "gw", "--json")
    assert done.returncode == 0, done.stderr
    results = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["name"], r["status"]) for r in results] == [("gw_2024-03-01", "bagged"), ("gw_2024-03-02", "bagged")]
    assert_each_capture_once(env)
    again = run(env)
    assert again.returncode == 0 and again.stdout.strip() == "nothing to bag"


def test_bag_command_usage_errors_exit_2(env):
    bad_time = run(env, "--before", "yesterday-ish")
    assert bad_time.returncode == 2 and "--before" in bad_time.stderr
    unknown = run(env, "nosuch")
    assert unknown.returncode == 2 and "nosuch" in unknown.stderr
