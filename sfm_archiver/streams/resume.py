"""Where a resumable stream (Jetstream) goes on, and what it must not capture twice.

The protocol, per collection:

1. Each event handed to the capture carries its `time_us`; the sink makes a batch durable
   (one gzip member, fsync) and only then the largest `time_us` of the batch is written to the
   state store (`stream_cursors`). So the stored cursor never names an event that is not on disk.
2. A kill -9 may come between the fsync and the cursor write: the disk then holds events past
   the cursor. On start (after sealing the files the dead process left), `recover` reads the
   capture files written since shortly before the cursor was stored (by the local clock, as
   the files' times are: the server's time_us may be skewed), so the cursor becomes the newest
   event really on disk, and the keys of the events near it are known.
3. The reader subscribes at cursor minus `overlap` seconds (events are not in strict time_us
   order and several share one time_us) and drops every event whose key it already has.

So an event is captured once: a batch not yet durable at the kill is sent again (it is past the
cursor), a durable one is recognised by its key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sfm_archiver.platforms.bluesky_jetstream import NotAnEvent, parse_event
from sfm_archiver.storage import reader
from sfm_archiver.timeutil import parse_timestamp

log = logging.getLogger(__name__)

SCAN_MARGIN = timedelta(minutes=10)  # files written this long before the cursor was stored are read too
NO_CURSOR_SCAN = timedelta(hours=1)  # without a stored cursor: how far back the files are read


@dataclass
class Position:
    """Where to go on: the newest durable event's time_us (None: none yet) and the keys seen."""

    cursor: int | None
    seen: dict[tuple, int] = field(default_factory=dict)  # event key -> time_us
    found_on_disk: int = 0  # events past the stored cursor found in the files


def recover(archive: Path, collection: str, stored: dict | None, overlap_us: int, now: datetime) -> Position:
    """The position of `collection` from its stored cursor (`StateStore.stream_cursor`: cursor
    and updated_at, or None) and its capture files (see above)."""
    since = parse_timestamp(stored["updated_at"]) - SCAN_MARGIN if stored is not None else now - NO_CURSOR_SCAN
    stored_cursor = stored["cursor"] if stored is not None else None
    events = []
    for path in reader.capture_files(archive, collection, ["stream"], start=since - timedelta(hours=1)):
        if datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc) < since:
            continue
        for _number, line in reader.read_lines(path, lambda problem: log.warning("%s", problem)):
            try:
                events.append(parse_event(line))
            except NotAnEvent:
                continue
    newest = max((event.time_us for event in events), default=None)
    cursor = stored_cursor if newest is None else newest if stored_cursor is None else max(stored_cursor, newest)
    position = Position(cursor, found_on_disk=sum(1 for e in events if stored_cursor is None or e.time_us > stored_cursor))
    if cursor is not None:
        floor = cursor - 2 * overlap_us
        position.seen = {event.key: event.time_us for event in events if event.time_us >= floor}
    return position


def resume_cursor(cursor: int | None, overlap_us: int) -> int | None:
    """The cursor to subscribe with: `overlap_us` before the last event (None: live only)."""
    return None if cursor is None else max(0, cursor - overlap_us)


def prune(seen: dict[tuple, int], newest: int, overlap_us: int) -> None:
    """Forget keys too old to come again (older than twice the overlap before `newest`)."""
    floor = newest - 2 * overlap_us
    for key in [key for key, at in seen.items() if at < floor]:
        del seen[key]
