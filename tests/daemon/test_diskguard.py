"""The disk guard against the real free space of tmp_path, with thresholds placed around it."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from sfm_archiver.config import Config, Disk, Paths
from sfm_archiver.diskguard import CRITICAL, OK, WARNING, DiskGuard, free_space, report

TB = 10**12


def _config(root: Path, warning_free: int, min_free: int) -> Config:
    paths = Paths(archive=root / "archive", state=root / "state", outbox=root / "outbox")
    return Config(source=root / "config.yaml", paths=paths, disk=Disk(warning_free=warning_free, min_free=min_free))


def test_levels_follow_the_thresholds(tmp_path):
    free, _total = free_space(tmp_path)
    assert report(_config(tmp_path, 0, 0))["level"] == OK
    assert report(_config(tmp_path, free + TB, 0))["level"] == WARNING
    critical = report(_config(tmp_path, free + 2 * TB, free + TB))
    assert critical["level"] == CRITICAL
    assert set(critical["paths"]) == {"archive", "state", "outbox"}
    assert critical["paths"]["archive"]["free_bytes"] > 0


def test_a_missing_folder_is_measured_at_its_parent(tmp_path):
    assert free_space(tmp_path / "not" / "yet") == free_space(tmp_path)


def test_guard_pauses_below_min_free_and_resumes_by_itself(tmp_path):
    free, _ = free_space(tmp_path)
    current = {"config": _config(tmp_path, free + 2 * TB, free + TB)}
    ticks = iter(range(0, 1000, 10))
    guard = DiskGuard(lambda: current["config"], ttl=5, monotonic=lambda: next(ticks))
    assert guard.ok() is False
    assert [space.name for space in guard.low_paths()] == ["archive", "state", "outbox"]
    current["config"] = replace(current["config"], disk=Disk(warning_free=0, min_free=0))  # space "returns"
    assert guard.ok() is True
    assert guard.low_paths() == []


def test_an_unmeasurable_path_is_critical(tmp_path):
    def failing_statvfs(path):
        raise PermissionError(13, "Permission denied", os.fspath(path))

    result = report(_config(tmp_path, 0, 0), statvfs=failing_statvfs)
    assert result["level"] == CRITICAL
    assert "Permission denied" in result["paths"]["state"]["error"]
