"""Jetstream: a WebSocket server at /subscribe sending JSON events, with a replay buffer.

Every world change lands in the EventBuffer (the world's EventSink) stamped with `time_us` from
the injected clock; several events may share a time_us, as on the real service. A subscriber
gets, in order, the buffered events with time_us >= its `cursor` (none without one) and then the
live ones, filtered by `wantedCollections` (commits only; `prefix.*` allowed) and `wantedDids`
(every kind). Background traffic from made-up DIDs can be added at `events_per_second`.
"""

from __future__ import annotations

import bisect
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.sync.server import Server, ServerConnection, serve

from sfm_archiver.simulator.bluesky import records
from sfm_archiver.simulator.bluesky.ids import TidClock, cid_of, plc_did
from sfm_archiver.simulator.wire import Wire
from sfm_archiver.timeutil import rfc3339_ms

log = logging.getLogger(__name__)

PATH = "/subscribe"
FIRST_SEQ = 1_000_000  # identity/account `seq`, the firehose sequence number they came from


@dataclass(frozen=True)
class Event:
    time_us: int
    did: str
    collection: str | None  # commits only
    document: dict[str, Any]


class EventBuffer:
    """Events in order, the last `buffer_seconds` of them kept for cursors; the world's EventSink."""

    def __init__(self, clock: Callable[[], float], buffer_seconds: float):
        self._clock = clock
        self._keep_us = int(buffer_seconds * 1_000_000)
        self._events: list[Event] = []
        self._times: list[int] = []
        self._base = 0  # absolute index of _events[0]
        self._last_us = 0
        self._seq = FIRST_SEQ
        self._revs = TidClock(7)
        self._changed = threading.Condition()

    # the world's EventSink ---------------------------------------------------------------------

    def commit(self, did: str, operation: str, collection: str, rkey: str,
               record: dict[str, Any] | None, cid: str | None) -> None:
        def body(time_us: int) -> dict[str, Any]:
            commit: dict[str, Any] = {"rev": self._revs.next(time_us), "operation": operation,
                                      "collection": collection, "rkey": rkey}
            if record is not None:
                commit.update({"record": record, "cid": cid})
            return commit
        self._append(did, "commit", collection, body)

    def identity(self, did: str, handle: str) -> None:
        self._append(did, "identity", None, lambda time_us: {"did": did, "handle": handle, **self._stamp(time_us)})

    def account(self, did: str, active: bool, status: str | None) -> None:
        def body(time_us: int) -> dict[str, Any]:
            account: dict[str, Any] = {"active": active, "did": did, **self._stamp(time_us)}
            if status is not None:
                account["status"] = status
            return account
        self._append(did, "account", None, body)

    # reading ---------------------------------------------------------------------------------

    def start(self, cursor: int | None) -> int:
        """The absolute index a subscriber starts at: the first event with time_us >= cursor, or the end."""
        with self._changed:
            if cursor is None:
                return self._base + len(self._events)
            return self._base + bisect.bisect_left(self._times, cursor)

    def read(self, index: int, timeout: float) -> tuple[list[Event], int]:
        """Events from `index` on (waiting up to `timeout` for one), and the index after them."""
        with self._changed:
            index = max(index, self._base)  # fell out of the buffer: go on from the oldest kept
            if index >= self._base + len(self._events):
                self._changed.wait(timeout)
            events = self._events[index - self._base:]
            return events, index + len(events)

    def events(self) -> list[Event]:
        with self._changed:
            return list(self._events)

    # inside ----------------------------------------------------------------------------------

    def _append(self, did: str, kind: str, collection: str | None, body: Callable[[int], dict[str, Any]]) -> None:
        with self._changed:
            time_us = max(self._last_us, int(self._clock() * 1_000_000))
            self._last_us = time_us
            document = {"did": did, "time_us": time_us, "kind": kind, kind: body(time_us)}
            self._events.append(Event(time_us, did, collection, document))
            self._times.append(time_us)
            cut = bisect.bisect_left(self._times, time_us - self._keep_us)
            if cut:
                del self._events[:cut], self._times[:cut]
                self._base += cut
            self._changed.notify_all()

    def _stamp(self, time_us: int) -> dict[str, Any]:
        self._seq += 1
        return {"seq": self._seq, "time": rfc3339_ms(datetime.fromtimestamp(time_us / 1e6, tz=timezone.utc))}


@dataclass(frozen=True)
class Subscription:
    """What one subscriber asked for."""

    collections: tuple[str, ...]
    dids: frozenset[str]
    cursor: int | None

    @classmethod
    def from_query(cls, query: Mapping[str, Sequence[str]]) -> Subscription:
        """Raises ValueError for a cursor that is not an integer."""
        cursor = query.get("cursor", [""])[-1].strip()
        return cls(tuple(query.get("wantedCollections", ())), frozenset(query.get("wantedDids", ())),
                   int(cursor) if cursor else None)

    def wants(self, event: Event) -> bool:
        if self.dids and event.did not in self.dids:
            return False
        if event.collection is None or not self.collections:
            return True
        return any(event.collection == wanted or (wanted.endswith(".*") and event.collection.startswith(wanted[:-1]))
                   for wanted in self.collections)


