"""The notify tables of the state store: alerts, the outgoing message queue, cursors, disk samples.

`state.py` owns the connection and the schema (its last migration creates these tables); this
module holds their SQL so the notify code reads as one piece. Every change to an alert and the
message announcing it are written in one transaction: a crash either did both or neither, so
a restart neither repeats nor forgets an alert.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Iterable

from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import parse_timestamp


@dataclass(frozen=True)
class AlertRow:
    """An alert as stored: a condition that started and has not ended yet."""

    key: str
    kind: str
    title: str
    detail: str
    started_at: datetime
    last_sent_at: datetime
    clear_since: datetime | None = None
    occurrences: int = 1

    def but(self, **changes: Any) -> AlertRow:
        return replace(self, **changes)


@dataclass(frozen=True)
class Outgoing:
    """A message waiting for delivery to the targets still `pending` (target ids)."""

    id: int
    kind: str
    subject: str
    text: str
    html: str | None
    pending: tuple[str, ...]
    attempts: int
    next_attempt_at: datetime


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _time(text: str | None) -> datetime | None:
    return None if text is None else parse_timestamp(text)


class NotifyStore:
    def __init__(self, store: StateStore):
        self.store = store

    # -- alerts ----------------------------------------------------------------------------

    def active_alerts(self) -> dict[str, AlertRow]:
        rows = self.store.db.execute("SELECT * FROM alerts WHERE ended_at IS NULL ORDER BY started_at, key")
        return {
            row["key"]: AlertRow(
                row["key"], row["kind"], row["title"], row["detail"] or "", _time(row["started_at"]),
                _time(row["last_sent_at"]), _time(row["clear_since"]), row["occurrences"],
            )
            for row in rows
        }

    def alert_history(self, since: datetime) -> list[dict]:
        """Alerts active at or after `since` (for the digest and the report)."""
        rows = self.store.db.execute(
            "SELECT * FROM alerts WHERE ended_at IS NULL OR ended_at >= ? ORDER BY started_at", (iso(since),)
        )
        return [dict(row) for row in rows]

    def apply(
        self, saved: Iterable[AlertRow], ended: Iterable[tuple[str, datetime]], message: dict | None, targets: list[str],
        now: datetime, values: dict | None = None,
    ) -> None:
        """Store alert changes, cursors (`values`) and the message announcing them, in one transaction."""
        with self.store.transaction() as db:
            for key, value in (values or {}).items():
                db.execute("INSERT OR REPLACE INTO notify_values VALUES (?, ?)", (key, json.dumps(value)))
            for row in saved:
                db.execute(
                    "INSERT OR REPLACE INTO alerts (key, kind, title, detail, started_at, last_sent_at, clear_since, "
                    "ended_at, occurrences) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                    (row.key, row.kind, row.title, row.detail, iso(row.started_at), iso(row.last_sent_at),
                     iso(row.clear_since), row.occurrences),
                )
            for key, at in ended:
                db.execute("UPDATE alerts SET ended_at = ? WHERE key = ? AND ended_at IS NULL", (iso(at), key))
                db.execute("UPDATE alerts SET key = key || '@' || ended_at WHERE key = ?", (key,))
            if message is not None and targets:
                self._enqueue(db, message, targets, now)

    def enqueue(self, message: dict, targets: list[str], now: datetime) -> None:
        if targets:
            with self.store.transaction() as db:
                self._enqueue(db, message, targets, now)

    @staticmethod
    def _enqueue(db, message: dict, targets: list[str], now: datetime) -> None:
        """One row per target: each target's deliveries and retries go at their own pace."""
        for target in targets:
            db.execute(
                "INSERT INTO notify_outbox (created_at, kind, subject, text, html, pending, next_attempt_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (iso(now), message["kind"], message["subject"], message["text"], message.get("html"),
                 json.dumps([target]), iso(now)),
            )

    # -- the outgoing queue ----------------------------------------------------------------

    def due(self, now: datetime, target: str | None = None, limit: int = 20) -> list[Outgoing]:
        """Messages due by `now` (for one target, when given), oldest first."""
        mine = "" if target is None else " AND pending = ?"
        rows = self.store.db.execute(
            f"SELECT * FROM notify_outbox WHERE next_attempt_at <= ?{mine} ORDER BY id LIMIT ?",
            (iso(now), *(() if target is None else (json.dumps([target]),)), limit),
        )
        return [
            Outgoing(row["id"], row["kind"], row["subject"], row["text"], row["html"], tuple(json.loads(row["pending"])),
                     row["attempts"], _time(row["next_attempt_at"]))
            for row in rows
        ]

    def next_due(self, target: str | None = None) -> datetime | None:
        if target is None:
            row = self.store.db.execute("SELECT MIN(next_attempt_at) FROM notify_outbox").fetchone()
        else:
            row = self.store.db.execute(
                "SELECT MIN(next_attempt_at) FROM notify_outbox WHERE pending = ?", (json.dumps([target]),)
            ).fetchone()
        return _time(row[0])

    def delivered(self, message_id: int) -> None:
        self.store.db.execute("DELETE FROM notify_outbox WHERE id = ?", (message_id,))

    def retry_later(self, message_id: int, pending: list[str], attempts: int, at: datetime, error: str) -> None:
        self.store.db.execute(
            "UPDATE notify_outbox SET pending = ?, attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (json.dumps(pending), attempts, iso(at), error, message_id),
        )

    def queued(self) -> int:
        return self.store.db.execute("SELECT COUNT(*) FROM notify_outbox").fetchone()[0]

    # -- cursors and small values ----------------------------------------------------------

    def value(self, key: str, default: Any = None) -> Any:
        row = self.store.db.execute("SELECT value FROM notify_values WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def set_value(self, key: str, value: Any) -> None:
        self.store.db.execute("INSERT OR REPLACE INTO notify_values VALUES (?, ?)", (key, json.dumps(value)))

    # -- disk samples ----------------------------------------------------------------------

    def add_disk_sample(self, path: str, at: datetime, free: int, total: int) -> None:
        self.store.db.execute("INSERT OR REPLACE INTO disk_samples VALUES (?, ?, ?, ?)", (path, iso(at), free, total))

    def disk_samples(self, since: datetime) -> list[dict]:
        rows = self.store.db.execute("SELECT * FROM disk_samples WHERE at >= ? ORDER BY path, at", (iso(since),))
        return [dict(row) for row in rows]

    # -- facts the conditions and metrics need ----------------------------------------------

    def disconnected_since(self, stream: str) -> str | None:
        """When the current disconnection of a stream began: the first event after its last connect."""
        row = self.store.db.execute(
            "SELECT at FROM stream_events WHERE stream = ? AND id > COALESCE("
            "(SELECT MAX(id) FROM stream_events WHERE stream = ? AND event = 'connect'), 0) ORDER BY id LIMIT 1",
            (stream, stream),
        ).fetchone()
        return row["at"] if row else None

    def last_success(self) -> list[dict]:
        """The last ok/warning run of every (job, collection)."""
        rows = self.store.db.execute(
            "SELECT job, collection, MAX(started_at) AS started_at, MAX(ended_at) AS ended_at FROM runs "
            "WHERE result IN ('ok', 'warning') GROUP BY job, collection"
        )
        return [dict(row) for row in rows]

    def failure_counts(self) -> list[dict]:
        rows = self.store.db.execute(
            "SELECT job, collection, COUNT(*) AS n FROM runs WHERE result = 'failed' GROUP BY job, collection"
        )
        return [dict(row) for row in rows]

    def posts_captured(self) -> dict[str, int]:
        rows = self.store.db.execute(
            "SELECT collection, SUM(json_extract(counts, '$.posts')) AS n FROM runs "
            "WHERE job = 'user_timeline' AND counts IS NOT NULL GROUP BY collection"
        )
        return {row["collection"]: int(row["n"] or 0) for row in rows}

    def stream_messages(self) -> dict[str, int]:
        rows = self.store.db.execute("SELECT collection, SUM(messages) AS n FROM stream_counts GROUP BY collection")
        return {row["collection"]: int(row["n"] or 0) for row in rows}

    def bags_handed_off(self) -> list[dict]:
        rows = self.store.db.execute(
            "SELECT collection, COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes FROM bags WHERE state = 'done' "
            "GROUP BY collection"
        )
        return [dict(row) for row in rows]

    # -- sums over a time range (digest) -----------------------------------------------------

    def posts_between(self, collection: str, start: datetime, end: datetime) -> int:
        row = self.store.db.execute(
            "SELECT COALESCE(SUM(json_extract(counts, '$.posts')), 0) FROM runs WHERE collection = ? "
            "AND job = 'user_timeline' AND started_at >= ? AND started_at < ?",
            (collection, iso(start), iso(end)),
        ).fetchone()
        return int(row[0])

    def messages_between(self, collection: str, start: datetime, end: datetime) -> int:
        row = self.store.db.execute(
            "SELECT COALESCE(SUM(messages), 0) FROM stream_counts WHERE collection = ? AND minute >= ? AND minute < ?",
            (collection, iso(start), iso(end)),
        ).fetchone()
        return int(row[0])

    def bags_done_between(self, start: datetime, end: datetime) -> dict:
        row = self.store.db.execute(
            "SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS bytes FROM bags WHERE state = 'done' "
            "AND COALESCE(handoff_at, finished_at) >= ? AND COALESCE(handoff_at, finished_at) < ?",
            (iso(start), iso(end)),
        ).fetchone()
        return {"count": row["n"], "bytes": row["bytes"]}
