"""The digest: what SFM's weekly e-mail told, and what it did not (uptime, days of disk left).

Per collection: on or off, last and next run, items (posts of timelines, messages of streams)
yesterday vs the day before, the last 7 days vs the 7 before, the last 30 vs the 30 before
(whole UTC days ending at today's midnight), and stream uptime over the last 7 days. Then the
account lifecycle events and bags handed off in the digest's period, free disk and days left at
the recent pace, and every alert still active. Sent at `notify.digest_at` (UTC): daily, on
Mondays (weekly) or on the 1st (monthly).
"""

from __future__ import annotations

import html
from collections import Counter
from datetime import datetime, timedelta, timezone

from sfm_archiver import diskguard
from sfm_archiver.config import Config
from sfm_archiver.ledger import Ledger
from sfm_archiver.notify import growth
from sfm_archiver.notify.store import NotifyStore
from sfm_archiver.state import StateStore
from sfm_archiver.status import MAIN_JOB
from sfm_archiver.streams.gaps import stored_disconnected_seconds

PERIOD_DAYS = {"daily": 1, "weekly": 7, "monthly": 30, "off": 7}
WINDOWS = (("yesterday", 1), ("7 days", 7), ("30 days", 30))
UPTIME_DAYS = 7


def next_digest_time(after: datetime, digest: str, digest_at: str) -> datetime | None:
    """The first digest time strictly after `after` (None when digests are off)."""
    if digest == "off":
        return None
    hour, minute = (int(part) for part in digest_at.split(":"))
    day = after.astimezone(timezone.utc).replace(hour=hour, minute=minute, second=0, microsecond=0)
    while day <= after or not _digest_day(day, digest):
        day += timedelta(days=1)
    return day


def _digest_day(day: datetime, digest: str) -> bool:
    return digest == "daily" or (digest == "weekly" and day.weekday() == 0) or (digest == "monthly" and day.day == 1)


def windows(now: datetime) -> dict[str, tuple[tuple[datetime, datetime], tuple[datetime, datetime]]]:
    """Each comparison: (recent [start, end), previous [start, end)), whole UTC days to today's midnight."""
    midnight = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    found = {}
    for name, days in WINDOWS:
        span = timedelta(days=days)
        found[name] = ((midnight - span, midnight), (midnight - 2 * span, midnight - span))
    return found


def build(store: StateStore, config: Config, now: datetime, spaces: list[diskguard.PathSpace] | None = None) -> dict:
    """The digest as plain data."""
    notify = NotifyStore(store)
    period = PERIOD_DAYS[config.notify.digest]
    daemon = store.daemon_values()
    compare = windows(now)
    collections = []
    for collection in config.collections:
        count = notify.posts_between if collection.type == "timeline" else notify.messages_between
        entry = {
            "name": collection.name, "type": collection.type,
            "on": collection.type != "timeline" or collection.schedule is not None,
            "items": "posts" if collection.type == "timeline" else "messages",
            "comparisons": {
                name: {"recent": count(collection.name, *recent), "previous": count(collection.name, *previous)}
                for name, (recent, previous) in compare.items()
            },
        }
        run = store.last_run(collection.name, MAIN_JOB[collection.type], finished_only=True)
        entry["last_run"] = {"started_at": run["started_at"], "result": run["result"]} if run else None
        entry["next_run"] = (daemon.get("next_runs") or {}).get(f"timeline:{collection.name}")
        if collection.type != "timeline":
            window = timedelta(days=UPTIME_DAYS)
            down = stored_disconnected_seconds(store, collection.name, now - window, now)
            entry["uptime"] = None if down is None else max(0.0, 1 - down / window.total_seconds())
        collections.append(entry)
    since = now - timedelta(days=period)
    events = Counter(r["event"] for r in Ledger(config.paths.state).records() if r.get("at", "") >= since.strftime("%Y-%m-%dT%H:%M:%S"))
    spaces = spaces if spaces is not None else diskguard.measure(config)
    samples = growth.samples_by_path(notify.disk_samples(now - timedelta(days=7)))
    disk = []
    for space in spaces:
        per_day = growth.shrink_per_day(samples.get(space.name, []))
        disk.append({"name": space.name, "path": str(space.path), "free_bytes": space.free, "level": space.level,
                     "shrink_per_day_bytes": per_day, "days_left": growth.days_left(space.free, per_day)})
    return {
        "generated_at": now.isoformat(timespec="seconds"), "period_days": period, "collections": collections,
        "lifecycle_events": dict(sorted(events.items())), "bags": notify.bags_done_between(since, now),
        "disk": disk, "active_alerts": [{"title": row.title, "since": row.started_at.isoformat(timespec="seconds")}
                                        for row in notify.active_alerts().values()],
    }


