"""Filtered and sample streams: connections, pacing, keep-alives, faults and the send record.

Each connection is served by the thread of its HTTP request: it writes HTTP chunks holding
many `\\r\\n`-framed messages at once, a bare `\\r\\n` when idle for `keepalive_seconds`, and obeys
commands (operational disconnect, drop, stall) sent by the script or the admin endpoint.
"""

from __future__ import annotations

import json
import random
import select
import socket
import threading
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from sfm_archiver.simulator import bodies
from sfm_archiver.simulator.fields import Requested
from sfm_archiver.simulator.messages import MessageFactory
from sfm_archiver.simulator.rules import Rule, RuleSet
from sfm_archiver.simulator.scenario import StreamSpec
from sfm_archiver.simulator.tweets import STREAM_LOW, format_ms, make_id
from sfm_archiver.simulator.wire import Wire, compact

MAX_BATCH = 500
ENDINGS_CYCLE = 997  # prime, so the endings and the 64 templates do not fall into step
MAX_WAIT = 0.05
_END = b"0\r\n\r\n"
_RULES_KEY = b',"matching_rules":'
_CLOSE = b"}\r\n"

DISCONNECT, DROP, STALL, SHUTDOWN = "operational-disconnect", "drop", "stall", "shutdown"
CLIENT_CLOSED = "client-closed"


@dataclass
class Connection:
    id: int
    kind: str
    opened_at: float
    closed_at: float | None = None
    reason: str | None = None
    commands: list[tuple[str, float]] = field(default_factory=list)
    requested: Requested = Requested()  # the fields and expansions the connection asked for

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "opened_at": self.opened_at, "closed_at": self.closed_at,
                "reason": self.reason}


class StreamHub:
    """All stream connections of one simulator and the record of what they sent."""

    def __init__(self, spec: StreamSpec, rules: RuleSet, messages: MessageFactory, seed: int,
                 clock: Callable[[], float], stopping: threading.Event, wire: Wire | None = None):
        self.spec = spec
        self.wire = wire or Wire()
        self._rules = rules
        self._messages = messages
        self._seed = seed
        self._clock = clock
        self._stopping = stopping
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._batches: list[tuple[int, float, array]] = []
        self._last_ms = 0
        self._sequence = 0
        self.rejected = 0
        self.messages_sent = 0
        self.keepalives_sent = 0

    # connections -----------------------------------------------------------------------------

    def open(self, kind: str, requested: Requested = Requested()) -> Connection | None:
        """Register a connection, or None when `max_connections` of this kind are open (429)."""
        with self._lock:
            active = sum(1 for conn in self._connections if conn.kind == kind and conn.closed_at is None)
            if active >= self.spec.max_connections:
                self.rejected += 1
                return None
            conn = Connection(len(self._connections) + 1, kind, self._clock(), requested=requested)
            self._connections.append(conn)
            return conn

    def command(self, action: str, kind: str | None = None, seconds: float = 0.0) -> int:
        """Queue DISCONNECT, DROP or STALL on every open connection (of `kind`); returns how many."""
        with self._lock:
            targets = [conn for conn in self._connections
                       if conn.closed_at is None and kind in (None, conn.kind)]
            for conn in targets:
                conn.commands.append((action, seconds))
            return len(targets)

    def wait_closed(self, timeout: float) -> bool:
        """Wait until every connection has ended (after `stopping` is set); False at the deadline."""
        deadline = time.monotonic() + timeout
        while any(conn.closed_at is None for conn in self._connections):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def serve(self, conn: Connection, sock: socket.socket, base_url: str) -> None:
        """Write the stream until a command, the client or shutdown ends it; record why."""
        reason = CLIENT_CLOSED
        try:
            reason = _Pump(self, conn, sock, base_url).run()
        except OSError:
            reason = CLIENT_CLOSED
        finally:
            self.mark_closed(conn, reason)
            if reason == DROP:
                _shutdown(sock)

    def mark_closed(self, conn: Connection, reason: str) -> None:
        """Record the end of a connection (once): before its final chunk goes out, so a client
        reconnecting at once is not refused as a second connection."""
        with self._lock:
            if conn.closed_at is None:
                conn.closed_at = self._clock()
                conn.reason = reason

    # records ---------------------------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        with self._lock:
            active = [conn for conn in self._connections if conn.closed_at is None]
            return {"connections_total": len(self._connections), "connections_active": len(active),
                    "active_by_kind": {kind: sum(1 for conn in active if conn.kind == kind)
                                       for kind in ("search", "sample")},
                    "rejected_too_many_connections": self.rejected, "messages_sent": self.messages_sent,
                    "keepalives_sent": self.keepalives_sent}

    def connections(self) -> list[dict[str, Any]]:
        with self._lock:
            return [conn.as_json() for conn in self._connections]

    def messages(self) -> Iterator[dict[str, Any]]:
        """Every message sent: tweet id, epoch time of the write, connection id."""
        with self._lock:
            batches = list(self._batches)
        for conn_id, sent_at, ids in batches:
            for tweet_id in ids:
                yield {"tweet_id": str(tweet_id), "sent_at": sent_at, "connection_id": conn_id}

    # used by the pump ------------------------------------------------------------------------

    def take_command(self, conn: Connection) -> tuple[str, float] | None:
        if self._stopping.is_set():
            return SHUTDOWN, 0.0
        with self._lock:
            return conn.commands.pop(0) if conn.commands else None

    def has_command(self, conn: Connection) -> bool:
        return bool(conn.commands) or self._stopping.is_set()

    def allocate_ids(self, count: int) -> range:
        """`count` consecutive snowflake ids stamped with the current millisecond (count < 2**20)."""
        with self._lock:
            now_ms = int(self._clock() * 1000)
            if now_ms > self._last_ms:
                self._last_ms, self._sequence = now_ms, 0
            if self._sequence + count > 1 << 20:
                self._last_ms, self._sequence = self._last_ms + 1, 0
            first = make_id(self._last_ms, STREAM_LOW | self._sequence)
            self._sequence += count
            return range(first, first + count)

    def record(self, conn: Connection, sent_at: float, ids: range) -> None:
        with self._lock:
            self._batches.append((conn.id, sent_at, array("q", ids)))
            self.messages_sent += len(ids)

    def record_keepalive(self) -> None:
        with self._lock:
            self.keepalives_sent += 1

    def rules_snapshot(self) -> tuple[int, tuple[Rule, ...]]:
        return self._rules.snapshot()

    def templates(self, base_url: str, requested: Requested) -> list[bytes]:
        return self._messages.templates(base_url, requested)

    def rng_for(self, conn: Connection) -> random.Random:
        return random.Random(self._seed * 1_000_003 + conn.id)

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock


