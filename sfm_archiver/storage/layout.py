"""Where captures live: hour folders by UTC capture time, file names, and bagging periods.

Contract (DESIGN.md section 4):
`<archive>/<collection>/<YYYY>/<MM>/<DD>/<HH>/<collection>-<kind>-<YYYYMMDDTHHMMSSZ>[-<n>].<ext>`
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# Stream messages that belong to no collection being captured are kept under this name, which no
# configured collection can have (collection names start with a letter or digit).
UNROUTED = "_unrouted"
ARCHIVE_NAME = re.compile(r"^(?:_unrouted|[a-z0-9][a-z0-9_-]*)$")  # a collection, or UNROUTED
KINDS = ("timeline", "users", "stream", "urls")
PERIOD_UNITS = ("hour", "day", "month")
_CAPTURE_NAME = re.compile(
    r"^(?P<collection>_unrouted|[a-z0-9][a-z0-9_-]*)-(?P<kind>timeline|users|stream|urls)-"
    r"(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<n>\d+))?\.(?P<ext>jsonl\.gz|warc\.gz)$"
)


def check_collection_name(name: str) -> str:
    """Refuse names that could escape the archive folder or break bag names (UNROUTED is one)."""
    if not ARCHIVE_NAME.match(name or "") or len(name) > 64:
        raise ValueError(
            f"invalid collection name {name!r}: use 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit"
        )
    return name


def hour_folder(archive_root: Path, collection: str, moment: datetime) -> Path:
    """The folder holding captures made during the UTC hour of `moment`."""
    moment = moment.astimezone(timezone.utc)
    return Path(archive_root) / check_collection_name(collection) / moment.strftime("%Y/%m/%d/%H")


def capture_name(collection: str, kind: str, opened_at: datetime, n: int = 0, ext: str = "jsonl.gz") -> str:
    stamp = opened_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    suffix = f"-{n}" if n else ""
    return f"{collection}-{kind}-{stamp}{suffix}.{ext}"


def parse_capture_name(name: str) -> dict | None:
    """Split a capture file name into its parts, or None if it is not one of ours."""
    match = _CAPTURE_NAME.match(name)
    if not match:
        return None
    parts = match.groupdict()
    parts["n"] = int(parts["n"] or 0)
    parts["opened_at"] = datetime.strptime(parts["stamp"], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    return parts


def unused_capture_path(folder: Path, collection: str, kind: str, opened_at: datetime, ext: str = "jsonl.gz") -> Path:
    """The first `-n` variant of the name that does not exist yet (a file is never reopened)."""
    n = 0
    while True:
        candidate = Path(folder) / capture_name(collection, kind, opened_at, n, ext)
        if not candidate.exists():
            return candidate
        n += 1


@dataclass(frozen=True, order=True)
class Period:
    """A bagging period of one collection: an hour, a day or a month, in UTC."""

    start: datetime
    unit: str

    @property
    def end(self) -> datetime:
        if self.unit == "hour":
            return self.start + timedelta(hours=1)
        if self.unit == "day":
            return self.start + timedelta(days=1)
        year, month = (self.start.year + 1, 1) if self.start.month == 12 else (self.start.year, self.start.month + 1)
        return self.start.replace(year=year, month=month)

    @property
    def label(self) -> str:
        """Bag label: `2026-11-27T13`, `2026-11-27` or `2026-11`."""
        return self.start.strftime({"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}[self.unit])

    @property
    def relative_folder(self) -> Path:
        """The folder under `<archive>/<collection>/` holding exactly this period's files."""
        return Path(self.start.strftime({"hour": "%Y/%m/%d/%H", "day": "%Y/%m/%d", "month": "%Y/%m"}[self.unit]))

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def period_of(moment: datetime, unit: str) -> Period:
    """The period of kind `unit` that contains `moment`."""
    moment = moment.astimezone(timezone.utc)
    if unit == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
    elif unit == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        raise ValueError(f"unknown period {unit!r}: use one of {', '.join(PERIOD_UNITS)}")
    return Period(start, unit)


def hour_of_folder(collection_root: Path, folder: Path) -> datetime | None:
    """The UTC hour a `YYYY/MM/DD/HH` folder under a collection stands for, or None."""
    try:
        parts = Path(folder).relative_to(collection_root).parts
    except ValueError:
        return None
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        return None
    try:
        year, month, day, hour = (int(p) for p in parts)
        return datetime(year, month, day, hour, tzinfo=timezone.utc)
    except ValueError:
        return None


def hour_folders(collection_root: Path) -> list[Path]:
    """Every well-formed `YYYY/MM/DD/HH` folder under a collection, oldest first.

    Symlinked folders are not followed: the archive must not reach outside itself.
    """
    found = []
    root = Path(collection_root)
    if not root.is_dir():
        return found
    for year in sorted(_real_subdirs(root)):
        for month in sorted(_real_subdirs(year)):
            for day in sorted(_real_subdirs(month)):
                for hour in sorted(_real_subdirs(day)):
                    if hour_of_folder(root, hour) is not None:
                        found.append(hour)
    return found


def _real_subdirs(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink() and p.name.isdigit()]
