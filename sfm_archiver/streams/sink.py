"""Where one stream collection's messages go: a memory buffer, then the capture writer.

The reading thread hands over whole batches (`accept`); a timer thread writes them (`tick`):
every `storage.stream_flush_seconds`, or sooner when the buffer is large, as one gzip member
made durable at once, so a kill -9 loses at most that batch. The same tick rotates the file by
the clock even when no message arrives. While the disk is low (`disk_ok()` False) nothing is
written: up to `streams.buffer_messages` messages wait in memory, later ones are dropped and
counted exactly, so the gap is known.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from sfm_archiver.storage import records
from sfm_archiver.storage.writer import CaptureWriter, compress_member
from sfm_archiver.timeutil import Clock, rfc3339_ms

log = logging.getLogger(__name__)

LARGE_BUFFER_BYTES = 2 << 20
PARALLEL_MIN_BYTES = 1 << 20
MAX_PENDING_BYTES = 4 << 20
COUNTS_EVERY_SECONDS = 1.0
_SENTINEL_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
_SENTINEL_CONNECTION = "@@connection@@"
_END = b"}\n"
_BLANKS = b" \t"


class MetaTemplate:
    """The `__sfm` member of a collection as bytes, with `captured_at` and `connection` filled in.

    Built from `records.sfm_metadata`, so the keys and their order are the same as everywhere
    else. A stream line names its connection (`__sfm.connection`); the request URL is recorded
    once per connection in the state store, not on every line.
    """

    def __init__(self, collection: str, job: str, **extra: str):
        self.collection, self.job = collection, job
        meta = records.sfm_metadata(captured_at=_SENTINEL_TIME, collection=collection, job=job, **extra,
                                    connection=_SENTINEL_CONNECTION)
        text = json.dumps(meta, separators=(",", ":"), ensure_ascii=False)
        head, rest = text.split(json.dumps(rfc3339_ms(_SENTINEL_TIME)), 1)
        middle, tail = rest.split(json.dumps(_SENTINEL_CONNECTION), 1)
        self._head = b',"__sfm":' + head.encode() + b'"'
        self._middle = b'"' + middle.encode() + b'"'
        self._tail = b'"' + tail.encode() + _END
        self._cached: tuple[str, str, bytes] | None = None

    def suffix(self, captured_at: datetime, connection: str) -> bytes:
        """What follows the message's bytes (minus its closing brace) in its capture line."""
        stamp = rfc3339_ms(captured_at)
        cached = self._cached
        if cached is not None and cached[0] == stamp and cached[1] == connection:
            return cached[2]
        quoted = json.dumps(connection, ensure_ascii=False)[1:-1].encode()
        suffix = self._head + stamp.encode() + self._middle + quoted + self._tail
        self._cached = (stamp, connection, suffix)
        return suffix


def message_body(line: bytes) -> memoryview | None:
    """The message bytes up to (not including) the closing `}`, for the fast splice, or None.

    `line` is one frame as read (its `\\r` may still be there). A compact object, which is
    what X sends, qualifies; anything else goes through `capture_parts`' general splice.
    """
    end = len(line) - 1 if line.endswith(b"\r") else len(line)
    if end > 2 and line.startswith(b'{"') and line[end - 1] == 0x7D and line.find(b"\r", 0, end) < 0:
        return memoryview(line)[:end - 1]
    return None


def capture_parts(line: bytes, suffix: bytes) -> tuple[bytes | memoryview, ...]:
    """The pieces of one capture line: the frame's bytes exactly as sent (its framing `\\r`
    dropped), with `__sfm` spliced in before the object's closing `}`; () when the frame is not
    a JSON object. Whitespace around and inside the object is kept; only a CR inside the frame
    (JSON whitespace, but a line break to many readers) becomes a space.
    """
    body = message_body(line)
    if body is not None:
        return body, suffix
    end = len(line) - 1 if line.endswith(b"\r") else len(line)
    frame = line[:end]
    if b"\r" in frame:
        frame = frame.replace(b"\r", b" ")
    start = len(frame) - len(frame.lstrip(_BLANKS))
    close = frame.rfind(b"}")
    if close <= start or frame[start] != 0x7B or frame[close + 1:].strip(_BLANKS):
        return ()
    if not frame[start + 1:close].strip(_BLANKS):
        suffix = suffix[1:]  # an empty object: no comma before `__sfm`
    trailing = frame[close + 1:]
    if trailing:
        return frame[:close], suffix[:-1], trailing, b"\n"
    return frame[:close], suffix