def message(digest: dict, organization: str) -> dict:
    """The digest as a message: subject, plain text and HTML."""
    text, rows = render_text(digest), _table_rows(digest)
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    rest = "".join(f"<p>{html.escape(line)}</p>" for line in _other_lines(digest))
    page = (f"<h2>sfm-archiver digest, {html.escape(organization)}</h2><table border='1' cellpadding='4' "
            f"style='border-collapse:collapse'><tr>{head}</tr>{body}</table>{rest}")
    days = digest["period_days"]
    return {"kind": "digest", "subject": f"[sfm-archiver] {'daily' if days == 1 else f'{days}-day'} digest, {organization}",
            "text": text, "html": page}


def render_text(digest: dict) -> str:
    rows = _table_rows(digest)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"sfm-archiver digest ({digest['generated_at']})", ""]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines += [""] + _other_lines(digest)
    return "\n".join(lines)


def _table_rows(digest: dict) -> list[list[str]]:
    rows = [["collection", "on", "last run", "next run", "yesterday / day before", "7 days / previous 7",
             "30 days / previous 30", "stream uptime 7d"]]
    for entry in digest["collections"]:
        last = entry["last_run"]
        cells = [entry["name"], "on" if entry["on"] else "off",
                 f"{last['started_at'][:16]} {last['result']}" if last else "never", (entry["next_run"] or "-")[:16]]
        for name, _days in WINDOWS:
            pair = entry["comparisons"][name]
            cells.append(f"{pair['recent']} / {pair['previous']} {entry['items']} ({_change(pair['recent'], pair['previous'])})")
        uptime = entry.get("uptime")
        cells.append("-" if uptime is None else f"{uptime * 100:.1f}%")
        rows.append(cells)
    return rows


def _other_lines(digest: dict) -> list[str]:
    days = digest["period_days"]
    events = ", ".join(f"{event} {n}" for event, n in digest["lifecycle_events"].items()) or "none"
    lines = [f"account lifecycle events, last {days} day(s): {events}",
             f"bags handed off, last {days} day(s): {digest['bags']['count']} ({diskguard.human_size(digest['bags']['bytes'])})"]
    for space in digest["disk"]:
        left = space["days_left"]
        pace = "" if left is None else f", about {left:.0f} days left at the current pace"
        lines.append(f"disk {space['name']} {space['path']}: {diskguard.human_size(space['free_bytes'])} free{pace}")
    if digest["active_alerts"]:
        lines.append("still wrong:")
        lines += [f"  {alert['title']} (since {alert['since']})" for alert in digest["active_alerts"]]
    else:
        lines.append("nothing is wrong right now")
    return lines


def _change(recent: int, previous: int) -> str:
    if previous == 0:
        return "new" if recent else "="
    return f"{(recent - previous) / previous * 100:+.0f}%"


def preview(config: Config) -> str:
    """The digest text as it would be sent now (`notify --digest`)."""
    from sfm_archiver.timeutil import utcnow

    store = StateStore(config.paths.state)
    try:
        return render_text(build(store, config, utcnow()))
    finally:
        store.close()
