"""Jetstream collections: one WebSocket subscription per collection, captured, resumed, supervised.

Each `type: jetstream` collection reads its own subscription (`wantedCollections` posts, and
`wantedDids` its followed accounts unless it matches keywords, which needs every post) on its
own thread. Each message is kept exactly as received, with `__sfm` spliced in, in the
collection's stream captures (the X streams' `CollectionSink`, so batches, fsync, rotation,
counts and the disk guard are theirs). Events the collection did not ask for are not captured;
identity and account events of followed DIDs are captured and go to the ledger (`renamed`,
`suspended`, `deactivated`, `reactivated`, `unsuspended`, derived by the one `AccountBook`).

Resuming is `streams.resume`'s protocol: the cursor is stored once a batch is durable, and a
restart or reconnect asks for some seconds before it and drops events it already has.
Connection events are recorded like X streams' (`start`, `connect`, `connect_failed`,
`disconnect`, `reconnect`, `stop`), so `status` and `streams.gaps` show the time not listening.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Iterable
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from sfm_archiver.config import Collection, Config
from sfm_archiver.errors import LockBusyError, UsageError
from sfm_archiver.jobs.account_events import AccountBook
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.runs import RunRecorder
from sfm_archiver.locks import FileLock, collection_lock
from sfm_archiver.platforms.bluesky_jetstream import (
    ACCOUNT,
    IDENTITY,
    JetstreamEvent,
    NotAnEvent,
    account_status,
    parse_event,
    subscribe_url,
)
from sfm_archiver.platforms.x_stream import CLOSED, DEFAULT_BACKOFF, HTTP, NETWORK, BackoffPolicy, reconnect_delay
from sfm_archiver.storage.writer import seal_abandoned_files
from sfm_archiver.streams import resume
from sfm_archiver.streams.connection import new_connection_id
from sfm_archiver.streams.follows import Follows, follows_of, observation_of, sync_members
from sfm_archiver.streams.gaps import connect_reason, cursor_view, note_unclean_end
from sfm_archiver.streams.sink import CollectionSink, capture_parts, storage_changed

log = logging.getLogger(__name__)

JOB = "jetstream"
OVERLAP_SECONDS = 5.0  # a resume asks for this much before the last event
MAX_MESSAGE_BYTES = 4 << 20
OPEN_TIMEOUT = 30.0
READ_TIMEOUT = 0.5  # how often a quiet reader looks at its halt flag
PRUNE_EVERY = 2000  # events between prunings of the keys already seen


class _Failure:
    def __init__(self, kind: str, reason: str):
        self.kind, self.reason = kind, reason


class JetstreamCapture:
    """One jetstream collection: its lock, sink, run, cursor and reading thread."""

    def __init__(self, ctx: JobContext, collection: Collection, follows: Follows, *,
                 backoff: BackoffPolicy = DEFAULT_BACKOFF, overlap_seconds: float = OVERLAP_SECONDS,
                 healthy_seconds: float = 30.0):
        self.ctx = ctx
        self.collection = collection
        self.name = collection.name
        self.follows = follows
        self.url = ctx.config.bluesky.jetstream_url
        self.backoff = backoff
        self.overlap_us = int(overlap_seconds * 1_000_000)
        self.healthy_seconds = healthy_seconds
        self.lock: FileLock = collection_lock(ctx.config.paths.state, self.name, "stream")
        self.sink: CollectionSink | None = None
        self.run: RunRecorder | None = None
        self.book: AccountBook | None = None
        self.cursor: int | None = None  # newest durable event (time_us)
        self._received: int | None = None  # newest event read (time_us), or the first connect: where a reconnect goes on
        self._seen: dict[tuple, int] = {}
        self._since_prune = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"jetstream-{self.name}", daemon=True)
        self.connected = False
        self.connected_since: datetime | None = None
        self.connection_id = ""
        self.last_failure: str | None = None
        self.connects = self.disconnects = 0
        self.skipped = self.duplicates = self.malformed = 0

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Take the lock (LockBusyError when busy), recover, record the start, connect."""
        self.lock.acquire()
        ctx, store, name = self.ctx, self.ctx.store, self.name
        try:
            for path, removed in seal_abandoned_files(store, name):
                log.warning("collection=%s: sealed %s left open by a dead process (%d torn bytes cut)", name, path, removed)
            note_unclean_end(store, name)
            stored = store.stream_cursor(name)
            position = resume.recover(ctx.config.paths.archive, name, stored, self.overlap_us, ctx.clock())
            if position.found_on_disk and stored:
                log.info("collection=%s: %d events past the stored cursor were already on disk", name, position.found_on_disk)
            self.cursor = self._received = position.cursor
            self._seen = position.seen
            if position.cursor is not None:
                store.set_stream_cursor(name, position.cursor)
            self.run = RunRecorder(store, JOB, name).__enter__()
            for problem in self.follows.problems:
                self.run.warn(problem)
            self.book = AccountBook(ctx.ledger, store, ctx.config.paths.state, self.run.observed_by, platform="bluesky")
            sync_members(self.book, store, name, self.follows)
            self.sink = self._new_sink()
        except BaseException:
            self.lock.release()
            raise
        store.record_stream_event(name, "start", f"{JOB} capture started", at=ctx.clock())
        self._thread.start()

    def halt(self) -> None:
        self._halt.set()
        if self.sink is not None:
            self.sink.stop_waiting()

    def join(self, timeout: float) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def close(self) -> None:
        """After `halt` and `join`: write what is buffered, finish the run, release the lock."""
        store, run, error = self.ctx.store, self.run, None
        try:
            self.sink.close()
        except Exception as failure:  # the run records it; the lock must still be released
            error = failure
            log.error("collection=%s: closing the capture file failed: %s", self.name, failure)
        run.counts.update(messages=self.sink.messages_total, dropped=self.sink.dropped_total, skipped=self.skipped,
                          duplicates=self.duplicates, connects=self.connects, disconnects=self.disconnects)
        if self.malformed:
            run.warn(f"{self.malformed} messages were not Jetstream events and were not captured")
        if self.sink.dropped_total:
            run.warn(f"{self.sink.dropped_total} messages dropped (disk low, buffer full)")
        store.record_stream_event(self.name, "stop", "capture stopped", at=self.ctx.clock())
        run.__exit__(type(error) if error else None, error, None)
        self.lock.release()

    def _new_sink(self) -> CollectionSink:
        config = self.ctx.config
        return CollectionSink(
            config.paths.archive, self.name, JOB, stream=JOB, store=self.ctx.store, rotation=config.storage.rotation,
            compresslevel=config.storage.compresslevel, flush_seconds=config.storage.stream_flush_seconds,
            buffer_messages=config.streams.buffer_messages, disk_ok=self.ctx.disk_ok, clock=self.ctx.clock,
            meta={"platform": "bluesky"}, on_durable=self._durable,
        )

    def _durable(self, time_us: int) -> None:
        """A batch up to `time_us` is on disk (the sink's timer thread): the cursor may move."""
        self.ctx.store.set_stream_cursor(self.name, time_us)
        self.cursor = time_us if self.cursor is None else max(self.cursor, time_us)

    # -- reading ---------------------------------------------------------------------------

    def _event(self, event: str, reason: str | None, at: datetime | None = None) -> None:
        self.ctx.store.record_stream_event(self.name, event, reason, at=at or self.ctx.clock())

    def _run(self) -> None:
        attempt, last_kind = 0, None
        while not self._halt.is_set():
            failure, healthy = self._connect_and_read()
            if failure is None or self._halt.is_set():
                return
            self.last_failure = failure.reason
            attempt = 1 if healthy or failure.kind != last_kind else attempt + 1
            last_kind = failure.kind
            delay = reconnect_delay(failure.kind, attempt, self.backoff) or 0.0
            log.warning("collection=%s: %s; reconnecting in %.2f s (attempt %d)", self.name, failure.reason, delay, attempt)
            if delay and self._halt.wait(delay):
                return
            self._event("reconnect", f"attempt {attempt} after {failure.kind} ({delay:.3g} s wait)")

    def _connect_and_read(self) -> tuple[_Failure | None, bool]:
        """One connection's life: (why it ended, or None when halted; whether it was healthy)."""
        if self._received is None:
            # never read an event: start now, and come back here if this connection drops before one
            self._received = int(self.ctx.clock().timestamp() * 1_000_000)
        url = subscribe_url(self.url, dids=self.follows.subscribed_dids,
                            cursor=resume.resume_cursor(self._received, self.overlap_us))
        try:
            opened = connect(url, open_timeout=OPEN_TIMEOUT, user_agent_header=self.ctx.config.user_agent(),
                             max_size=MAX_MESSAGE_BYTES)
        except InvalidStatus as error:
            return self._connect_failed(_Failure(HTTP, f"HTTP {error.response.status_code} from {self.url}"))
        except (OSError, InvalidHandshake, TimeoutError) as error:
            return self._connect_failed(_Failure(NETWORK, f"{type(error).__name__}: {error}"))
        opened_at, started = self.ctx.clock(), time.monotonic()
        self.connected, self.connected_since = True, opened_at
        self.connects += 1
        self.connection_id = new_connection_id(JOB, opened_at)
        self._event("connect", connect_reason(urlsplit(url).path, self.connection_id, url), opened_at)
        got_messages = False
        with opened as socket:  # closed on the way out, whatever ends the reading
            try:
                failure, got_messages = self._read(socket)
            except Exception as error:  # a fault of ours must not end the capture for good
                log.exception("collection=%s: reading Jetstream failed", self.name)
                failure = _Failure(NETWORK, f"internal error: {type(error).__name__}: {error}")
            finally:
                self.connected = False
        if self._halt.is_set():
            return None, True
        self.disconnects += 1
        self._event("disconnect", f"{failure.kind}: {failure.reason}")
        return failure, got_messages or time.monotonic() - started >= self.healthy_seconds

    def _connect_failed(self, failure: _Failure) -> tuple[_Failure | None, bool]:
        if self._halt.is_set():
            return None, False
        self._event("connect_failed", f"{failure.kind}: {failure.reason}")
        return failure, False

    def _read(self, socket: ClientConnection) -> tuple[_Failure, bool]:
        got_messages = False
        while not self._halt.is_set():
            try:
                raw = socket.recv(timeout=READ_TIMEOUT, decode=False)
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                kind = CLOSED if code in (1000, 1001) else NETWORK
                return _Failure(kind, f"the server closed the connection (code {code})"), got_messages
            got_messages = True
            self.take(raw if isinstance(raw, bytes) else raw.encode(), self.ctx.clock())
        return _Failure(CLOSED, "halted"), got_messages

    def take(self, raw: bytes, captured_at: datetime) -> bool:
        """Capture one message if the collection wants it and does not have it; True if captured."""
        try:
            event = parse_event(raw)
        except NotAnEvent as error:
            self.malformed += 1
            log.error("collection=%s: a message that is not a Jetstream event (%s), not captured: %r",
                      self.name, error, raw[:200])
            return False
        self._received = event.time_us if self._received is None else max(self._received, event.time_us)
        key = event.key
        if key in self._seen:
            self.duplicates += 1
            return False
        if not self.follows.wants(event):
            self.skipped += 1
            return False
        parts = capture_parts(raw, self.sink.template.suffix(captured_at, self.connection_id))
        if not parts:
            self.malformed += 1
            return False
        self._seen[key] = event.time_us
        self.sink.accept(list(parts), 1, captured_at, marker=event.time_us)
        if event.kind in (IDENTITY, ACCOUNT):
            self._observe(event)
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self._since_prune = 0
            resume.prune(self._seen, self._received, self.overlap_us)
        return True

    def _observe(self, event: JetstreamEvent) -> None:
        """An identity or account event of a followed DID: what changed goes to the ledger."""
        try:
            self.book.observe([observation_of(event, account_status(event))])
        except Exception as error:  # the event is captured; the next one or update-usernames sees it again
            self.run.fail_item(f"recording a {event.kind} event in the ledger failed: {error}", account=event.did)

    # -- what status shows -----------------------------------------------------------------

    def status(self, now: datetime) -> dict:
        sink = self.sink
        last = sink.last_message_at
        return {
            "type": JOB,
            "state": "connected" if self.connected else "disconnected",
            "connected": self.connected,
            "connected_since": _iso(self.connected_since) if self.connected else None,
            "error": None,
            "last_disconnect": self.last_failure,
            "messages": sink.messages_total,
            "dropped": sink.dropped_total,
            "skipped": self.skipped,
            "duplicates": self.duplicates,
            "buffered": sink.pending_messages,
            "paused_for_disk": sink.paused,
            "last_message_at": _iso(last),
            "last_message_age_seconds": None if last is None else round((now - last).total_seconds(), 3),
            **cursor_view(self.cursor, now),
            "followed_dids": len(self.follows.dids),
            "file": str(sink.writer.path) if sink.writer.path else None,
            "run": self.run.run_id,
        }


