"""AppView's rate limit: one window per client IP across every XRPC method, and its headers.

The windows are the X simulator's RateLimiter (one "endpoint", keyed by IP); the headers are
the IETF draft names Bluesky sends: ratelimit-limit, -remaining, -reset (epoch s), -policy.
"""

from __future__ import annotations

import threading
from typing import Callable

from sfm_archiver.simulator.ratelimits import Quota, RateLimiter
from sfm_archiver.simulator.scenario import EndpointLimit

_ALL = "xrpc"
RATE_LIMITED = {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"}


class XrpcRateLimit:
    """Counts calls per client IP; `exhaust` spends every client's window (and the next new client's)."""

    def __init__(self, spec: EndpointLimit, clock: Callable[[], float]):
        self._spec = spec
        self._limiter = RateLimiter({_ALL: spec}, clock)
        self._clients: set[str] = {"127.0.0.1"}
        self._lock = threading.Lock()

    def take(self, client: str) -> Quota:
        with self._lock:
            self._clients.add(client)
        return self._limiter.take(_ALL, client)

    def exhaust(self) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            self._limiter.exhaust(_ALL, client)

    def headers(self, quota: Quota) -> list[tuple[str, str]]:
        window = self._spec.window_seconds
        return [("ratelimit-limit", str(quota.limit)), ("ratelimit-remaining", str(max(0, quota.remaining))),
                ("ratelimit-reset", str(quota.reset)),
                ("ratelimit-policy", f"{quota.limit};w={int(window) if float(window).is_integer() else window}")]
