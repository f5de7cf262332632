"""The simulator's HTTP server, the `Simulator` object tests use, and `run_simulator` for the CLI."""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from sfm_archiver import SOFTWARE
from sfm_archiver.simulator import bodies
from sfm_archiver.simulator.admin import handle_admin
from sfm_archiver.simulator.api import ApiRequest, UsersApi, route
from sfm_archiver.simulator.faults import FaultInjector
from sfm_archiver.simulator.gateway import Gateway
from sfm_archiver.simulator.lifecycle import Lifecycle, ScriptRunner
from sfm_archiver.simulator.messages import MessageFactory
from sfm_archiver.simulator.ratelimits import RateLimiter, UsageCap
from sfm_archiver.simulator.reply import Reply, json_reply
from sfm_archiver.simulator.rules import RuleSet
from sfm_archiver.simulator.scenario import Scenario
from sfm_archiver.simulator.shortener import Shortener
from sfm_archiver.simulator.streams import StreamHub
from sfm_archiver.simulator.tweets import TweetFactory
from sfm_archiver.simulator.wire import Wire
from sfm_archiver.simulator.world import World

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


class Simulator:
    """A fake X API v2 + URL shortener on 127.0.0.1; `start()` returns its base URL.

    Usable as a context manager. The Python methods mirror the /_sim admin endpoints.
    """

    def __init__(self, scenario: Scenario | None = None, *, port: int = 0,
                 clock: Callable[[], float] = time.time):
        self.scenario = scenario or Scenario.default()
        self._port = port
        self._clock = clock
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""
        scenario = self.scenario
        factory = TweetFactory(scenario.seed, scenario.links, scenario.long_posts)
        self.wire = Wire(scenario.wire, scenario.seed)
        self.world = World(scenario, factory, clock)
        rules = RuleSet(self.world.now_ms)
        self.hub = StreamHub(scenario.streams, rules, MessageFactory(factory, scenario.streams.message_bytes),
                             scenario.seed, clock, self._stopping, self.wire)
        usage_cap = UsageCap(scenario.usage_cap, clock)
        self._faults = FaultInjector(scenario.faults, scenario.seed)
        self.lifecycle = Lifecycle(self.world, self.hub, usage_cap, self._faults, clock)
        self.gateway = Gateway(scenario.tokens, UsersApi(self.world, factory), rules, self.hub,
                               RateLimiter(scenario.rate_limits, clock), usage_cap, self._faults,
                               scenario.clock_skew_seconds, self._stopping, self.wire)
        self.shortener = Shortener(scenario.shortener, self._stopping)
        self._script = ScriptRunner(self.lifecycle, scenario.script, self._stopping)

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> str:
        """Bind 127.0.0.1:`port` (0 = a free port), serve in a daemon thread, start the script."""
        if self._server is not None:
            return self.base_url
        self._server = _Server(("127.0.0.1", self._port), _Handler, self)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="sim-http", daemon=True)
        self._thread.start()
        self._script.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving: end streams and hung requests, close every connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()  # no new connections from here on
        self.hub.wait_closed(timeout=1.0)  # let streams write their final chunk
        self._server.close_connections()
        self._server = None

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1]) if self.base_url else 0

    # controls (same as /_sim) ----------------------------------------------------------------

    def counters(self) -> dict[str, Any]:
        """Calls per endpoint, 429s and usage-capped answers served, faults, streams, shortener hits."""
        return {**self.gateway.counters(), "streams": self.hub.counters(), "shortener": self.shortener.hits()}

    def published(self, stream_messages: bool = True) -> dict[str, Any]:
        """Posts per account, stream messages sent, stream connections, lifecycle events applied.

        Long fast streams send millions of messages: pass `stream_messages=False` and iterate
        `stream_messages()` instead of building them all as one list.
        """
        return {"posts": self.world.published(),
                "stream_messages": list(self.hub.messages()) if stream_messages else None,
                "connections": self.hub.connections(), "events": self.lifecycle.events()}

    def queries(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """What clients asked for: endpoint and query parameters of the latest authorized requests."""
        return self.gateway.queries(endpoint)

    def stream_messages(self) -> Iterator[dict[str, Any]]:
        return self.hub.messages()

    def apply_event(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a lifecycle event now (same actions as the scenario script)."""
        return self.lifecycle.apply(event, source="admin")

    def faults(self) -> dict[str, Any]:
        return dataclasses.asdict(self._faults.spec)

    def set_faults(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge fault settings live (keys as in the scenario `faults` section)."""
        return dataclasses.asdict(self._faults.update(changes))

    def server_time(self) -> float:
        """The server's idea of now (Date header), shifted by `clock_skew_seconds`."""
        return self._clock() + self.scenario.clock_skew_seconds

    # request routing -------------------------------------------------------------------------

    def answer(self, method: str, target: str, authorization: str | None, body: bytes) -> Reply:
        parts = urlsplit(target)
        path = parts.path
        if path.startswith("/_sim/"):
            return handle_admin(self, method, path, parse_qs(parts.query), body)
        if path.startswith("/s/"):
            return self.shortener.handle(method, path, self.base_url)
        found = route(method if method != "HEAD" else "GET", path)
        if found is None:
            return json_reply(404, bodies.ROUTE_NOT_FOUND)
        if found == "method":
            return json_reply(405, bodies.method_not_allowed())
        endpoint, path_params = found
        token = None
        if authorization and authorization.startswith("Bearer "):
            token = authorization[len("Bearer "):].strip()
        request = ApiRequest(method, path, parse_qs(parts.query, keep_blank_values=True), self.base_url, token,
                             body, endpoint, {key: unquote(value) for key, value in path_params.items()})
        return self.gateway.handle(request)


class BadRequestBody(ValueError):
    """The request body cannot be read (a missing or absurd Content-Length)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], handler: type, simulator: Simulator):
        self.simulator = simulator
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, sock: socket.socket, add: bool) -> None:
        with self._sockets_lock:
            (self._sockets.add if add else self._sockets.discard)(sock)

    def close_connections(self) -> None:
        """Unblock every handler thread (idle keep-alive readers included)."""
        with self._sockets_lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms.
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

    def do_POST(self) -> None:
        self._serve("POST")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        simulator = self.server.simulator
        try:
            body = self._read_body()
            reply = simulator.answer(method, self.path, self.headers.get("Authorization"), body)
        except BadRequestBody as error:
            reply = json_reply(400, bodies.invalid_request(None, [], str(error)))
            self.close_connection = True  # the rest of the request cannot be told from the next one
        except Exception:  # never a traceback to the client
            log.exception("simulator failed on %s %s", method, self.path)
            reply = json_reply(500, bodies.server_error(500))
        try:
            self._write(method, reply)
        except OSError:
            self.close_connection = True

    def _read_body(self) -> bytes:
        raw = self.headers.get("Content-Length") or "0"
        if not raw.isdigit() or int(raw) > MAX_BODY_BYTES:
            raise BadRequestBody(f"Content-Length {raw!r} is not a number up to {MAX_BODY_BYTES}")
        return self.rfile.read(int(raw)) if int(raw) else b""

    def _write(self, method: str, reply: Reply) -> None:
        if reply.abort:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            self.send_header(name, value)
        if reply.stream is not None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")  # a stream ends its connection
            self.end_headers()
            self.server.simulator.hub.serve(reply.stream, self.connection, self.server.simulator.base_url)
            return
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(reply.body)

    def version_string(self) -> str:
        return SOFTWARE.replace("sfm-archiver", "sfm-archiver-simulator")

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(self.server.simulator.server_time(), usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


def run_simulator(port: int, scenario_path: Path | None, announce: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM; `announce` gets the listening URL once the port is bound."""
    scenario = Scenario.from_yaml(Path(scenario_path)) if scenario_path else Scenario.default()
    simulator = Simulator(scenario, port=port)
    # SIGINT explicitly too: a process started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler for it.
    previous = {number: signal.signal(number, _raise_interrupt) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        url = simulator.start()
        announce(f"Simulator listening on {url}")
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        simulator.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
