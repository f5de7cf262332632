"""Small helpers for the simulator tests: polling with a deadline, tweepy clients, stream capture."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
import tweepy

from sfm_archiver.platforms.transport import make_client, redirect_session
from tests.polling import wait_for  # noqa: F401  (re-exported for the tests here)

TOKEN = "test-token"





def raw_client(base_url: str, token: str = TOKEN, **kwargs: Any) -> tweepy.Client:
    """An unmodified tweepy Client returning requests.Response (status, headers and exact bytes)."""
    return make_client(token, base_url, return_type=requests.Response, **kwargs)


def plain_session() -> requests.Session:
    """A plain session for admin and shortener calls, and requests tweepy would not send."""
    session = requests.Session()
    session.trust_env = False
    return session


class CapturingStream(tweepy.StreamingClient):
    """Records what tweepy hands to the callbacks, with arrival times."""

    def __init__(self, base_url: str, token: str = TOKEN, **kwargs: Any):
        super().__init__(token, chunk_size=kwargs.pop("chunk_size", 4096), daemon=True, **kwargs)
        redirect_session(self.session, base_url)
        self.lines: list[bytes] = []
        self.line_times: list[float] = []
        self.keepalive_times: list[float] = []
        self.connects = 0
        self.closed = 0
        self.connection_errors = 0
        self.request_errors: list[int] = []
        self.lock = threading.Lock()

    def on_connect(self) -> None:
        self.connects += 1

    def on_data(self, raw_data: bytes) -> None:
        with self.lock:
            self.lines.append(raw_data)
            self.line_times.append(time.monotonic())

    def on_keep_alive(self) -> None:
        self.keepalive_times.append(time.monotonic())

    def on_closed(self, response: requests.Response) -> None:
        self.closed += 1

    def on_connection_error(self) -> None:
        self.connection_errors += 1

    def on_request_error(self, status_code: int) -> None:
        self.request_errors.append(status_code)
        self.disconnect()  # tweepy would otherwise sleep 5 to 60 s before retrying

    def stop(self, thread: threading.Thread | None) -> None:
        self.disconnect()
        if thread is not None:
            thread.join(5)
            assert not thread.is_alive(), "the tweepy stream thread did not end"
