"""What a stream collection's recorded events say: its gaps, and what `status` shows.

The one reading of the events: status, the digest, the report, metrics and the supervisor use it.

Events are recorded per collection (`start`, `connect`, `connect_failed`, `disconnect`,
`reconnect`, `error`, `stop`). After `connect` the collection is listening; after `stop` it was
not meant to run (not a gap); after anything else it was meant to but was not connected.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sfm_archiver.storage.layout import UNROUTED
from sfm_archiver.timeutil import parse_timestamp

CONNECTED_EVENTS = frozenset({"connect"})
STOPPED_EVENTS = frozenset({"stop"})
STATE_EVENTS = frozenset({"start", "connect", "connect_failed", "disconnect", "reconnect", "error", "stop"})


def disconnected_intervals(events: list[dict], start: datetime, end: datetime, before: dict | None = None,
                           alive: bool = True) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) a collection was meant to capture but was not connected.

    `events` are the collection's stream events from `start` on (oldest first) and `before`
    the last one before `start`. After `connect` it is connected; after `stop` it was not
    meant to run (not a gap); after anything else (start, disconnect, a failed connect,
    reconnect, error) it is disconnected. Events that say nothing about the connection are
    ignored. With `alive` False (the daemon died without writing `stop`), a collection last
    seen connected is counted as down from its last event to `end`.
    """
    gaps: list[tuple[datetime, datetime]] = []
    state = "stopped" if before is None else state_after(before["event"], "stopped")
    opened = start if state == "disconnected" else None
    last = start
    for event in events:
        at = min(max(parse_timestamp(event["at"]), start), end)
        last, state = at, state_after(event["event"], state)
        if state == "disconnected":
            opened = at if opened is None else opened
        elif opened is not None:
            if at > opened:
                gaps.append((opened, at))
            opened = None
    if opened is None and state == "connected" and not alive:
        opened = last
    if opened is not None and end > opened:
        gaps.append((opened, end))
    return gaps


def disconnected_seconds(events: list[dict], start: datetime, end: datetime, before: dict | None = None,
                         alive: bool = True) -> float:
    return sum((b - a).total_seconds() for a, b in disconnected_intervals(events, start, end, before, alive))


def stored_intervals(store, stream: str, start: datetime, end: datetime,
                     alive: bool = True) -> list[tuple[datetime, datetime]] | None:
    """disconnected_intervals of a collection's events in the state store; None: it never ran."""
    before = store.stream_event_before(stream, start)
    events = store.stream_events(stream, since=start)
    if before is None and not events:
        return None
    return disconnected_intervals(events, start, end, before, alive)


def stored_disconnected_seconds(store, stream: str, start: datetime, end: datetime, alive: bool = True) -> float | None:
    intervals = stored_intervals(store, stream, start, end, alive)
    return None if intervals is None else sum((b - a).total_seconds() for a, b in intervals)


def state_after(event: str, state: str) -> str:
    """The connection state after `event`, given the state before it."""
    if event not in STATE_EVENTS:
        return state
    if event in CONNECTED_EVENTS:
        return "connected"
    if event in STOPPED_EVENTS:
        return "stopped"
    return "disconnected"


def note_unclean_end(store, stream: str) -> None:
    """A process that died while capturing left no `stop`: record when it went silent (its last
    event or message), so the time until the next start counts as a gap."""
    last = store.last_stream_event(stream)
    if last is None or last["event"] in STOPPED_EVENTS:
        return
    moment = parse_timestamp(last["at"])
    last_message = store.stream_totals(stream, moment)["last_message_at"]
    if last_message:
        moment = max(moment, parse_timestamp(last_message))
    store.record_stream_event(stream, "disconnect", "the previous process ended without stopping the stream", at=moment)
    store.record_stream_event(stream, "stop", "capture ended with the previous process", at=moment)


def connect_reason(path: str, connection: str, url: str) -> str:
    """The reason of a `connect` event: where, the connection's id, and its request URL once
    (stream lines carry only `__sfm.connection`; `connection_url` reads the URL back)."""
    return f"connected to {path} as connection {connection}: {url}"


def connection_url(store, connection: str) -> str | None:
    """The request URL of a stream connection, from its `connect` event (None: not recorded)."""
    marker = f" as connection {connection}: "
    for event in store.stream_events():
        reason = event.get("reason") or ""
        if event.get("event") == "connect" and marker in reason:
            return reason.split(marker, 1)[1]
    return None


def stream_status(store, collection: str, now: datetime, alive: bool = True) -> dict:
    """What status shows for one stream collection, from the state store alone.

    `alive`: whether the daemon that writes the events is running (a dead one never wrote `stop`).
    """
    last = store.last_stream_event(collection)
    recent = store.stream_recent(collection, now - timedelta(hours=1))
    down = stored_disconnected_seconds(store, collection, now - timedelta(hours=24), now, alive)
    last_message = parse_timestamp(recent["last_message_at"]) if recent["last_message_at"] else None
    return {
        "state": state_after(last["event"], "stopped") if last else "never started",
        "connected": bool(last) and last["event"] in CONNECTED_EVENTS and alive,
        "last_event": last,
        "messages_last_hour": recent["messages"],
        "dropped_last_hour": recent["dropped"],
        "last_message_at": recent["last_message_at"],
        "last_message_age_seconds": None if last_message is None else round((now - last_message).total_seconds(), 1),
        "disconnected_seconds_24h": None if down is None else round(down, 1),
    }


def cursor_status(store, collection: str, now: datetime) -> dict:
    """Where a resumable stream (Jetstream) would go on: its cursor (time_us of the newest durable
    event), that moment, and how far behind now it is."""
    record = store.stream_cursor(collection)
    return cursor_view(record["cursor"] if record else None, now)


def cursor_view(cursor: int | None, now: datetime) -> dict:
    """A cursor (µs) as status shows it: the value, its moment, its lag behind `now` (seconds)."""
    if cursor is None:
        return {"cursor": None, "cursor_at": None, "cursor_lag_seconds": None}
    at = datetime.fromtimestamp(cursor / 1e6, tz=timezone.utc)
    return {"cursor": cursor, "cursor_at": at.isoformat(timespec="milliseconds"),
            "cursor_lag_seconds": round((now - at).total_seconds(), 1)}


def unrouted_status(store, now: datetime) -> dict:
    """What status shows for `_unrouted`: stream messages that belonged to no collection being
    captured (kept, never dropped); None when there is no state store yet."""
    if store is None:
        return {"messages_last_24h": 0, "messages_total": 0, "last_message_at": None, "folder": UNROUTED}
    day = store.stream_totals(UNROUTED, now - timedelta(hours=24))
    total = store.stream_totals(UNROUTED, datetime(1970, 1, 1, tzinfo=now.tzinfo))
    return {"messages_last_24h": day["messages"], "messages_total": total["messages"],
            "last_message_at": total["last_message_at"], "folder": UNROUTED}
