"""Alerts: conditions with a start and an end, turned into few messages.

Each evaluation gathers the conditions present now (`conditions.py`) and steps them against
the alerts stored as active. `step` is a pure function of (stored alerts, present conditions,
now, repeat), so its promises can be checked on any sequence of observations:

- a condition present for at least its `delay` starts an alert: one `start` notice;
- while it lasts, at most one `remind` notice per `repeat`;
- it ends after being absent for its `hold`: one `end` notice. A condition that comes back
  within `hold` (a flapping stream) continues the same alert and counts one more occurrence,
  so a flapping stream sends one alert with a count, not a storm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sfm_archiver.notify.store import AlertRow

START, REMIND, END = "start", "remind", "end"


@dataclass(frozen=True)
class Condition:
    """Something wrong now. `since`: when it began; it becomes an alert once it has lasted `delay`.

    (How long it must be gone before its all-clear is a property of its kind: `step`'s `holds`.)
    """

    key: str
    kind: str
    title: str
    detail: str = ""
    since: datetime | None = None
    delay: timedelta = timedelta(0)


@dataclass(frozen=True)
class Notice:
    kind: str  # start | remind | end | event
    title: str
    detail: str
    started_at: datetime | None = None
    occurrences: int = 1


@dataclass
class Step:
    """What one evaluation changes: rows to save, alerts that ended, and the notices to send."""

    saved: list[AlertRow] = field(default_factory=list)
    ended: list[tuple[str, datetime]] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def step(
    active: dict[str, AlertRow],
    present: dict[str, Condition],
    now: datetime,
    repeat: timedelta,
    holds: dict[str, timedelta] | None = None,
) -> Step:
    """The next state of the alerts. `holds`: the hold of each kind, for alerts whose condition is gone."""
    result = Step()
    for key, condition in present.items():
        row = active.get(key)
        if row is None:
            if now - (condition.since or now) >= condition.delay:
                row = AlertRow(key, condition.kind, condition.title, condition.detail, now, now)
                result.saved.append(row)
                result.notices.append(Notice(START, condition.title, condition.detail, now))
            continue
        updated = row.but(
            title=condition.title, detail=condition.detail, clear_since=None,
            occurrences=row.occurrences + (1 if row.clear_since is not None else 0),
        )
        if now - row.last_sent_at >= repeat:
            updated = updated.but(last_sent_at=now)
            result.notices.append(Notice(REMIND, condition.title, condition.detail, row.started_at, updated.occurrences))
        if updated != row:
            result.saved.append(updated)
    for key, row in active.items():
        if key in present:
            continue
        hold = (holds or {}).get(row.kind, timedelta(0))
        clear_since = row.clear_since or now
        if now - clear_since >= hold:
            result.ended.append((key, now))
            result.notices.append(Notice(END, row.title, row.detail, row.started_at, row.occurrences))
        elif row.clear_since is None:
            result.saved.append(row.but(clear_since=now))
    return result
