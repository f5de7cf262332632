"""Free disk space of the archive, state and outbox folders against `disk:` thresholds.

Below `warning_free` status warns; below `min_free` the guard reports "not ok": jobs see it
through `JobContext.disk_ok` and stop writing at their next safe point, and status is critical.
Nothing has to be reset: the check is repeated (cached for a few seconds), so when space comes
back the next scheduled run proceeds by itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sfm_archiver.config import Config

log = logging.getLogger(__name__)

PATH_KEYS = ("archive", "state", "outbox")
OK, WARNING, CRITICAL = "ok", "warning", "critical"


@dataclass(frozen=True)
class PathSpace:
    name: str
    path: Path
    free: int | None
    total: int | None
    level: str
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "path": str(self.path), "free_bytes": self.free, "total_bytes": self.total,
            "level": self.level, "error": self.error,
        }


def free_space(path: Path, statvfs: Callable = os.statvfs) -> tuple[int, int]:
    """(bytes available to this user, total bytes) of the filesystem holding `path`.

    A folder that does not exist yet is measured at its nearest existing parent.
    """
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = statvfs(probe)
    return stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize


def measure(config: Config, statvfs: Callable = os.statvfs) -> list[PathSpace]:
    """The free space of each configured path, with its level against the thresholds."""
    results = []
    for key in PATH_KEYS:
        path = getattr(config.paths, key)
        try:
            free, total = free_space(path, statvfs)
        except OSError as error:
            results.append(PathSpace(key, path, None, None, CRITICAL, f"cannot measure free space: {error}"))
            continue
        results.append(PathSpace(key, path, free, total, level_for(free, config)))
    return results


def level_for(free: int, config: Config) -> str:
    if free < config.disk.min_free:
        return CRITICAL
    if free < config.disk.warning_free:
        return WARNING
    return OK


def report(config: Config, statvfs: Callable = os.statvfs) -> dict:
    """What `status` shows under `disk`: each path, the thresholds and the worst level."""
    spaces = measure(config, statvfs)
    return {
        "level": worst(space.level for space in spaces),
        "warning_free_bytes": config.disk.warning_free,
        "min_free_bytes": config.disk.min_free,
        "paths": {space.name: space.as_dict() for space in spaces},
    }


def worst(levels) -> str:
    order = {OK: 0, WARNING: 1, CRITICAL: 2}
    return max(levels, key=lambda level: order[level], default=OK)


class DiskGuard:
    """`guard.ok()` is what `JobContext.disk_ok` calls: False while any path is below min_free.

    The answer is cached for `ttl` seconds (jobs may ask per batch); transitions are logged once.
    `config` is read through a callable so a reload changes the thresholds at once.
    """

    def __init__(
        self,
        config: Callable[[], Config],
        statvfs: Callable = os.statvfs,
        ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self._config = config
        self._statvfs = statvfs
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._ok = True
        self._low: list[PathSpace] = []

    def ok(self) -> bool:
        with self._lock:
            now = self._monotonic()
            if self._checked_at is None or now - self._checked_at >= self._ttl:
                self._refresh()
                self._checked_at = now
            return self._ok

    def low_paths(self) -> list[PathSpace]:
        """The paths below min_free at the last check."""
        self.ok()
        return list(self._low)

    def _refresh(self) -> None:
        low = [space for space in measure(self._config(), self._statvfs) if space.level == CRITICAL]
        ok = not low
        if ok != self._ok:
            if ok:
                log.warning("disk space is back above disk.min_free: writing resumes")
            else:
                where = ", ".join(f"{s.name} {s.path} ({human_size(s.free)} free)" for s in low)
                log.error("free disk space below disk.min_free at %s: harvesting pauses until space returns", where)
        self._ok, self._low = ok, low


def human_size(size: int | None) -> str:
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"

