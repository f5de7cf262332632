"""Stream collections: one supervised connection per stream kind, routed to per-collection files.

X allows one filtered-stream connection per app, so every `filter_stream` collection shares
one connection, and its rules are kept equal to the configuration; `sample_stream`
collections share the sample stream. `StreamSupervisor` is what the daemon runs (and reloads
on SIGHUP); `run_stream` is the foreground `stream COLLECTION` command.

Events are recorded per collection in the state store (`start`, `connect`, `connect_failed`,
`disconnect`, `reconnect`, `error`, `stop`), so `status` can tell when each collection was not
listening; `streams.gaps` turns them into the gaps of a time window.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

from sfm_archiver.config import Collection, Config
from sfm_archiver.errors import AuthError, LockBusyError, UsageError
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.runs import RunRecorder
from sfm_archiver.locks import FileLock, collection_lock
from sfm_archiver.platforms.x_stream import (
    DEFAULT_BACKOFF,
    STREAM_PATHS,
    BackoffPolicy,
    RulesClient,
    StreamFailure,
    make_session,
    stream_endpoint,
)
from sfm_archiver.storage.layout import UNROUTED
from sfm_archiver.storage.warc import WarcWriter, api_writer
from sfm_archiver.storage.writer import seal_abandoned_files
from sfm_archiver.streams.connection import ConnectionSettings, FilterRouter, Router, StreamConnection
from sfm_archiver.streams.gaps import connect_reason, note_unclean_end
from sfm_archiver.streams.routes import collections_of_tag
from sfm_archiver.streams.rules import RulesSync, desired_rules, sync_rules
from sfm_archiver.streams.sink import CollectionSink, storage_changed

log = logging.getLogger(__name__)

STREAM_TYPES = ("filter_stream", "sample_stream")
EXCLUSIVE_GRACE_SECONDS = 10.0
COMPRESS_WORKERS = max(1, min(4, os.cpu_count() or 1))  # a busy stream's batches are gzipped on this many cores


@dataclass
class _Active:
    """A collection being captured: its lock, sink and run record."""

    collection: Collection
    lock: FileLock
    sink: CollectionSink
    run: RunRecorder
    started_at: datetime
    rule_problems: list[str] = field(default_factory=list)
    error: str | None = None
    unrouted_at_start: int = 0
    warc: WarcWriter | None = None  # the request of each connection, when the collection's `warc:` is on


class StreamSupervisor:
    """Runs the stream collections of a configuration (or only `collections`), live-reloadable.

    `start()` takes each collection's `stream` lock (a busy lock raises LockBusyError when
    collections were named, and is retried later in the daemon), seals files a dead process
    left, syncs the rules and connects. `apply_config()` applies a reloaded configuration
    without dropping the connection when only rules changed. `stop()` flushes and closes all.
    """

    def __init__(
        self,
        ctx: JobContext,
        *,
        collections: Iterable[str] | None = None,
        backoff: BackoffPolicy = DEFAULT_BACKOFF,
        tick_seconds: float | None = None,
        lock_retry_seconds: float = 30.0,
        rules_retry_seconds: float = 10.0,
        healthy_seconds: float = 30.0,
    ):
        self.ctx = ctx
        self._only = None if collections is None else set(collections)
        self._config = ctx.config
        self.backoff = backoff
        self._tick_seconds = tick_seconds
        self.lock_retry_seconds = lock_retry_seconds
        self.rules_retry_seconds = rules_retry_seconds
        self.healthy_seconds = healthy_seconds
        self._lock = threading.RLock()
        self._active: dict[str, _Active] = {}
        self._waiting: dict[str, str] = {}
        self._routers: dict[str, Router] = {"filter_stream": FilterRouter(), "sample_stream": Router()}
        self._connections: dict[str, StreamConnection] = {}
        self._rules_lock = threading.Lock()
        self._desired: dict[str, str] | None = None
        self._rules_dirty = False
        self._rules_error: str | None = None
        self._rules_state: RulesSync | None = None
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._ticker: threading.Thread | None = None
        self._names_by_kind: dict[str, tuple[str, ...]] = {}
        self._retired: dict[str, StreamConnection] = {}
        self._exclusive_after = 0.0
        self._compressors = ThreadPoolExecutor(COMPRESS_WORKERS - 1, thread_name_prefix="stream-gzip") if COMPRESS_WORKERS > 1 else None
        self._last_lock_retry = 0.0
        self._last_rules_retry = 0.0
        self._unrouted: CollectionSink | None = None
        self._unrouted_closed = 0

    # -- the contract ----------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._ticker is not None:
                return
            self._reconcile(self._config, strict=self._only is not None)
            self._ticker = threading.Thread(target=self._tick_loop, name="stream-ticker", daemon=True)
            self._ticker.start()

    def apply_config(self, config: Config) -> None:
        """Apply a reloaded configuration: collections added/removed, rules re-synced live."""
        with self._lock:
            old = self._config
            self._config = config
            restart = _connection_settings_changed(old, config)
            if restart:
                log.info("stream connection settings changed: reconnecting")
                self._rules_dirty = True  # another endpoint or app may hold other rules
                for kind in list(self._connections):
                    self._close_connection(kind)
            self._reconcile(config, strict=False)
        if self._rules_dirty and self._filter_connected():
            self._try_sync_rules()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop reading, write every buffered message, close the files, record the stop."""
        self._halt.set()
        self._wake.set()
        with self._lock:
            for active in self._active.values():
                active.sink.stop_waiting()
            connections, self._connections = self._connections, {}
            self._retired.update(connections)
        for kind, connection in connections.items():
            _halt_and_join(kind, connection, timeout)
        if self._ticker is not None:
            self._ticker.join(timeout)
        with self._lock:
            for name in list(self._active):
                self._stop_collection(name)
            self._waiting.clear()
            self._close_unrouted()
        if self._compressors is not None:
            self._compressors.shutdown(wait=True)

    def status(self) -> dict[str, dict]:
        """Per collection: live connection state, messages, drops, errors (no file scans)."""
        now = self.ctx.clock()
        with self._lock:
            result = {}
            for name, active in self._active.items():
                connection = self._connections.get(active.collection.type)
                sink = active.sink
                failure = connection.fatal if connection else None
                last = sink.last_message_at
                result[name] = {
                    "type": active.collection.type,
                    "state": "failed" if (failure or active.error) else
                             "connected" if connection and connection.connected else "disconnected",
                    "connected": bool(connection and connection.connected),
                    "connected_since": _iso(connection.connected_since) if connection and connection.connected else None,
                    "error": active.error or (failure.reason if failure else None),
                    "last_disconnect": connection.last_failure.reason if connection and connection.last_failure else None,
                    "messages": sink.messages_total,
                    "dropped": sink.dropped_total,
                    "buffered": sink.pending_messages,
                    "paused_for_disk": sink.paused,
                    "last_message_at": _iso(last),
                    "last_message_age_seconds": None if last is None else round((now - last).total_seconds(), 3),
                    "file": str(sink.writer.path) if sink.writer.path else None,
                    "rule_problems": list(active.rule_problems),
                    "rules_error": self._rules_error if active.collection.type == "filter_stream" else None,
                    "run": active.run.run_id,
                    "unrouted": self.unrouted_messages,
                }
            for name, why in self._waiting.items():
                result[name] = {"state": "waiting", "connected": False, "error": why}
            return result

    # -- for run_stream and tests ----------------------------------------------------------

    def failure(self, name: str) -> str | None:
        """Why a collection cannot capture (credentials refused), or None."""
        with self._lock:
            active = self._active.get(name)
            if active is None:
                return None
            connection = self._connections.get(active.collection.type)
            if connection is not None and connection.fatal is not None:
                return connection.fatal.reason
            return active.error

    def run_id(self, name: str) -> str | None:
        with self._lock:
            active = self._active.get(name)
            return active.run.run_id if active else None

    def flush(self) -> None:
        """Write every buffered message now (tests; the timer does it on its own)."""
        with self._lock:
            sinks = [active.sink for active in self._active.values()] + self._unrouted_sinks()
        for sink in sinks:
            sink.tick(force=True)

    # -- collections -----------------------------------------------------------------------

    def _reconcile(self, config: Config, strict: bool) -> None:
        wanted = {
            c.name: c for c in config.collections
            if c.type in STREAM_TYPES and (self._only is None or c.name in self._only)
        }
        if strict:
            missing = sorted(self._only - set(wanted)) if self._only else []
            if missing:
                raise UsageError(f"not a stream collection in {config.source}: {', '.join(missing)}")
        for name in list(self._active):
            active = self._active[name]
            if name not in wanted or wanted[name].type != active.collection.type or _storage_changed(active, config):
                self._stop_collection(name)
        for name in list(self._waiting):
            if name not in wanted:
                del self._waiting[name]
        for name, collection in wanted.items():
            if name in self._active:
                self._active[name].collection = collection
            else:
                self._start_collection(collection, strict)
        desired = desired_rules(config.collections)
        if desired != self._desired:
            self._desired = desired
            self._rules_dirty = True
        self._refresh_routing()

    def _start_collection(self, collection: Collection, strict: bool) -> None:
        name = collection.name
        lock = collection_lock(self.ctx.config.paths.state, name, "stream")
        try:
            lock.acquire()
        except LockBusyError as error:
            if strict:
                raise
            if name not in self._waiting:
                log.warning("collection=%s: %s; retrying every %.0f s", name, error, self.lock_retry_seconds)
            self._waiting[name] = str(error)
            return
        self._waiting.pop(name, None)
        store = self.ctx.store
        try:
            for path, removed in seal_abandoned_files(store, name):
                log.warning("collection=%s: sealed %s left open by a dead process (%d torn bytes cut)", name, path, removed)
            note_unclean_end(store, name)
            run = RunRecorder(store, collection.type, name).__enter__()
            sink = self._new_sink(name, collection.type)
            warc = api_writer(self.ctx, name, "stream", collection.type, self._config)
            if self._unrouted is None:
                self._unrouted = self._new_unrouted_sink()
        except BaseException:
            lock.release()
            raise
        now = self.ctx.clock()
        self._active[name] = _Active(collection, lock, sink, run, now, unrouted_at_start=self.unrouted_messages, warc=warc)
        store.record_stream_event(name, "start", f"{collection.type} capture started", at=now)
        connection = self._connections.get(collection.type)
        if connection is not None and connection.connected:
            reason = connect_reason(STREAM_PATHS[collection.type], connection.connection_id or "", connection.request_url or "")
            store.record_stream_event(name, "connect", f"joined the open connection: {reason}", at=self.ctx.clock())

    def _new_sink(self, name: str, stream: str, **options) -> CollectionSink:
        config = self._config
        return CollectionSink(
            config.paths.archive, name, stream, stream=stream, store=self.ctx.store, rotation=config.storage.rotation,
            compresslevel=config.storage.compresslevel, flush_seconds=config.storage.stream_flush_seconds,
            buffer_messages=config.streams.buffer_messages, disk_ok=self.ctx.disk_ok, clock=self.ctx.clock,
            wake=self._wake, compressors=self._compressors, compress_workers=COMPRESS_WORKERS, **options,
        )

    def _new_unrouted_sink(self) -> CollectionSink:
        """Where messages of no collection being captured here go (never dropped, see README).

        Every process writes its own files there (names are taken exclusively), so a daemon and
        a one-shot `stream` command can both keep theirs without a lock.
        """
        for path, removed in seal_abandoned_files(self.ctx.store, UNROUTED):
            log.warning("%s: sealed %s left open by a dead process (%d torn bytes cut)", UNROUTED, path, removed)
        return self._new_sink(UNROUTED, "stream", counts_every=0.0)  # rare; recorded with every write

    def _unrouted_sinks(self) -> list[CollectionSink]:
        return [self._unrouted] if self._unrouted is not None else []

    def _close_unrouted(self) -> None:
        sink, self._unrouted = self._unrouted, None
        if sink is None:
            return
        self._update_routes()
        try:
            sink.close()
        except Exception as error:  # logged; the collections' runs are already recorded
            log.error("%s: closing the capture file failed: %s", UNROUTED, error)
        self._unrouted_closed += sink.messages_total
        if sink.messages_total:
            log.warning("%d stream messages belonged to no collection being captured: kept in %s/",
                        sink.messages_total, UNROUTED)

    @property
    def unrouted_messages(self) -> int:
        """Messages written (or buffered) to `_unrouted` by this supervisor so far."""
        sink = self._unrouted
        return (sink.messages_total + self._unrouted_closed) if sink is not None else self._unrouted_closed

    def _stop_collection(self, name: str) -> None:
        active = self._active.pop(name)
        self._update_routes()
        error: BaseException | None = None
        try:
            active.sink.close()
            if active.warc is not None:
                active.warc.close()
        except Exception as failure:  # the run records it; the lock must still be released
            error = failure
            log.error("collection=%s: closing the capture file failed: %s", name, failure)
        kind = active.collection.type
        connection = self._connections.get(kind) or self._retired.get(kind)
        fatal = connection.fatal if connection is not None else None
        run = active.run
        run.counts.update(messages=active.sink.messages_total, dropped=active.sink.dropped_total)
        unrouted = self.unrouted_messages - active.unrouted_at_start
        run.counts.update(unrouted=unrouted)
        if unrouted:
            run.warn(f"{unrouted} messages belonged to no collection being captured: kept in {UNROUTED}/")
        if connection is not None:
            run.counts.update(connects=connection.connects, disconnects=connection.disconnects)
        if active.sink.dropped_total:
            run.warn(f"{active.sink.dropped_total} messages dropped (disk low, buffer full)")
        self.ctx.store.record_stream_event(name, "stop", "capture stopped", at=self.ctx.clock())
        if fatal is not None and error is None:
            error = AuthError(fatal.reason)
        run.__exit__(type(error) if error else None, error, None)
        active.lock.release()

    def _refresh_routing(self) -> None:
        self._update_routes()
        for kind in STREAM_TYPES:
            needed = any(a.collection.type == kind for a in self._active.values()) and not self._halt.is_set()
            if needed and kind not in self._connections:
                self._open_connection(kind)
            elif not needed and kind in self._connections:
                self._close_connection(kind)

    def _update_routes(self) -> None:
        """New routing tables and event recipients, swapped in whole (read without locks)."""
        for kind, router in self._routers.items():
            sinks = {n: a.sink for n, a in self._active.items() if a.collection.type == kind}
            router.set_sinks(sinks, self._exclusive(kind, sinks), self._unrouted)
        self._names_by_kind = {
            kind: tuple(n for n, a in self._active.items() if a.collection.type == kind) for kind in STREAM_TYPES
        }

    def _exclusive(self, kind: str, sinks: dict) -> str | None:
        """The one collection that every message of this stream belongs to, if there is one.

        For the filtered stream that needs the server's rules, as last synced, to be that
        collection's alone, and a short wait after rules of others were deleted (messages
        matched by them may still be on the way).
        """
        if len(sinks) != 1:
            return None
        (name,) = sinks
        if kind == "sample_stream":
            return name
        state = self._rules_state
        if self._rules_dirty or state is None or time.monotonic() < self._exclusive_after:
            return None
        if all(collections_of_tag(rule.get("tag") or "") == [name] for rule in state.active):
            return name
        return None

    def _refresh_exclusive(self) -> None:
        router = self._routers["filter_stream"]
        sinks = dict(router.sinks)
        wanted = self._exclusive("filter_stream", sinks)
        current = router.exclusive
        if (wanted is None) != (current is None) or (wanted is not None and sinks.get(wanted) is not current):
            router.set_sinks(sinks, wanted, self._unrouted)

    # -- connections -----------------------------------------------------------------------

    def _open_connection(self, kind: str) -> None:
        connection = StreamConnection(
            kind, self._routers[kind], lambda: self._settings(kind), lambda *e, k=kind: self._on_event(k, *e),
            before_connect=self._sync_rules_if_dirty if kind == "filter_stream" else None,
            on_open=lambda connection, response, k=kind: self._record_request(k, connection, response),
            policy=self.backoff, clock=self.ctx.clock, healthy_seconds=self.healthy_seconds,
        )
        self._connections[kind] = connection
        connection.start()

    def _close_connection(self, kind: str, timeout: float = 10.0) -> None:
        self._retired[kind] = self._connections.pop(kind)
        _halt_and_join(kind, self._retired[kind], timeout)

    def _settings(self, kind: str) -> ConnectionSettings:
        config = self._config
        backfill = max((c.backfill_minutes for c in config.collections if c.type == kind), default=0)
        base_url, token, timeout = stream_endpoint(config)
        return ConnectionSettings(
            base_url=base_url, token=token, user_agent=config.user_agent(),
            stall_timeout=config.streams.stall_timeout, backfill_minutes=backfill,
            connect_timeout=min(timeout, 30.0),
        )

    def _on_event(self, kind: str, event: str, reason: str | None, at: datetime) -> None:
        for name in self._names_by_kind.get(kind, ()):
            self.ctx.store.record_stream_event(name, event, reason, at=at)

    def _record_request(self, kind: str, connection: str, response) -> None:
        """The request of a new connection (headers only: the body is the stream) in the WARC
        of each collection it serves whose `warc:` is on; runs on the reading thread."""
        for active in list(self._active.values()):
            if active.collection.type != kind or active.warc is None:
                continue
            try:
                active.warc.write_exchange(response.response, b"", truncated="unspecified")
            except Exception as error:  # evidence only: the capture goes on
                log.error("collection=%s: recording the request of connection %s failed: %s",
                          active.collection.name, connection, error)

    def _filter_connected(self) -> bool:
        connection = self._connections.get("filter_stream")
        return bool(connection and connection.connected)

    # -- rules -----------------------------------------------------------------------------

    def _sync_rules_if_dirty(self) -> None:
        """Before a filter connect: make the server's rules match (raises StreamFailure)."""
        if self._rules_dirty:
            self._sync_rules()

    def _try_sync_rules(self) -> None:
        try:
            self._sync_rules()
        except StreamFailure as failure:
            log.error("stream rules not synced (retrying in %.0f s): %s", self.rules_retry_seconds, failure.reason)

    def _sync_rules(self) -> None:
        with self._rules_lock:
            desired = self._desired or {}
            config = self._config
            base_url, token, timeout = stream_endpoint(config)
            session = make_session(base_url, config.user_agent())
            try:
                result = sync_rules(RulesClient(session, token, timeout), desired)
            except StreamFailure as failure:
                self._rules_error = failure.reason
                raise
            finally:
                session.close()
            self._rules_error = None
            self._rules_state = result
            if result.deleted:
                self._exclusive_after = time.monotonic() + EXCLUSIVE_GRACE_SECONDS
            if desired == self._desired:
                self._rules_dirty = False
            # runs on the reading thread too: a snapshot instead of the supervisor's lock
            actives = dict(self._active)
            for active in actives.values():
                active.rule_problems = []
            for problem in result.problems:
                for name in problem.collections:
                    active = actives.get(name)
                    if active is not None:
                        active.rule_problems.append(problem.message)
                        active.run.warn(problem.message)

    # -- the timer -------------------------------------------------------------------------

    def _tick_interval(self) -> float:
        if self._tick_seconds is not None:
            return self._tick_seconds
        return max(0.05, min(self._config.storage.stream_flush_seconds, 0.5))

    def _tick_loop(self) -> None:
        while not self._halt.is_set():
            self._wake.wait(self._tick_interval())
            self._wake.clear()
            if self._halt.is_set():
                break
            self._tick()

    def _tick(self) -> None:
        # Writing never waits for the supervisor's lock: a reload holding it may be waiting
        # for a reading thread that waits for this writer to make room.
        actives = list(self._active.items())
        sinks = [(name, active.sink) for name, active in actives]
        for _name, active in actives:
            if active.warc is not None:
                active.warc.rotate_if_due()
        for name, sink in sinks + [(UNROUTED, sink) for sink in self._unrouted_sinks()]:
            try:
                sink.tick()
            except Exception as error:  # keep the other collections writing; status shows it
                log.error("collection=%s: writing stream captures failed: %s", name, error)
        if not self._lock.acquire(blocking=False):
            return  # a reload is under way: the rest can wait for the next tick
        try:
            self._refresh_exclusive()
            now = time.monotonic()
            if self._waiting and now - self._last_lock_retry >= self.lock_retry_seconds:
                self._last_lock_retry = now
                for name in list(self._waiting):
                    try:
                        collection = self._config.collection(name)
                    except KeyError:
                        continue
                    self._start_collection(collection, strict=False)
                self._refresh_routing()
        finally:
            self._lock.release()
        if self._rules_dirty and self._filter_connected() and now - self._last_rules_retry >= self.rules_retry_seconds:
            self._last_rules_retry = now
            self._try_sync_rules()