@dataclass
class MinuteCount:
    messages: int = 0
    dropped: int = 0
    last_message_at: datetime | None = None


class CollectionSink:
    """Buffers and writes the capture lines of one stream collection (thread-safe)."""

    def __init__(
        self,
        archive_root: Path,
        collection: str,
        job: str,
        *,
        stream: str,
        store,
        rotation: timedelta,
        compresslevel: int,
        flush_seconds: float,
        buffer_messages: int,
        disk_ok: Callable[[], bool],
        clock: Clock,
        large_buffer_bytes: int = LARGE_BUFFER_BYTES,
        max_pending_bytes: int = MAX_PENDING_BYTES,
        wake: threading.Event | None = None,
        compressors: Executor | None = None,
        compress_workers: int = 2,
        counts_every: float = COUNTS_EVERY_SECONDS,
        meta: dict[str, str] | None = None,
        on_durable: Callable[[int], None] | None = None,
    ):
        """`meta`: more `__sfm` keys (a Bluesky capture's `platform`). `on_durable(marker)` is
        called once every line accepted with a `marker` up to then is durable, with the largest
        marker (a resumable stream's cursor advances only so)."""
        self.collection = collection
        self.stream = stream
        self.template = MetaTemplate(collection, job, **(meta or {}))
        self.on_durable = on_durable
        self._marker: int | None = None
        self.store = store
        self.flush_seconds = flush_seconds
        self.buffer_messages = buffer_messages
        self.disk_ok = disk_ok
        self.clock = clock
        self.large_buffer_bytes = large_buffer_bytes
        self.rotation = rotation
        self.compresslevel = compresslevel
        self.max_pending_bytes = max_pending_bytes
        self.compressors = compressors
        self.compress_workers = compress_workers
        self._moment: datetime | None = None
        self._period_seconds = min(rotation.total_seconds(), 3600.0)
        self.writer = CaptureWriter(
            archive_root, collection, "stream", clock=self._writer_clock, registry=store, rotation=rotation,
            compresslevel=compresslevel, sync_every_flush=True, max_batch_bytes=1 << 62,
        )
        self._lock = threading.Lock()  # the buffer, shared with the reading thread
        self._io = threading.RLock()  # the writer: one tick or close at a time
        self._room = threading.Condition(self._lock)
        self._no_waiting = False
        self._segments: list[tuple[int, datetime, list[bytes]]] = []
        self._pending_messages = 0
        self._pending_bytes = 0
        self._counts: dict[datetime, MinuteCount] = defaultdict(MinuteCount)
        self._paused = False
        self._closed = False
        self._last_flush: datetime | None = None
        self._counts_saved: datetime | None = None
        self.counts_every = counts_every
        self.wake = wake or threading.Event()
        self.messages_total = 0
        self.dropped_total = 0
        self.last_message_at: datetime | None = None

    # called by the reading thread -----------------------------------------------------------

    def accept(self, parts: list[bytes], messages: int, captured_at: datetime, marker: int | None = None) -> int:
        """Take a batch of `messages` capture lines (as pieces); returns how many were dropped.

        `marker` (a cursor position) is handed to `on_durable` once the batch is durable."""
        if not messages:
            return 0
        size = sum(len(p) for p in parts)
        with self._lock:
            # the writer is behind: hold the reader (the server sees a slow client) instead of
            # letting memory grow without bound; a low disk drops instead (below)
            while self._pending_bytes >= self.max_pending_bytes and not (self._paused or self._closed or self._no_waiting):
                self.wake.set()
                self._room.wait(0.5)
            if self._closed:
                return 0
            dropped = 0
            if self._paused and self._pending_messages + messages > self.buffer_messages:
                room = max(0, self.buffer_messages - self._pending_messages)
                dropped = messages - room
                parts = _first_lines(parts, room)
                messages = room
                size = sum(len(p) for p in parts)
            minute = captured_at.replace(second=0, microsecond=0)
            count = self._counts[minute]
            count.dropped += dropped
            self.dropped_total += dropped
            if messages:
                period = int(captured_at.timestamp() // self._period_seconds)
                if self._segments and self._segments[-1][0] == period:
                    self._segments[-1][2].extend(parts)
                else:
                    self._segments.append((period, captured_at, list(parts)))
                self._pending_messages += messages
                self._pending_bytes += size
                count.messages += messages
                count.last_message_at = captured_at
                self.messages_total += messages
                self.last_message_at = captured_at
                if marker is not None:
                    self._marker = marker if self._marker is None else max(self._marker, marker)
            large = self._pending_bytes >= self.large_buffer_bytes
        if large and not self._paused:
            self.wake.set()
        return dropped

    # called by the timer thread -------------------------------------------------------------

    def tick(self, now: datetime | None = None, force: bool = False) -> None:
        """Write what is due, rotate by the clock, and record the per-minute counts."""
        with self._io:
            now = now or self.clock()
            due = force or self._pending_bytes >= self.large_buffer_bytes or self._last_flush is None \
                or (now - self._last_flush).total_seconds() >= self.flush_seconds
            if due and self._pending_messages:
                self._write_pending(now)
            self._moment = now
            self.writer.rotate_if_due(now)
            # a busy stream ticks many times a second (every large buffer): one state write a second
            if force or self._counts_saved is None or (now - self._counts_saved).total_seconds() >= self.counts_every:
                self._counts_saved = now
                self._save_counts()

    def close(self) -> None:
        """Write everything still buffered (unless the disk is low), close the file."""
        with self._io:
            self._close()

    def _close(self) -> None:
        with self._lock:
            self._closed = True  # later batches from a reader still running are refused
            self._room.notify_all()
        self.tick(force=True)
        with self._lock:
            left = self._pending_messages
            if left:  # counted as received when accepted: now they are lost instead
                count = self._counts[self.clock().replace(second=0, microsecond=0)]
                count.dropped += left
                count.messages -= left
                self.dropped_total += left
                self.messages_total -= left
                self._segments.clear()
                self._pending_messages = self._pending_bytes = 0
        if left:
            log.error("collection=%s: %d stream messages could not be written (disk low) and are lost",
                      self.collection, left)
            self._save_counts()
        self.writer.close()

    def stop_waiting(self) -> None:
        """Let a reader held back by a full buffer go on (at shutdown)."""
        with self._lock:
            self._no_waiting = True
            self._room.notify_all()

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pending_messages(self) -> int:
        return self._pending_messages

    def _write_pending(self, now: datetime) -> None:
        ok = self.disk_ok()
        if not ok:
            if not self._paused:
                log.warning("collection=%s: disk space low: stream messages are held in memory (up to %d)",
                            self.collection, self.buffer_messages)
            with self._lock:
                self._paused = True
                self._room.notify_all()
            return
        if self._paused:
            log.warning("collection=%s: disk space back: writing %d held stream messages",
                        self.collection, self._pending_messages)
        with self._lock:
            segments, self._segments = self._segments, []
            marker, self._marker = self._marker, None
            self._pending_messages = self._pending_bytes = 0
            self._paused = False
            self._room.notify_all()
        for index, (_period, first_captured_at, parts) in enumerate(segments):
            # files are named and rotated by the capture time of the batch, not the flush time
            self._moment = first_captured_at
            self.writer.rotate_if_due(first_captured_at)
            try:
                self._write(parts)
            except Exception:
                self._hold_again(segments[index:], marker)
                raise
        self._last_flush = now
        if marker is not None and self.on_durable is not None:
            self._report_durable(marker)

    def _report_durable(self, marker: int) -> None:
        try:
            self.on_durable(marker)
        except Exception as error:  # kept for the next batch: the cursor only lags
            log.error("collection=%s: recording the stream position failed: %s", self.collection, error)
            with self._lock:
                self._marker = marker if self._marker is None else max(self._marker, marker)

    def _hold_again(self, segments: list, marker: int | None = None) -> None:
        """A write failed (the disk filled before the guard saw it): what was not written waits
        in the buffer again, in order, instead of being lost without a count."""
        with self._lock:
            if marker is not None:
                self._marker = marker if self._marker is None else max(self._marker, marker)
            self._segments[:0] = segments
            for _period, _at, parts in segments:
                self._pending_messages += sum(p.count(b"\n") for p in parts if isinstance(p, bytes))
                self._pending_bytes += sum(len(p) for p in parts)
            self._paused = True
            self._room.notify_all()

    def _write(self, parts: list) -> None:
        """One batch; a large one is cut at line ends and its gzip members made on several cores."""
        pool = self.compressors
        size = sum(len(part) for part in parts)
        if pool is None or size < PARALLEL_MIN_BYTES:
            # one member written whole or not at all (append+flush would keep failed lines
            # buffered in the writer, and every later write_member would then refuse)
            data = b"".join(parts)
            self.writer.write_member(compress_member(data, self.compresslevel), data.count(b"\n"))
            return
        pieces = join_in_pieces(parts, size, self.compress_workers)
        parts.clear()  # the pieces hold the data now: free the parts before compressing
        level = self.compresslevel
        others = [pool.submit(compress_member, piece, level) for piece in pieces[1:]]
        members = [compress_member(pieces[0], level)] + [future.result() for future in others]
        last = len(members) - 1
        for index, (piece, member) in enumerate(zip(pieces, members, strict=True)):
            try:
                self.writer.write_member(member, piece.count(b"\n"), sync=index == last)
            except Exception:
                parts[:] = pieces[index:]  # the pieces not written go back to the buffer
                raise

    def _writer_clock(self) -> datetime:
        """The writer names files by the capture time of the batch it writes, not the flush time."""
        return self._moment or self.clock()

    def _save_counts(self) -> None:
        with self._lock:
            if not self._counts:
                return
            counts, self._counts = self._counts, defaultdict(MinuteCount)
        for minute, count in sorted(counts.items()):
            self.store.add_stream_counts(
                self.stream, self.collection, minute, count.messages, count.dropped, count.last_message_at,
            )


def storage_changed(sink: CollectionSink, config) -> bool:
    """Whether a reloaded configuration writes otherwise than `sink` does (a new sink is needed)."""
    storage = config.storage
    return (sink.rotation, sink.compresslevel, sink.flush_seconds, sink.buffer_messages) != (
        storage.rotation, storage.compresslevel, storage.stream_flush_seconds, config.streams.buffer_messages)


def join_in_pieces(parts: list, size: int, pieces: int) -> list[bytes]:
    """The parts joined into about `pieces` pieces of whole lines (one copy, no search)."""
    target = max(1, size // max(1, pieces))
    joined, group, grouped = [], [], 0
    for part in parts:
        group.append(part)
        grouped += len(part)
        if grouped >= target and isinstance(part, bytes) and part.endswith(b"\n"):
            joined.append(b"".join(group))
            group, grouped = [], 0
    if group:
        joined.append(b"".join(group))
    return joined


def _first_lines(parts: list, lines: int) -> list:
    """The pieces making up the first `lines` capture lines.

    A piece is a message body (a view, no newline), a suffix (ending its line), or a block of
    whole lines (bytes holding several newlines), which is cut where needed.
    """
    kept: list = []
    seen = 0
    for part in parts:
        if seen >= lines:
            break
        if isinstance(part, bytes):
            newlines = part.count(b"\n")
            if seen + newlines > lines:
                cut = -1
                for _ in range(lines - seen):
                    cut = part.index(b"\n", cut + 1)
                kept.append(part[:cut + 1])
                break
            seen += newlines
        kept.append(part)
    return kept
