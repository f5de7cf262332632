"""BlueskySimulator: AppView XRPC over HTTP and Jetstream over WebSocket, on 127.0.0.1.

The HTTP side reuses the X simulator's connection-tracking server (so `stop` also ends idle
keep-alive connections); every XRPC answer carries the rate-limit headers and a Date from the
injected clock.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable, Sequence
from urllib.parse import parse_qs, urlsplit

from sfm_archiver import SOFTWARE
from sfm_archiver.simulator.bluesky import sessions
from sfm_archiver.simulator.bluesky.appview import AppView
from sfm_archiver.simulator.bluesky.ids import plc_did
from sfm_archiver.simulator.bluesky.jetstream import PATH, BackgroundTraffic, EventBuffer, Jetstream
from sfm_archiver.simulator.bluesky.lifecycle import Lifecycle
from sfm_archiver.simulator.bluesky.ratelimits import RATE_LIMITED, XrpcRateLimit
from sfm_archiver.simulator.bluesky.scenario import BlueskyScenario
from sfm_archiver.simulator.bluesky.wire import make_wire
from sfm_archiver.simulator.bluesky.world import World
from sfm_archiver.simulator.lifecycle import EventError, ScriptRunner
from sfm_archiver.simulator.reply import Reply, json_reply
from sfm_archiver.simulator.server import _Server as TrackingServer  # generic: tracks sockets to close them

log = logging.getLogger(__name__)

XRPC = "/xrpc/"
MAX_BODY_BYTES = 1 << 16


class Counters(dict):
    """The counters as a dict; calling it gives the same dict (so `sim.counters()` reads like the X simulator)."""

    def __call__(self) -> Counters:
        return self


class BlueskySimulator:
    """A fake Bluesky AppView and Jetstream; `start()` binds both, the script runs from then."""

    def __init__(self, scenario: BlueskyScenario | None = None, *, clock: Callable[[], float] = time.time,
                 port: int = 0, jetstream_port: int = 0):
        self.scenario = scenario = scenario or BlueskyScenario.default()
        self._clock = clock
        self._port, self._jetstream_port = port, jetstream_port
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._calls = {"xrpc_calls": 0, "429s": 0}
        self._latency = scenario.latency_ms / 1000
        self.wire = make_wire(scenario.wire, scenario.seed)
        self.buffer = EventBuffer(clock, scenario.jetstream.buffer_seconds)
        self.world = World(scenario, clock, self.buffer)
        self.appview = AppView(self.world)
        limit = scenario.rate_limit
        if self.wire.is_variant:  # a window may end before the reset it announces
            limit = dataclasses.replace(limit, early_reset_seconds=min(1.0, limit.window_seconds / 10))
        self.rate_limit = XrpcRateLimit(limit, clock)
        self.lifecycle = Lifecycle(self.world, clock)
        self.sessions = sessions.Sessions(scenario.login, plc_did(scenario.seed, f"login:{scenario.login.identifier}"), clock)
        self.jetstream = Jetstream(self.buffer, self.wire, self._stopping)
        self._traffic = BackgroundTraffic(self.buffer, scenario.seed, scenario.jetstream.events_per_second, clock,
                                          self._stopping)
        self._script = ScriptRunner(self.lifecycle, scenario.script, self._stopping)  # type: ignore[arg-type]
        self._server: TrackingServer | None = None
        self.appview_url = ""
        self.jetstream_url = ""

    # running ---------------------------------------------------------------------------------

    def start(self) -> BlueskySimulator:
        if self._server is not None:
            return self
        self._server = TrackingServer(("127.0.0.1", self._port), _Handler, self)  # type: ignore[arg-type]
        self.appview_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name="sim-bsky-http", daemon=True).start()
        self.jetstream_url = f"ws://127.0.0.1:{self.jetstream.start(self._jetstream_port)}{PATH}"
        self._traffic.start()
        self._script.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self.jetstream.stop()
        self._server = None

    def __enter__(self) -> BlueskySimulator:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # the contract ----------------------------------------------------------------------------

    def did_of(self, handle: str) -> str:
        """The DID of the account with this handle now (deleted accounts too)."""
        for account in self.world.accounts():
            if account.handle == handle.lower():
                return account.did
        raise EventError(f"no account with the handle {handle!r}")

    def post(self, did: str, text: str | None = None, links: Sequence[str] | None = None,
             reply_to: str | None = None) -> str:
        """A new post (a Jetstream commit create); returns its URI. Without `text`, text and links are made up;
        with it, the post has exactly `links` (none when not given)."""
        if links is None and text is not None:
            links = []
        return self.lifecycle.apply({"action": "post", "did": did, "text": text,
                                     "links": None if links is None else list(links), "reply_to": reply_to})["uris"][0]

    def delete_post(self, uri: str) -> None:
        self.lifecycle.apply({"action": "delete_post", "uri": uri})

    def rename(self, did: str, new_handle: str) -> None:
        self.lifecycle.apply({"action": "rename", "did": did, "to": new_handle})

    def takedown(self, did: str) -> None:
        self.lifecycle.apply({"action": "takedown", "did": did})

    def restore(self, did: str) -> None:
        self.lifecycle.apply({"action": "restore", "did": did})

    def deactivate(self, did: str) -> None:
        self.lifecycle.apply({"action": "deactivate", "did": did})

    def reactivate(self, did: str) -> None:
        self.lifecycle.apply({"action": "reactivate", "did": did})

    def delete_account(self, did: str) -> None:
        self.lifecycle.apply({"action": "delete_account", "did": did})

    @property
    def counters(self) -> Counters:
        with self._lock:
            calls = dict(self._calls)
        return Counters(calls, jetstream_connections=self.jetstream.connections, events_sent=self.jetstream.events_sent,
                        **self.sessions.counts)

    def drop_jetstream_connections(self) -> int:
        """Close every Jetstream subscriber's connection (close code 1011); returns how many."""
        return self.jetstream.drop_connections()

    def exhaust_rate_window(self) -> None:
        self.rate_limit.exhaust()

    def set_latency(self, milliseconds: float) -> None:
        """Delay every XRPC answer from now on (a slow AppView; stopping the simulator ends a delay)."""
        self._latency = max(0.0, milliseconds) / 1000

    # additions -------------------------------------------------------------------------------

    def handle_of(self, did: str) -> str:
        return self.world.account(did).handle

    def feed_uris(self, did: str) -> list[str]:
        """URIs of the account's feed items now (posts and reposts), newest first: what paging should yield."""
        with self.world.lock:
            return [item.uri for item in self.world.feed(self.world.account(did), None)]

    def apply_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Apply a script-style event ({"event": name, "handle"|"did": ..., ...}) now."""
        params = {key: value for key, value in event.items() if key not in ("event", "after_seconds")}
        return self.lifecycle.apply({"action": event.get("event"), **params}, source="python")

    def events(self) -> list[dict[str, Any]]:
        """The lifecycle events applied so far (script and Python calls), with results or errors."""
        return self.lifecycle.events()

    def jetstream_events(self) -> list[dict[str, Any]]:
        """The events in the Jetstream buffer, oldest first (as documents, before any wire styling)."""
        return [event.document for event in self.buffer.events()]

    def server_time(self) -> float:
        return self._clock()

    # answering -------------------------------------------------------------------------------

    def answer(self, method: str, target: str, client: str, authorization: str | None = None, body: bytes = b"") -> Reply:
        parts = urlsplit(target)
        if not parts.path.startswith(XRPC):
            return json_reply(404, {"error": "NotFound", "message": "Not Found"}, wire=self.wire)
        nsid = parts.path[len(XRPC):]
        if nsid in sessions.METHODS:
            if method != "POST":
                return json_reply(405, {"error": "InvalidRequest", "message": "use POST"}, wire=self.wire)
            return json_reply(*self.sessions.answer(nsid, body, authorization), wire=self.wire)
        quota = self.rate_limit.take(client)
        headers = self.rate_limit.headers(quota)
        with self._lock:
            self._calls["xrpc_calls"] += 1
            if not quota.allowed:
                self._calls["429s"] += 1
        if not quota.allowed:
            return json_reply(429, RATE_LIMITED, headers, self.wire)
        if self._latency:
            self._stopping.wait(self._latency)
        refusal = self.sessions.refusal(authorization)
        if refusal is not None:
            return json_reply(*refusal, headers, self.wire)
        status, document = self.appview.answer(method, nsid, parse_qs(parts.query, keep_blank_values=True))
        return json_reply(status, document, headers, self.wire)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server: TrackingServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.track(self.connection, add=False)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        simulator: BlueskySimulator = self.server.simulator  # type: ignore[assignment]
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            reply = json_reply(400, {"error": "InvalidRequest", "message": "bad Content-Length"})
        else:
            body = self.rfile.read(int(length))
            try:
                reply = simulator.answer(method, self.path, self.client_address[0], self.headers.get("Authorization"), body)
            except Exception:  # never a traceback to the client
                log.exception("Bluesky simulator failed on %s %s", method, self.path)
                reply = json_reply(500, {"error": "InternalServerError", "message": "Internal Server Error"})
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True

    def version_string(self) -> str:
        return SOFTWARE.replace("sfm-archiver", "sfm-archiver-bluesky-simulator")

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.server.simulator.server_time(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)