def run_stream(
    ctx: JobContext, collection_name: str, duration: float | None = None, *,
    backoff: BackoffPolicy = DEFAULT_BACKOFF, poll_seconds: float = 0.2,
) -> dict:
    """Capture one stream collection (X or Jetstream) in the foreground until `duration` or `ctx.stop`.

    Returns the run record. The credentials being refused ends the run as failed (no retry loop).
    """
    try:
        collection = ctx.config.collection(collection_name)
    except KeyError:
        raise UsageError(f"no collection named {collection_name!r} in {ctx.config.source}") from None
    if collection.type not in STREAM_TYPES + ("jetstream",):
        raise UsageError(f"collection {collection_name!r} is a {collection.type} collection, not a stream")
    if collection.type == "jetstream":
        from sfm_archiver.streams.jetstream import JetstreamSupervisor

        supervisor: StreamSupervisor | JetstreamSupervisor = JetstreamSupervisor(
            ctx, collections=[collection_name], backoff=backoff)
    else:
        supervisor = StreamSupervisor(ctx, collections=[collection_name], backoff=backoff)
    supervisor.start()
    run_id = supervisor.run_id(collection_name)
    deadline = None if duration is None else time.monotonic() + duration
    try:
        while not ctx.stop.is_set():
            if supervisor.failure(collection_name):
                break
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            ctx.stop.wait(poll_seconds if remaining is None else min(poll_seconds, remaining))
            ctx.report(_progress_line(collection_name, supervisor.status().get(collection_name, {})))
    finally:
        supervisor.stop()
    return ctx.store.run(run_id)


def _progress_line(name: str, status: dict) -> str:
    state = status.get("state", "?")
    age = status.get("last_message_age_seconds")
    last = f", last {age:.1f} s ago" if age is not None else ""
    dropped = f", {status['dropped']} dropped" if status.get("dropped") else ""
    dropped += f", {status['unrouted']} to {UNROUTED}" if status.get("unrouted") else ""
    return f"{name}: {state}, {status.get('messages', 0)} messages{dropped}{last}"


def _halt_and_join(kind: str, connection: StreamConnection, timeout: float) -> None:
    """The reading thread never waits for the supervisor's lock, so this may run under it."""
    connection.halt()
    if not connection.join(timeout):
        log.error("%s: the reading thread did not end within %.0f s", kind, timeout)


def _connection_settings_changed(old: Config, new: Config) -> bool:
    return (stream_endpoint(old)[:2], old.user_agent()) != (stream_endpoint(new)[:2], new.user_agent())


def _storage_changed(active: _Active, config: Config) -> bool:
    return storage_changed(active.sink, config)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")
