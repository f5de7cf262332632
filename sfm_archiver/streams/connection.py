"""One stream connection on its own thread: connect, read, route, and reconnect with backoff.

The thread reads raw chunks, splits them on the `\\r\\n` framing, drops keep-alives and hands
each batch of messages to a router, which gives every collection its share. Every connect,
failed connect, disconnect (with its reason) and reconnect is reported through `on_event`, so
the state store knows exactly when the stream was not listening.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Mapping

from sfm_archiver.platforms.x_stream import (
    AUTH,
    AUTH_REMEDY,
    CLOSED,
    DEFAULT_BACKOFF,
    NETWORK,
    STREAM_PATHS,
    BackoffPolicy,
    StreamFailure,
    StreamResponse,
    make_session,
    parse_message_errors,
    reconnect_delay,
)
from sfm_archiver.streams.gaps import connect_reason
from sfm_archiver.streams.routes import RouteReader, collections_of_tag  # noqa: F401 (part of this interface)
from sfm_archiver.streams.sink import CollectionSink, capture_parts, message_body
from sfm_archiver.timeutil import Clock, utcnow

log = logging.getLogger(__name__)

_DATA_START = b'{"data"'
_ERRORS_START = b'{"errors"'


@dataclass(frozen=True)
class ConnectionSettings:
    """What a (re)connect needs, read from the current configuration at each attempt."""

    base_url: str
    token: str
    user_agent: str
    stall_timeout: float
    backfill_minutes: int = 0
    connect_timeout: float = 10.0


EventSink = Callable[[str, "str | None", datetime], None]
_connection_numbers = itertools.count(1)


def new_connection_id(kind: str, opened_at: datetime) -> str:
    """A name for one connection, unique across processes: kind, time, pid, a counter."""
    stamp = opened_at.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{kind}-{stamp}-{os.getpid()}-{next(_connection_numbers)}"


# -- routing ---------------------------------------------------------------------------------


class Router:
    """Sends each message to the sinks of the collections it belongs to (a sample stream: all).

    A message that belongs to no collection being captured here (no sink for one of its
    collections, or none at all) goes to the `unrouted` sink, so nothing read is dropped.
    """

    def __init__(self) -> None:
        self.sinks: Mapping[str, CollectionSink] = {}
        self.exclusive: CollectionSink | None = None
        self.unrouted_sink: CollectionSink | None = None
        self.connection = ""
        self.unrouted = 0  # messages sent to the unrouted sink (or lost, see `unrouted_lost`)
        self.unrouted_lost = 0  # only when there was no unrouted sink to take them
        self.malformed = 0
        self.last_error_message: str | None = None

    def set_sinks(self, sinks: Mapping[str, CollectionSink], exclusive: str | None = None,
                  unrouted: CollectionSink | None = None) -> None:
        """Replace the routing table at once (the reading thread sees the old or the new one).

        `exclusive` names the one collection every message is known to belong to (its own
        rules are the only ones on the server), which allows the whole-block fast path.
        """
        sinks = dict(sinks)
        self.exclusive = None
        self.unrouted_sink = unrouted
        self.sinks = sinks
        self.exclusive = sinks.get(exclusive) if exclusive is not None else None

    def route_block(self, block: bytes, captured_at: datetime) -> int:
        """Route every complete frame of `block` (it ends with a newline); returns the messages."""
        exclusive = self.exclusive
        if exclusive is not None:
            spliced = splice_block(block, exclusive.template.suffix(captured_at, self.connection))
            if spliced is not None:
                data, messages = spliced
                if messages:
                    exclusive.accept([data], messages, captured_at)
                    self._note_block_errors(block)
                return messages
        lines = [line for line in block.split(b"\n") if line.strip(b" \t\r")]
        if lines:
            self.route(lines, captured_at)
        return len(lines)

    def _note_block_errors(self, block: bytes) -> None:
        """An error message ends a stream (operational disconnect): note it for the event."""
        tail = block[-16384:]
        if _ERRORS_START in tail:
            for frame in tail.split(b"\n"):
                if frame.startswith(_ERRORS_START):
                    self._note_errors(frame)

    def route(self, lines: list[bytes], captured_at: datetime) -> None:
        sinks, unrouted, connection = self.sinks, self.unrouted_sink, self.connection
        batches: dict[str, list] = {}
        counts: dict[str, int] = {}
        suffixes = {name: sink.template.suffix(captured_at, connection) for name, sink in sinks.items()}
        stray: list = []
        strays = 0
        for line in lines:
            targets, astray = self.destinations(line, sinks)
            body = message_body(line)
            if body is None and not capture_parts(line, b",}\n"):
                self.malformed += 1
                log.error("stream frame that is not a JSON object, not captured: %r", line[:200])
                continue
            if astray:
                strays += 1
                if unrouted is not None:
                    stray.extend(capture_parts(line, unrouted.template.suffix(captured_at, connection)))
            for name in targets:
                batch = batches.get(name)
                if batch is None:
                    batches[name] = batch = []
                    counts[name] = 0
                if body is not None:
                    batch.append(body)
                    batch.append(suffixes[name])
                else:
                    batch.extend(capture_parts(line, suffixes[name]))
                counts[name] += 1
        for name, batch in batches.items():
            sinks[name].accept(batch, counts[name], captured_at)
        if strays:
            self._unrouted(stray, strays, captured_at)

    def _unrouted(self, parts: list, messages: int, captured_at: datetime) -> None:
        self.unrouted += messages
        if self.unrouted_sink is not None:
            self.unrouted_sink.accept(parts, messages, captured_at)
            return
        self.unrouted_lost += messages
        log.error("%d stream messages belong to no collection being captured and there is no unrouted "
                  "capture to keep them: lost", messages)

    def targets(self, line: bytes, sinks: Mapping[str, CollectionSink]) -> list[str]:
        """The collections among `sinks` the message goes to."""
        return self.destinations(line, sinks)[0]

    def destinations(self, line: bytes, sinks: Mapping[str, CollectionSink]) -> tuple[list[str], bool]:
        """(collections among `sinks` it goes to, whether it also belongs somewhere without a sink)."""
        if not line.startswith(_DATA_START):
            self._note_errors(line)
        return list(sinks), not sinks

    def _note_errors(self, line: bytes) -> None:
        """Messages without `data` are errors (an operational disconnect): kept as evidence."""
        described = parse_message_errors(line)
        if described:
            self.last_error_message = described
            log.warning("stream message: %s", described)


def splice_block(block: bytes, suffix: bytes) -> tuple[bytes, int] | None:
    """(every message of `block` with `__sfm` spliced in and keep-alives dropped, messages).

    The whole-block equivalent of splicing frame by frame for X's compact framing: every frame
    is a keep-alive (`\\r\\n`) or starts with `{"` (so the object is not empty) and ends with
    `}\\r\\n`, with no other CR. Frames are found with `find` (memchr), which costs far less than
    any search for a two-byte pattern over the block. None means: route frame by frame.
    """
    view = memoryview(block)
    parts: list = []
    append, find = parts.append, block.find
    position, end = 0, len(block)
    while position < end:
        newline = find(b"\n", position)
        if newline - position == 1 and block[position] == 13:
            position = newline + 1  # a keep-alive
            continue
        if (newline - position < 5 or block[newline - 1] != 13 or block[newline - 2] != 125
                or block[position] != 123 or block[position + 1] != 34 or find(b"\r", position, newline - 1) >= 0):
            return None
        append(view[position:newline - 2])
        append(suffix)
        position = newline + 1
    return b"".join(parts), len(parts) // 2


class FilterRouter(Router):
    """Routes by `matching_rules`: a rule tagged `collection:tag` sends the message there.

    A message without `matching_rules` (an error message) goes to every collection, as evidence.
    """

    def __init__(self) -> None:
        super().__init__()
        self._reader = RouteReader()

    def destinations(self, line: bytes, sinks: Mapping[str, CollectionSink]) -> tuple[list[str], bool]:
        routes = self._reader.routes(line)
        if routes is None:
            return super().destinations(line, sinks)
        targets = [name for name in routes if name in sinks]
        return targets, len(targets) < len(routes) or not routes


# -- the connection --------------------------------------------------------------------------


class StreamConnection:
    """Keeps one stream (`filter_stream` or `sample_stream`) connected until halted."""

    def __init__(
        self,
        kind: str,
        router: Router,
        settings: Callable[[], ConnectionSettings],
        on_event: EventSink,
        *,
        before_connect: Callable[[], None] | None = None,
        on_open: Callable[[str, StreamResponse], None] | None = None,
        policy: BackoffPolicy = DEFAULT_BACKOFF,
        clock: Clock = utcnow,
        healthy_seconds: float = 30.0,
    ):
        self.kind = kind
        self.router = router
        self.settings = settings
        self.on_event = on_event
        self.before_connect = before_connect
        self.on_open = on_open
        self.policy = policy
        self.clock = clock
        self.healthy_seconds = healthy_seconds
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._response: StreamResponse | None = None
        self._thread = threading.Thread(target=self._run, name=f"stream-{kind}", daemon=True)
        self.connected = False
        self.connected_since: datetime | None = None
        self.fatal: StreamFailure | None = None
        self.last_failure: StreamFailure | None = None
        self.connects = 0
        self.disconnects = 0
        self.connection_id: str | None = None
        self.request_url: str | None = None

    def start(self) -> None:
        self._thread.start()

    def halt(self) -> None:
        """Stop reading now (the socket is shut) and do not reconnect."""
        self._halt.set()
        with self._lock:
            response = self._response
        if response is not None:
            response.abort()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        attempt, last_kind = 0, None
        settings = self.settings()
        session = make_session(settings.base_url, settings.user_agent)
        first = True
        try:
            while not self._halt.is_set():
                current = self.settings()
                if current.base_url != settings.base_url or current.user_agent != settings.user_agent:
                    session.close()
                    session = make_session(current.base_url, current.user_agent)
                settings = current
                failure, healthy = self._connect_and_read(session, settings, backfill=not first)
                first = False
                if failure is None or self._halt.is_set():
                    break
                self.last_failure = failure
                if failure.kind == AUTH:
                    self.fatal = failure
                    self.on_event("error", f"{failure.reason}: the credentials were refused; the stream is "
                                  "stopped until the configuration is fixed and reloaded", self.clock())
                    log.error("%s: %s: stream stopped (%s)", self.kind, failure.reason, AUTH_REMEDY)
                    break
                attempt = 1 if healthy or failure.kind != last_kind else attempt + 1
                last_kind = failure.kind
                delay = reconnect_delay(failure.kind, attempt, self.policy)
                log.warning("%s: %s; reconnecting in %.2f s (attempt %d)", self.kind, failure.reason, delay, attempt)
                if delay and self._halt.wait(delay):
                    break
                self.on_event("reconnect", f"attempt {attempt} after {failure.kind} ({delay:.3g} s wait)", self.clock())
        finally:
            session.close()

    def _connect_and_read(self, session, settings: ConnectionSettings, backfill: bool) -> tuple[StreamFailure | None, bool]:
        """One connection's life: (why it ended or None when halted, whether it was healthy)."""
        try:
            if self.before_connect is not None:
                self.before_connect()
            response = StreamResponse.open(
                session, self.kind, settings.token, stall_timeout=settings.stall_timeout,
                connect_timeout=settings.connect_timeout, backfill_minutes=settings.backfill_minutes if backfill else 0,
            )
        except StreamFailure as failure:
            if not self._halt.is_set():
                self.on_event("connect_failed", f"{failure.kind}: {failure.reason}", self.clock())
            return failure, False
        with self._lock:
            self._response = response
        if self._halt.is_set():
            response.abort()
        opened_at = self.clock()
        started = time.monotonic()
        self.connected, self.connected_since = True, opened_at
        self.connects += 1
        self.router.last_error_message = None
        self.connection_id = new_connection_id(self.kind, opened_at)
        self.request_url = response.url
        self.router.connection = self.connection_id
        if self.on_open is not None:
            self.on_open(self.connection_id, response)
        # the request URL once per connection; each captured line names the connection instead
        self.on_event("connect", connect_reason(STREAM_PATHS[self.kind], self.connection_id, response.url), opened_at)
        try:
            failure, got_messages = self._read(response)
        except Exception as error:  # a fault of ours must not end the stream for good
            log.exception("%s: reading the stream failed", self.kind)
            failure, got_messages = StreamFailure(NETWORK, f"internal error: {type(error).__name__}: {error}"), False
        self.connected = False
        with self._lock:
            self._response = None
        response.close()
        if self._halt.is_set():
            return None, True
        self.disconnects += 1
        self.on_event("disconnect", f"{failure.kind}: {failure.reason}", self.clock())
        return failure, got_messages or time.monotonic() - started >= self.healthy_seconds

    def _read(self, response: StreamResponse) -> tuple[StreamFailure, bool]:
        leftover = b""
        got_messages = False
        router, clock = self.router, self.clock
        try:
            for chunk in response.chunks():
                data = leftover + chunk if leftover else chunk
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    leftover = data
                    continue
                block, leftover = (data, b"") if cut == len(data) else (data[:cut], data[cut:])
                if router.route_block(block, clock()):
                    got_messages = True
        except StreamFailure as failure:
            return failure, got_messages
        if leftover.strip() and not self._halt.is_set():
            log.warning("%s: the stream ended inside a message (%d bytes not captured)", self.kind, len(leftover))
        reason = router.last_error_message or "the server closed the stream"
        return StreamFailure(CLOSED, reason), got_messages
