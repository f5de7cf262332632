"""One stream connection on its own thread: connect, read, route, and reconnect with backoff.

The thread reads raw chunks, splits them on the `\\r\\n` framing, drops keep-alives and hands
each batch of messages to a router, which gives every collection its share. Every connect,
failed connect, disconnect (with its reason) and reconnect is reported through `on_event`, so
the state store knows exactly when the stream was not listening.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Iterable, Mapping

from sfm_archiver.jobs.stream_sink import CollectionSink, capture_parts, message_body
from sfm_archiver.platforms.x_stream import (
    AUTH,
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
from sfm_archiver.timeutil import Clock, utcnow

log = logging.getLogger(__name__)

_RULES_KEY = b'"matching_rules":'
_DATA_START = b'{"data"'
_ERRORS_START = b'{"errors"'
_CACHE_LIMIT = 4096


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


# -- routing ---------------------------------------------------------------------------------


class Router:
    """Sends each message to the sinks of the collections it belongs to (a sample stream: all)."""

    def __init__(self) -> None:
        self.sinks: Mapping[str, CollectionSink] = {}
        self.exclusive: CollectionSink | None = None
        self.unrouted = 0
        self.malformed = 0
        self.last_error_message: str | None = None

    def set_sinks(self, sinks: Mapping[str, CollectionSink], exclusive: str | None = None) -> None:
        """Replace the routing table at once (the reading thread sees the old or the new one).

        `exclusive` names the one collection every message is known to belong to (its own
        rules are the only ones on the server), which allows the whole-block fast path.
        """
        sinks = dict(sinks)
        self.exclusive = None
        self.sinks = sinks
        self.exclusive = sinks.get(exclusive) if exclusive is not None else None

    def route_block(self, block: bytes, captured_at: datetime) -> int:
        """Route every complete frame of `block` (it ends with a newline); returns the messages."""
        exclusive = self.exclusive
        if exclusive is not None:
            spliced = splice_block(block, exclusive.template.suffix(captured_at))
            if spliced is not None:
                data, messages = spliced
                if messages:
                    exclusive.accept([data], messages, captured_at)
                    self._note_block_errors(block)
                return messages
        lines = [line for line in block.split(b"\n") if len(line) > 1]
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
        sinks = self.sinks
        if not sinks:
            self.unrouted += len(lines)
            return
        batches: dict[str, list] = {}
        counts: dict[str, int] = {}
        suffixes = {name: sink.template.suffix(captured_at) for name, sink in sinks.items()}
        for line in lines:
            targets = self.targets(line, sinks)
            if not targets:
                self.unrouted += 1
                continue
            body = message_body(line)
            if body is None and not _is_object(line):
                self.malformed += 1
                log.error("stream frame that is not a JSON object, not captured: %r", line[:200])
                continue
            for name in targets:
                batch = batches.get(name)
                if batch is None:
                    batches[name] = batch = []
                    counts[name] = 0
                if body is not None:
                    batch.append(body)
                    batch.append(suffixes[name])
                else:
                    batch.extend(capture_parts(line, sinks[name].template, captured_at, suffixes[name]))
                counts[name] += 1
        for name, batch in batches.items():
            sinks[name].accept(batch, counts[name], captured_at)

    def targets(self, line: bytes, sinks: Mapping[str, CollectionSink]) -> Iterable[str]:
        if not line.startswith(_DATA_START):
            self._note_errors(line)
        return sinks

    def _note_errors(self, line: bytes) -> None:
        """Messages without `data` are errors (an operational disconnect): kept as evidence."""
        described = parse_message_errors(line)
        if described:
            self.last_error_message = described
            log.warning("stream message: %s", described)


def _is_object(line: bytes) -> bool:
    body = line.strip()
    return body.startswith(b"{") and body.endswith(b"}")


def splice_block(block: bytes, suffix: bytes) -> tuple[bytes, int] | None:
    """(every message of `block` with `__sfm` spliced in and keep-alives dropped, messages).

    The whole-block equivalent of splicing frame by frame, in a few C-speed passes: every
    frame must end with CRLF (no other CR) and be either empty (a keep-alive) or end with `}`
    (then its `}\\r\\n` becomes the suffix). None means: route frame by frame.
    """
    newlines = block.count(b"\n")
    if block.count(b"\r") != newlines or b"{}\r\n" in block:
        return None
    spliced = block.replace(b"}\r\n", suffix)
    messages = (len(spliced) - len(block)) // (len(suffix) - 3)
    keepalives = newlines - messages
    if keepalives:
        # each remaining CRLF must be a frame of its own (after a newline, or first)
        if block.count(b"\n\r\n") + block.startswith(b"\r\n") != keepalives:
            return None
        spliced = spliced.replace(b"\r\n", b"")
    return spliced, messages


class FilterRouter(Router):
    """Routes by `matching_rules`: a rule tagged `collection:tag` sends the message there."""

    def __init__(self) -> None:
        super().__init__()
        self._decoder = json.JSONDecoder()
        self._cache: dict[bytes, tuple[str, ...]] = {}

    def targets(self, line: bytes, sinks: Mapping[str, CollectionSink]) -> Iterable[str]:
        at = line.rfind(_RULES_KEY)
        if at < 0:
            return super().targets(line, sinks)
        tail = line[at + len(_RULES_KEY):]
        collections = self._cache.get(tail)
        if collections is None:
            collections = self._collections(tail)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[tail] = collections
        return [name for name in collections if name in sinks]

    def _collections(self, tail: bytes) -> tuple[str, ...]:
        try:
            rules, _ = self._decoder.raw_decode(tail.decode("utf-8", "replace"))
        except ValueError:
            return ()
        names: list[str] = []
        for rule in rules if isinstance(rules, list) else ():
            tag = rule.get("tag") if isinstance(rule, dict) else None
            for name in collections_of_tag(tag if isinstance(tag, str) else ""):
                if name not in names:
                    names.append(name)
        return tuple(names)


def collections_of_tag(tag: str) -> list[str]:
    """`climate:cc` → [climate]; a rule shared by collections has `a:x|b:y` → [a, b]."""
    names = []
    for piece in tag.split("|"):
        name, colon, _ = piece.partition(":")
        if colon and name:
            names.append(name)
    return names


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
        policy: BackoffPolicy = DEFAULT_BACKOFF,
        clock: Clock = utcnow,
        healthy_seconds: float = 30.0,
    ):
        self.kind = kind
        self.router = router
        self.settings = settings
        self.on_event = on_event
        self.before_connect = before_connect
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
                    log.error("%s: %s: stream stopped (fix x.bearer_token, then reload)", self.kind, failure.reason)
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
        self.on_event("connect", f"connected to {STREAM_PATHS[self.kind]}", opened_at)
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
