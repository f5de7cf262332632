"""What the report shows, as plain series, read from the state store and the ledger.

Every series is an aggregate computed by SQLite (GROUP BY day or hour over indexed columns),
so a year of runs at 10,000 accounts reads in well under a second; capture files are never
opened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sfm_archiver import diskguard
from sfm_archiver.config import Config
from sfm_archiver.ledger import LEDGER_FILE
from sfm_archiver.notify import growth
from sfm_archiver.notify.store import NotifyStore, iso
from sfm_archiver.state import StateStore
from sfm_archiver.streams import gaps
from sfm_archiver.timeutil import parse_timestamp

LIFECYCLE = ("renamed", "protected", "unprotected", "suspended", "unsuspended", "deactivated", "reactivated",
             "username_reassigned", "added", "removed", "paused", "resumed")


@dataclass
class ReportData:
    start: datetime
    end: datetime
    posts_per_day: dict[str, dict[str, int]] = field(default_factory=dict)        # collection -> day -> posts
    messages_per_hour: dict[str, dict[str, int]] = field(default_factory=dict)    # collection -> hour -> messages
    down_intervals: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    lifecycle: list[tuple[datetime, str, str]] = field(default_factory=list)      # (at, event, account id)
    bags_per_day: dict[str, tuple[int, int]] = field(default_factory=dict)        # day -> (bags, bytes)
    disk: dict[str, list[tuple[datetime, int]]] = field(default_factory=dict)     # path name -> samples
    disk_now: list[diskguard.PathSpace] = field(default_factory=list)
    rate_limits: list[dict] = field(default_factory=list)
    collections: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)


def gather(store: StateStore, config: Config, start: datetime, end: datetime, spaces: list[diskguard.PathSpace]) -> ReportData:
    data = ReportData(start, end, disk_now=spaces)
    db = store.db
    for row in db.execute(
        "SELECT collection, substr(started_at, 1, 10) AS day, SUM(json_extract(counts, '$.posts')) AS n FROM runs "
        "WHERE job = 'user_timeline' AND started_at >= ? AND started_at < ? GROUP BY collection, day",
        (iso(start), iso(end)),
    ):
        data.posts_per_day.setdefault(row["collection"], {})[row["day"]] = int(row["n"] or 0)
    streams = [c.name for c in config.collections_of_type("filter_stream", "sample_stream")]
    for name in streams:
        rows = db.execute(
            "SELECT substr(minute, 1, 13) AS hour, SUM(messages) AS n FROM stream_counts WHERE collection = ? "
            "AND minute >= ? AND minute < ? GROUP BY hour", (name, iso(start), iso(end)),
        )
        data.messages_per_hour[name] = {row["hour"]: int(row["n"]) for row in rows}
        data.down_intervals[name] = down_intervals(store, name, start, end)
    for row in db.execute(
        "SELECT substr(COALESCE(handoff_at, finished_at), 1, 10) AS day, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes "
        "FROM bags WHERE state = 'done' AND COALESCE(handoff_at, finished_at) >= ? GROUP BY day", (iso(start),),
    ):
        data.bags_per_day[row["day"]] = (row["n"], row["bytes"])
    data.lifecycle = lifecycle_events(config.paths.state, start)
    data.disk = growth.samples_by_path(NotifyStore(store).disk_samples(start))
    data.rate_limits = store.rate_limits()
    data.collections = collection_rows(store, config)
    data.alerts = [row for row in NotifyStore(store).alert_history(start)]
    return data


def down_intervals(store: StateStore, stream: str, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The [from, to) spans a stream meant to capture but was not connected (as status reads events)."""
    return gaps.stored_intervals(store, stream, start, end) or []


def lifecycle_events(state_dir: Path, since: datetime) -> list[tuple[datetime, str, str]]:
    """(time, event, account id) of ledger events since `since` (a cheap scan of one JSON-lines file)."""
    import json

    path = Path(state_dir) / LEDGER_FILE
    cutoff = since.strftime("%Y-%m-%dT%H:%M:%S")
    found = []
    try:
        with open(path, "rb") as handle:
            for line in handle:
                if line.endswith(b"\n"):
                    record = json.loads(line)
                    if record.get("at", "") >= cutoff:
                        found.append((parse_timestamp(record["at"]), record["event"], str(record.get("account_id"))))
    except FileNotFoundError:
        pass
    return found


def lifecycle_counts(events: list[tuple[datetime, str, str]]) -> Counter:
    return Counter(event for _, event, _ in events)


def collection_rows(store: StateStore, config: Config) -> list[dict]:
    from sfm_archiver.status import MAIN_JOB

    rows = []
    for collection in config.collections:
        run = store.last_run(collection.name, MAIN_JOB[collection.type], finished_only=True)
        rows.append({
            "name": collection.name, "type": collection.type,
            "schedule": collection.schedule.text if collection.schedule else ("continuous" if collection.type != "timeline" else "off"),
            "last_run": run["started_at"] if run else None, "result": run["result"] if run else None,
        })
    return rows


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    return now - timedelta(days=days), now
