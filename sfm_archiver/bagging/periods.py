"""Which periods of a collection exist on disk, and which of them may be bagged now.

Periods are found from the hour folders under `<archive>/<collection>/` (so files placed by
`organize` count), plus, when empty periods are bagged, from the collection's recorded runs:
a period in which the collection ran but captured nothing. Only listing and `stat` are used,
never file contents, so `status` can call this cheaply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sfm_archiver.bagging.intent import SUFFIXES, strip_suffix
from sfm_archiver.bagging.provenance import BAG_JOB
from sfm_archiver.state import StateStore
from sfm_archiver.storage import layout
from sfm_archiver.storage.layout import Period

READY = "ready"
UNSAFE_NAME_CHARS = ("%", "\r", "\n")


@dataclass
class PeriodState:
    """One period of one collection and whether it may be bagged (`status == "ready"`)."""

    collection: str
    period: Period
    files: list[str] = field(default_factory=list)
    bytes: int = 0
    status: str = READY
    reason: str = ""
    folders: list[str] = field(default_factory=list)
    skipped_names: list[str] = field(default_factory=list)
    ran: bool = False

    @property
    def name(self) -> str:
        return bag_name(self.collection, self.period)

    def as_dict(self) -> dict:
        return {
            "collection": self.collection,
            "name": self.name,
            "label": self.period.label,
            "period_start": self.period.start.isoformat(),
            "period_end": self.period.end.isoformat(),
            "files": len(self.files),
            "bytes": self.bytes,
            "status": self.status,
            "reason": self.reason,
        }


def bag_name(collection: str, period: Period) -> str:
    """`<collection>_<label>`: the label never holds `_`, so the collection can be read back."""
    return f"{collection}_{period.label}"


def split_bag_name(name: str) -> tuple[str, str] | None:
    """(collection, label) of a bag name (also with `.tar` or `.tar.gz`), or None when it is not one."""
    stem = strip_suffix(name)
    collection, sep, label = stem.rpartition("_")
    if not sep or not layout.ARCHIVE_NAME.match(collection) or not label[:4].isdigit():
        return None
    return collection, label


def outbox_items(outbox: Path, name: str, also: tuple[Path, ...] = ()) -> list[Path]:
    """The outbox entries that would hold (or block) a bag of this name (`also`: its profile's name)."""
    candidates = [outbox / f"{name}{suffix}" for suffix in SUFFIXES.values()] + list(also)
    return [p for p in dict.fromkeys(candidates) if os.path.lexists(p)]


def folders_by_period(root: Path, unit: str) -> dict[Period, list[Path]]:
    """The hour folders under a collection's root, grouped by the bag period they belong to."""
    grouped: dict[Period, list[Path]] = {}
    for folder in layout.hour_folders(root):
        grouped.setdefault(layout.period_of(layout.hour_of_folder(root, folder), unit), []).append(folder)
    return grouped


def payload_files(folder: Path) -> tuple[list[Path], list[str]]:
    """Capture files of an hour folder (regular `*.gz` files), and the names left out."""
    files, skipped = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        if not entry.is_file(follow_symlinks=False) or not entry.name.endswith(".gz"):
            skipped.append(entry.name)
            continue
        if any(ch in entry.name for ch in UNSAFE_NAME_CHARS):
            skipped.append(entry.name)
            continue
        files.append(Path(entry.path))
    return files, skipped


def discover(
    archive: Path,
    outbox: Path,
    store: StateStore,
    collection: str,
    unit: str,
    now: datetime,
    grace: timedelta,
    before: datetime | None = None,
    empty_periods: bool = True,
) -> list[PeriodState]:
    """Every period of `collection` with files or (for empty periods) runs, oldest first.

    A period is `ready` when its end is at or before `before` (default and upper bound:
    now minus grace), no writer holds a file in it, and no bag of its name exists.
    """
    root = Path(archive) / collection
    cutoff = now - grace if before is None else min(before, now - grace)
    periods: dict[Period, PeriodState] = {}
    for period, folders in folders_by_period(root, unit).items():
        state = periods.setdefault(period, PeriodState(collection, period))
        for folder in folders:
            state.folders.append(folder.relative_to(root).as_posix())
            files, skipped = payload_files(folder)
            for path in files:
                state.files.append(path.relative_to(root).as_posix())
                state.bytes += path.stat().st_size
            state.skipped_names.extend(f"{folder.relative_to(root).as_posix()}/{n}" for n in skipped)
    bags = {bag["name"]: bag for bag in store.bags(collection=collection)}
    if empty_periods:
        for period in _periods_with_runs(store, collection, unit, bags, cutoff):
            periods.setdefault(period, PeriodState(collection, period)).ran = True
    blocked = _periods_with_open_files(store, root, collection, unit)
    found = []
    for period in sorted(periods):
        state = periods[period]
        if not state.files and not (empty_periods and state.ran):
            continue
        _classify(state, now, grace, cutoff, blocked, bags.get(state.name), outbox)
        if state.status == "bagged":
            continue
        found.append(state)
    return found


def _classify(state: PeriodState, now, grace, cutoff, blocked, record: dict | None, outbox: Path) -> None:
    period = state.period
    if now < period.end:
        state.status, state.reason = "open", "the period has not ended"
    elif period.end + grace > now:
        state.status, state.reason = "grace", f"inside the grace time until {(period.end + grace).isoformat()}"
    elif period.end > cutoff:
        state.status, state.reason = "later", "ends after --before"
    elif period in blocked:
        state.status, state.reason = "writer", f"a writer still holds {blocked[period]}"
    elif record is not None and record["state"] == "done":
        if state.files:
            state.status = "conflict"
            state.reason = f"already bagged as {state.name}; {len(state.files)} files appeared in the archive afterwards"
        else:
            state.status = "bagged"
    elif record is not None:
        state.status, state.reason = "unfinished", f"bag {state.name} is {record['state']} (being built or awaiting recovery)"
    elif outbox_items(outbox, state.name):
        state.status = "exists"
        state.reason = f"{outbox_items(outbox, state.name)[0]} exists and is never overwritten"


def _periods_with_runs(store: StateStore, collection: str, unit: str, bags: dict, cutoff: datetime) -> set[Period]:
    """Periods in which the collection ran, since the end of its latest bag (for empty bags)."""
    ends = [datetime.fromisoformat(b["period_end"]) for b in bags.values() if b["state"] == "done"]
    since = max(ends) if ends else None
    found = set()
    for run in store.runs(collection=collection, start=since, end=cutoff):
        if run["job"] == BAG_JOB or run["result"] == "skipped":
            continue
        found.add(layout.period_of(datetime.fromisoformat(run["started_at"]), unit))
    return found


def _periods_with_open_files(store: StateStore, root: Path, collection: str, unit: str) -> dict[Period, str]:
    blocked = {}
    root = root.resolve()
    for entry in store.open_files(collection):
        hour = layout.hour_of_folder(root, Path(entry["path"]).resolve().parent)
        if hour is not None:
            blocked[layout.period_of(hour, unit)] = entry["path"]
    return blocked
