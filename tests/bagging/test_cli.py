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


def test_profiled_bags_through_the_commands(make_env, tmp_path):
    """`bag` with the aptrust profile, `verify` of the tar (0, then 1 on a bad Access), `check-config` (2)."""
    import tarfile

    env = make_env(bagging={"profile": "aptrust", "aptrust": {"institution": "example.edu"}})
    env.fill("gw", days=1)
    done = run(env, "gw", "--json")
    assert done.returncode == 0, done.stderr
    [result] = [json.loads(line) for line in done.stdout.splitlines()]
    assert result["path"].endswith("/example.edu.gw_2024-03-01.tar")
    command = [sys.executable, "-m", "sfm_archiver", "--config", str(env.config_path)]
    ok = subprocess.run([*command, "verify", result["path"]], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr

    with tarfile.open(result["path"]) as tar:
        tar.extractall(tmp_path, filter="data")
    bag = tmp_path / "example.edu.gw_2024-03-01"
    info = bag / "aptrust-info.txt"
    info.write_text(info.read_text().replace("Access: Institution", "Access: Everyone"))
    bad = subprocess.run([*command, "verify", str(bag)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "aptrust-info.txt" in bad.stderr and "'Everyone'" in bad.stderr and "serialized" in bad.stderr

    env.config_path.write_text(env.config_path.read_text().replace("profile: aptrust", "profile: aptrsut"))
    check = subprocess.run([*command, "check-config"], capture_output=True, text=True, timeout=60)
    assert check.returncode == 2 and f"{env.config_path}:" in check.stderr and "'aptrsut'" in check.stderr
