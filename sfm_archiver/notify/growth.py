"""How fast free disk space shrinks, and when it runs out at that pace (digest and report)."""

from __future__ import annotations

from datetime import datetime

from sfm_archiver.timeutil import parse_timestamp


def shrink_per_day(samples: list[tuple[datetime, int]]) -> float | None:
    """Bytes of free space lost per day: the least-squares slope of free space over time.

    None with fewer than two samples a few minutes apart; 0 or less means not shrinking.
    """
    if len(samples) < 2:
        return None
    origin = samples[0][0]
    xs = [(at - origin).total_seconds() / 86400 for at, _ in samples]
    ys = [float(free) for _, free in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if max(xs) - min(xs) < 600 / 86400:  # all samples within minutes: no trend yet
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return -slope


def days_left(free: int | None, per_day: float | None) -> float | None:
    """Days until `free` reaches zero at `per_day`; None when unknown or not shrinking."""
    if free is None or per_day is None or per_day <= 0:
        return None
    return free / per_day


def samples_by_path(rows: list[dict]) -> dict[str, list[tuple[datetime, int]]]:
    found: dict[str, list[tuple[datetime, int]]] = {}
    for row in rows:
        found.setdefault(row["path"], []).append((parse_timestamp(row["at"]), int(row["free"])))
    return found
