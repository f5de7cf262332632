"""The X API front door: auth, usage cap, rate limits and faults around every endpoint."""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

from sfm_archiver.simulator import bodies
from sfm_archiver.simulator.api import ApiRequest, UsersApi
from sfm_archiver.simulator.faults import ERROR, FaultInjector
from sfm_archiver.simulator.fields import Requested
from sfm_archiver.simulator.params import InvalidRequest
from sfm_archiver.simulator.ratelimits import Quota, RateLimiter, UsageCap
from sfm_archiver.simulator.reply import Reply, json_reply
from sfm_archiver.simulator.rules import RuleSet
from sfm_archiver.simulator.streams import StreamHub
from sfm_archiver.simulator.wire import Wire

STREAM_KINDS = {"search_stream": "search", "sample_stream": "sample"}
QUERIES_KEPT = 10_000  # the latest requests' query parameters, for tests of what clients ask for


class Gateway:
    """Turns an authenticated, routed request into a Reply, counting what it served."""

    def __init__(self, tokens: tuple[str, ...], users: UsersApi, rules: RuleSet, hub: StreamHub,
                 limiter: RateLimiter, usage_cap: UsageCap, faults: FaultInjector,
                 skew_seconds: float, stopping: threading.Event, wire: Wire | None = None):
        self._tokens = frozenset(tokens)
        self._users, self._rules, self._hub = users, rules, hub
        self._limiter, self._usage_cap, self._faults = limiter, usage_cap, faults
        self._skew = skew_seconds
        self._wire = wire
        self._stopping = stopping
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.served: Counter[str] = Counter()  # "rate_limited", "usage_capped", "unauthorized", faults...
        self._queries: deque[dict[str, Any]] = deque(maxlen=QUERIES_KEPT)

    def handle(self, request: ApiRequest) -> Reply:
        if not self.authorized(request.token):
            self._count("unauthorized")
            return json_reply(401, bodies.UNAUTHORIZED)
        endpoint, token = request.endpoint, request.token or ""
        self._count(endpoint, calls=True)
        self._record_query(request)
        if not self._usage_cap.admit(token):
            self._count("usage_capped")
            quota = self._limiter.take(endpoint, token, consume=False)
            return json_reply(429, bodies.USAGE_CAPPED, self.quota_headers(quota))
        quota = self._limiter.take(endpoint, token)
        headers = self.quota_headers(quota)
        if not quota.allowed:
            self._count("rate_limited")
            return json_reply(429, bodies.TOO_MANY_REQUESTS, headers)
        latency = self._faults.latency_seconds(endpoint)
        if latency and self._stopping.wait(latency):
            return Reply(503, abort=True)
        fault = self._faults.draw(endpoint, streaming=endpoint in STREAM_KINDS)
        if fault == ERROR:
            self._count(ERROR)
            status = self._faults.spec.error_status
            return json_reply(status, bodies.server_error(status), headers)
        reply = self._dispatch(request)
        reply.headers.extend(headers)
        if fault and reply.status < 300 and reply.stream is None:
            self._count(fault)
            reply.body = self._faults.damage(reply.body, fault)
        return reply

    def authorized(self, token: str | None) -> bool:
        return bool(token) and (not self._tokens or token in self._tokens)

    def quota_headers(self, quota: Quota) -> list[tuple[str, str]]:
        return [("x-rate-limit-limit", str(quota.limit)), ("x-rate-limit-remaining", str(quota.remaining)),
                ("x-rate-limit-reset", str(int(quota.reset + self._skew)))]

    def counters(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self.calls), "calls_total": sum(self.calls.values()),
                    "rate_limited": self.served["rate_limited"], "usage_capped": self.served["usage_capped"],
                    "unauthorized": self.served["unauthorized"],
                    "faults": {name: self.served[name] for name in ("error", "truncated", "malformed")}}

    def queries(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        """The query parameters of the latest authorized requests (of `endpoint`), oldest first."""
        with self._lock:
            kept = list(self._queries)
        return [entry for entry in kept if endpoint in (None, entry["endpoint"])]

    def _dispatch(self, request: ApiRequest) -> Reply:
        endpoint = request.endpoint
        try:
            if endpoint in STREAM_KINDS:
                return self._open_stream(STREAM_KINDS[endpoint], Requested.parse(request.query))
            if endpoint == "rules_get":
                status, body = self._rules.get(request.query)
            elif endpoint == "rules_post":
                status, body = self._rules.post(request.query, request.body)
            else:
                status, body = self._users.handle(request)
        except InvalidRequest as error:
            return json_reply(400, error.body, wire=self._wire)
        return json_reply(status, body, wire=self._wire)

    def _open_stream(self, kind: str, requested: Requested) -> Reply:
        conn = self._hub.open(kind, requested)
        if conn is None:
            return json_reply(429, bodies.TOO_MANY_CONNECTIONS)
        return Reply(200, stream=conn)

    def _record_query(self, request: ApiRequest) -> None:
        query = {name: values[-1] for name, values in request.query.items()}
        with self._lock:
            self._queries.append({"endpoint": request.endpoint, "query": query})

    def _count(self, name: str, calls: bool = False) -> None:
        with self._lock:
            (self.calls if calls else self.served)[name] += 1