class _Pump:
    """The writing loop of one connection."""

    def __init__(self, hub: StreamHub, conn: Connection, sock: socket.socket, base_url: str):
        self.hub, self.conn, self.sock = hub, conn, sock
        self.templates = hub.templates(base_url, conn.requested)
        self.rng = hub.rng_for(conn)
        self.rate = hub.spec.messages_per_second
        self.keepalive = hub.spec.keepalive_seconds
        self.multi = hub.spec.multi_match_probability
        self.filtered = conn.kind == "search"
        self.rules_version = -1
        self.endings: list[bytes] = [_CLOSE]  # what follows each message body, cycled through
        self.counter = 0
        # variant wire: every message re-serialised (other spacing, key order, escapes), and some
        # connections framed with a bare LF; compact keeps X's pre-rendered bytes
        self.variant = hub.wire.is_variant
        self.newline = b"\n" if self.variant and self.rng.random() < 0.4 else b"\r\n"
        self.restart()

    def restart(self) -> None:
        self.started = self.last_write = time.monotonic()
        self.planned = 0

    def run(self) -> str:
        while True:
            command = self.hub.take_command(self.conn)
            if command is not None:
                action, seconds = command
                if action == STALL:
                    if self.stall(seconds):
                        return CLIENT_CLOSED
                    continue
                if action == DISCONNECT:
                    self.send(self.encode(bodies.OPERATIONAL_DISCONNECT) + self.newline)
                if action != DROP:
                    self.hub.mark_closed(self.conn, action)
                    self.sock.sendall(_END)
                return action
            now = time.monotonic()
            due = int((now - self.started) * self.rate) - self.planned
            if due > 0:
                self.refresh_rules()
                if not self.endings:
                    self.planned += due  # nothing matches: those tweets are simply not delivered
                else:
                    self.send_messages(min(due, MAX_BATCH))
                    continue
            if now - self.last_write >= self.keepalive:
                self.send(self.newline)
                self.hub.record_keepalive()
            if self.client_gone(self.wait_time()):
                return CLIENT_CLOSED

    def wait_time(self) -> float:
        now = time.monotonic()
        wait = min(MAX_WAIT, self.last_write + self.keepalive - now)
        if self.rate > 0:
            wait = min(wait, self.started + (self.planned + 1) / self.rate - now)
        return max(0.0, wait)

    def stall(self, seconds: float) -> bool:
        """No bytes at all for `seconds`; True if the client went away meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end and not self.hub.has_command(self.conn):
            if self.client_gone(min(MAX_WAIT, max(0.0, end - time.monotonic()))):
                return True
        self.restart()
        return False

    def refresh_rules(self) -> None:
        """On a rules change, draw a fresh cycle of `matching_rules` endings (none: no messages)."""
        if not self.filtered:
            return
        version, rules = self.hub.rules_snapshot()
        if version == self.rules_version:
            return
        self.rules_version = version
        items = [json.dumps({"id": rule.id, "tag": rule.tag or ""}, separators=(",", ":")).encode() for rule in rules]
        self.endings = [_RULES_KEY + b"[" + b",".join(self.draw_rules(items)) + b"]" + _CLOSE
                        for _ in range(ENDINGS_CYCLE)] if items else []

    def draw_rules(self, items: list[bytes]) -> list[bytes]:
        """A random non-empty subset: more than one rule with the multi-match probability."""
        if len(items) > 1 and self.rng.random() < self.multi:
            return self.rng.sample(items, self.rng.randint(2, min(3, len(items))))
        return [self.rng.choice(items)]

    def send_messages(self, count: int) -> None:
        ids = self.hub.allocate_ids(count)
        stamp = format_ms(int(self.hub.clock() * 1000)).encode()
        templates, endings = self.templates, self.endings
        size, cycle, counter = len(templates), len(endings), self.counter
        parts: list[bytes] = []
        for offset, tweet_id in enumerate(ids, start=counter):
            parts.append(templates[offset % size] % {b"i": b"%d" % tweet_id, b"t": stamp})
            parts.append(endings[offset % cycle])
        if self.variant:
            parts = [self.reserialise(parts[index] + parts[index + 1]) for index in range(0, len(parts), 2)]
        self.counter += count
        sent_at = self.hub.clock()
        self.send(b"".join(parts))
        self.planned += count
        self.hub.record(self.conn, sent_at, ids)

    def encode(self, document: Any) -> bytes:
        return self.hub.wire.encode(document) if self.variant else compact(document)

    def reserialise(self, message: bytes) -> bytes:
        """A compact message (with its CRLF) as the variant wire writes it, framed by this
        connection's newline; rule tags and ids sometimes get a `\\uXXXX` escape as well."""
        document = json.loads(message)
        text = self.hub.wire.encode(document)
        for rule in document.get("matching_rules") or ():
            for value in (rule.get("tag"), rule.get("id")):
                if value and self.rng.random() < 0.5:
                    text = text.replace(compact(value), _escaped(value, self.rng))
        return text + self.newline

    def send(self, payload: bytes) -> None:
        """One HTTP chunk (three writes, to spare copying a large payload)."""
        self.sock.sendall(b"%x\r\n" % len(payload))
        self.sock.sendall(payload)
        self.sock.sendall(b"\r\n")
        self.last_write = time.monotonic()

    def client_gone(self, timeout: float) -> bool:
        """Wait up to `timeout` for the client to close its side (reading whatever it sends)."""
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable:
            return False
        try:
            return not self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True


def _escaped(value: str, rng: random.Random) -> bytes:
    """`value` as a JSON string with one character written as a `\\uXXXX` escape."""
    at = rng.randrange(len(value))
    escape = f"\\u{ord(value[at]):04x}" if ord(value[at]) < 0x10000 else json.dumps(value[at])[1:-1]
    return ('"' + json.dumps(value[:at])[1:-1] + escape + json.dumps(value[at + 1:])[1:-1] + '"').encode()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass

