"""Stream framing: messages split across chunks, merged into one, cut inside `\\r\\n`, keep-alives
anywhere, a partial message at the end. Every whole message is routed exactly once, byte for byte
and in order; a partial one never is; the end of the connection is always reported.

A tiny HTTP server on 127.0.0.1 writes the planned bytes in the planned HTTP chunks (then ends the
stream cleanly or drops the socket); the real StreamConnection reads it.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.streams.connection import ConnectionSettings, Router, StreamConnection
from tests.chaos.helpers import wait_for

messages = st.lists(
    st.builds(lambda n, text: json.dumps({"data": {"id": str(10**18 + n), "text": text}}, ensure_ascii=False,
                                         separators=(",", ":")).encode(),
              st.integers(0, 10**6), st.text(max_size=40)),
    min_size=0, max_size=12)


class Recorder(Router):
    """Keeps what the connection routes (the framing's output)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[bytes] = []

    def route(self, lines, captured_at) -> None:
        self.lines.extend(lines)


def serve_once(payload: bytes, cuts: list[int], clean_end: bool) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            bounds = [0, *sorted(set(c for c in cuts if 0 < c < len(payload))), len(payload)]
            for start, end in zip(bounds, bounds[1:], strict=False):
                piece = payload[start:end]
                self.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece))
                self.wfile.flush()
            if clean_end:
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return server


@settings(max_examples=60, deadline=None)
@given(messages, st.lists(st.integers(0, 2000), max_size=15), st.lists(st.integers(0, 12), max_size=5),
       st.integers(0, 40), st.booleans())
def test_every_whole_message_is_routed_once_in_order(sent, cuts, keepalive_slots, partial, clean_end):
    frames = [message + b"\r\n" for message in sent]
    for slot in keepalive_slots:
        frames.insert(min(slot, len(frames)), b"\r\n")
    tail = json.dumps({"data": {"id": "1", "text": "cut"}}).encode()[:partial]
    payload = b"".join(frames) + tail
    server = serve_once(payload, cuts, clean_end)
    events: list[tuple[str, str | None]] = []
    recorder = Recorder()
    settings_ = ConnectionSettings(f"http://127.0.0.1:{server.server_address[1]}", "token", "fuzz", stall_timeout=5)

    def on_event(event: str, reason: str | None, at) -> None:
        events.append((event, reason))
        if event == "disconnect":
            connection.halt()  # from the reading thread, before it would reconnect

    connection = StreamConnection("sample_stream", recorder, lambda: settings_, on_event)
    try:
        connection.start()
        wait_for(lambda: any(event == "disconnect" for event, _ in events), 10, "the end of the stream", interval=0.01)
    finally:
        connection.halt()
        connection.join(5)
        server.shutdown()
        server.server_close()
    assert [line.rstrip(b"\r") for line in recorder.lines] == sent
    assert events[0][0] == "connect"