class JetstreamSupervisor:
    """Runs the jetstream collections of a configuration (or only `collections`), live-reloadable.

    The same contract as `StreamSupervisor`: `start()`, `apply_config()` (a collection whose
    follows, keywords or Jetstream URL did not change keeps its connection), `stop()`,
    `status()`, `failure()`, `run_id()`, `flush()`.
    """

    def __init__(self, ctx: JobContext, *, collections: Iterable[str] | None = None,
                 backoff: BackoffPolicy = DEFAULT_BACKOFF, overlap_seconds: float = OVERLAP_SECONDS,
                 lock_retry_seconds: float = 30.0, healthy_seconds: float = 30.0, tick_seconds: float | None = None):
        self.ctx = ctx
        self._only = None if collections is None else set(collections)
        self.backoff = backoff
        self.overlap_seconds = overlap_seconds
        self.lock_retry_seconds = lock_retry_seconds
        self.healthy_seconds = healthy_seconds
        self._tick_seconds = tick_seconds
        self._lock = threading.RLock()
        self._captures: dict[str, JetstreamCapture] = {}
        self._waiting: dict[str, str] = {}
        self._halt = threading.Event()
        self._ticker: threading.Thread | None = None
        self._last_lock_retry = 0.0

    def start(self) -> None:
        with self._lock:
            if self._ticker is not None:
                return
            self._reconcile(self.ctx.config, strict=self._only is not None)
            self._ticker = threading.Thread(target=self._tick_loop, name="jetstream-ticker", daemon=True)
            self._ticker.start()

    def apply_config(self, config: Config) -> None:
        with self._lock:
            self.ctx.config = config
            self._reconcile(config, strict=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, write every buffered event, advance the cursors, close, record the stop."""
        self._halt.set()
        with self._lock:
            captures, self._captures = dict(self._captures), {}
            self._waiting.clear()
        for capture in captures.values():
            capture.halt()
        for capture in captures.values():
            self._close(capture, timeout)
        if self._ticker is not None:
            self._ticker.join(timeout)

    def status(self) -> dict[str, dict]:
        now = self.ctx.clock()
        with self._lock:
            result = {name: capture.status(now) for name, capture in self._captures.items()}
            for name, why in self._waiting.items():
                result[name] = {"state": "waiting", "connected": False, "error": why}
            return result

    def failure(self, name: str) -> str | None:
        return None  # Jetstream needs no credentials: every failure is retried

    def run_id(self, name: str) -> str | None:
        with self._lock:
            capture = self._captures.get(name)
            return capture.run.run_id if capture and capture.run else None

    def flush(self) -> None:
        """Write every buffered event now (tests; the timer does it on its own)."""
        with self._lock:
            sinks = [capture.sink for capture in self._captures.values()]
        for sink in sinks:
            sink.tick(force=True)

    # -- inside ----------------------------------------------------------------------------

    def _reconcile(self, config: Config, strict: bool) -> None:
        wanted = {c.name: c for c in config.collections
                  if c.type == JOB and (self._only is None or c.name in self._only)}
        if strict:
            missing = sorted(self._only - set(wanted)) if self._only else []
            if missing:
                raise UsageError(f"not a jetstream collection in {config.source}: {', '.join(missing)}")
        for name in list(self._waiting):
            if name not in wanted:
                del self._waiting[name]
        for name, capture in list(self._captures.items()):
            collection = wanted.get(name)
            if collection is None:
                self._stop_capture(name)
                continue
            follows = follows_of(config, self.ctx.store, collection)
            if (not follows.same_subscription(capture.follows) or capture.url != config.bluesky.jetstream_url
                    or storage_changed(capture.sink, config)):
                log.info("collection=%s: follows or settings changed: reconnecting", name)
                self._stop_capture(name)
        for name, collection in wanted.items():
            if name not in self._captures:
                self._start_capture(collection, strict)

    def _start_capture(self, collection: Collection, strict: bool) -> None:
        follows = follows_of(self.ctx.config, self.ctx.store, collection)
        capture = JetstreamCapture(self.ctx, collection, follows, backoff=self.backoff,
                                   overlap_seconds=self.overlap_seconds, healthy_seconds=self.healthy_seconds)
        try:
            capture.start()
        except LockBusyError as error:
            if strict:
                raise
            if collection.name not in self._waiting:
                log.warning("collection=%s: %s; retrying every %.0f s", collection.name, error, self.lock_retry_seconds)
            self._waiting[collection.name] = str(error)
            return
        self._waiting.pop(collection.name, None)
        self._captures[collection.name] = capture

    def _stop_capture(self, name: str, timeout: float = 10.0) -> None:
        capture = self._captures.pop(name)
        capture.halt()
        self._close(capture, timeout)

    @staticmethod
    def _close(capture: JetstreamCapture, timeout: float) -> None:
        if not capture.join(timeout):
            log.error("collection=%s: the reading thread did not end within %.0f s", capture.name, timeout)
        capture.close()

    def _tick_loop(self) -> None:
        interval = self._tick_seconds or max(0.05, min(self.ctx.config.storage.stream_flush_seconds, 0.5))
        while not self._halt.wait(interval):
            for capture in list(self._captures.values()):
                try:
                    capture.sink.tick()
                except Exception as error:  # keep the other collections writing; status shows it
                    log.error("collection=%s: writing stream captures failed: %s", capture.name, error)
            if self._waiting and time.monotonic() - self._last_lock_retry >= self.lock_retry_seconds:
                self._last_lock_retry = time.monotonic()
                if self._lock.acquire(blocking=False):
                    try:
                        for name in list(self._waiting):
                            collection = next((c for c in self.ctx.config.collections if c.name == name), None)
                            if collection is not None and not self._halt.is_set():
                                self._start_capture(collection, strict=False)
                    finally:
                        self._lock.release()


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")