class Jetstream:
    """The WebSocket server; one thread per subscriber, reading the buffer from its own index."""

    def __init__(self, buffer: EventBuffer, wire: Wire, stopping: threading.Event):
        self._buffer = buffer
        self._wire = wire
        self._stopping = stopping
        self._server: Server | None = None
        self._lock = threading.Lock()
        self._open: set[ServerConnection] = set()
        self.connections = 0
        self.events_sent = 0

    def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1:`port` (0: a free one) in a daemon thread; returns the port."""
        self._server = serve(self._serve, "127.0.0.1", port, process_request=self._check, server_header="jetstream-sim")
        threading.Thread(target=self._server.serve_forever, name="sim-jetstream", daemon=True).start()
        return int(self._server.socket.getsockname()[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def drop_connections(self, code: int = 1011) -> int:
        """Close every subscriber's connection now (a server restart or an overload); returns how many."""
        with self._lock:
            open_now = list(self._open)
        for connection in open_now:
            connection.close(code, "dropped by the simulator")
        return len(open_now)

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        parts = urlsplit(request.path)
        if parts.path != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "not found\n")
        try:
            Subscription.from_query(parse_qs(parts.query))
        except ValueError:
            return connection.respond(HTTPStatus.BAD_REQUEST, "cursor must be an integer (µs)\n")
        return None

    def _serve(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        subscription = Subscription.from_query(parse_qs(urlsplit(connection.request.path).query))
        index = self._buffer.start(subscription.cursor)
        with self._lock:
            self.connections += 1
            self._open.add(connection)
        try:
            while not self._stopping.is_set() and connection.protocol.state is State.OPEN:
                events, index = self._buffer.read(index, timeout=0.2)
                for event in events:
                    if subscription.wants(event):
                        connection.send(self._wire.encode(event.document).decode("utf-8"))
                        with self._lock:
                            self.events_sent += 1
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._open.discard(connection)


class BackgroundTraffic:
    """Commits from made-up DIDs at `events_per_second`: posts (some with #climate, "flood"), likes, deletes."""

    _TEXTS = ("Heavy flood warnings downstream tonight", "Reading about climate adaptation in cities",
              "Flood maps for the valley are out", "Lovely morning at the market ☀️", "New paper on sea level rise",
              "Anyone going to the concert?", "Das Hochwasser steigt weiter", "Coffee first, then code ☕")

    def __init__(self, buffer: EventBuffer, seed: int, events_per_second: float, clock: Callable[[], float],
                 stopping: threading.Event):
        self._buffer = buffer
        self._clock = clock
        self._rate = events_per_second
        self._stopping = stopping
        self._rng = random.Random(f"{seed}:jetstream")
        self._dids = [plc_did(seed, f"traffic:{number}") for number in range(64)]
        self._posts: list[tuple[str, str]] = []  # (did, rkey) to delete later
        self._rkeys = TidClock(99)
        self._thread = threading.Thread(target=self._run, name="sim-jetstream-traffic", daemon=True)

    def start(self) -> None:
        if self._rate > 0:
            self._thread.start()

    def _run(self) -> None:
        started, sent = time.monotonic(), 0
        while not self._stopping.wait(max(0.01, min(0.1, 1 / self._rate))):
            due = int((time.monotonic() - started) * self._rate) - sent
            for _ in range(due):
                self._one()
            sent += due

    def _one(self) -> None:
        rng = self._rng
        did = rng.choice(self._dids)
        now_us = int(self._clock() * 1_000_000)
        roll = rng.random()
        if roll < 0.1 and self._posts:
            gone_did, rkey = self._posts.pop(rng.randrange(len(self._posts)))
            self._buffer.commit(gone_did, "delete", records.POST, rkey, None, None)
            return
        rkey = self._rkeys.next(now_us)
        created = rfc3339_ms(datetime.fromtimestamp(now_us / 1e6, tz=timezone.utc))
        if roll < 0.3:
            subject = f"at://{rng.choice(self._dids)}/{records.POST}/{self._rkeys.next(now_us - 10**9)}"
            record = {"$type": "app.bsky.feed.like", "subject": {"uri": subject, "cid": cid_of(subject.encode())},
                      "createdAt": created}
            self._buffer.commit(did, "create", "app.bsky.feed.like", rkey, record, cid_of(repr(record).encode()))
            return
        tags = ("climate",) if rng.random() < 0.3 else ()
        record = records.make_record(rng, created, 0.2, text=rng.choice(self._TEXTS), tags=tags)
        self._posts.append((did, rkey))
        del self._posts[:-500]
        self._buffer.commit(did, "create", records.POST, rkey, record, cid_of(repr(record).encode()))
