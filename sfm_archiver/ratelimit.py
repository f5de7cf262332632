"""Header-driven rate-limit pacing per (credential, endpoint) (DESIGN.md section 6).

Every response reports the window of its endpoint: `x-rate-limit-limit`, `-remaining` and
`-reset` (epoch seconds on the server's clock). A call may go when the last reported remaining
budget, minus the calls already in flight, is above zero; when the server says the budget is
spent we wait until `reset` plus the measured clock skew (from the `Date` header), never
longer. While the budget is unknown (first call, or a window that just ended) only one call is
in flight: its answer tells the others how much there is. Workers of several threads share one
limiter, so together they never overshoot. A 429 is the fallback, not the plan.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Callable, Mapping, Protocol

WaitFn = Callable[[float], bool]
"""Sleep up to the given seconds; return True when the caller should give up (stop requested)."""

SKEW_SAMPLES = 64
SAFETY_MARGIN = 0.05
PERSIST_INTERVAL = 1.0
FALLBACK_RETRY_SECONDS = 60.0


class RateLimitStore(Protocol):
    def record_rate_limit(self, credential: str, endpoint: str, limit: int, remaining: int, reset: float) -> None: ...


@dataclass(frozen=True)
class Wait:
    """One announced wait: which budget, why, and until when (local epoch seconds)."""

    credential: str
    endpoint: str
    seconds: float
    until: float
    reason: str
    first: bool = True  # False for the reminders of a wait already announced (each second)


@dataclass
class _Budget:
    limit: int | None = None
    remaining: int | None = None  # None: unknown (probe with one call)
    reset: float | None = None  # server epoch seconds
    in_flight: int = 0
    announced_reset: float | None = None
    reason: str = "budget spent"
    persisted_at: float = 0.0


@dataclass
class Permit:
    """Handed out by `acquire`; give it back with `observe` or `release`."""

    credential: str
    endpoint: str
    sent_at: float
    done: bool = field(default=False)


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a credential (what status and the state store show)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def parse_quota(headers: Mapping[str, str]) -> tuple[int, int, float] | None:
    """(limit, remaining, reset) from the x-rate-limit-* headers, or None when absent or broken."""
    try:
        return (
            int(headers["x-rate-limit-limit"]),
            int(headers["x-rate-limit-remaining"]),
            float(headers["x-rate-limit-reset"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def parse_date(headers: Mapping[str, str]) -> float | None:
    """The server's `Date` header as epoch seconds (whole seconds: it is truncated)."""
    value = headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


class SkewEstimator:
    """How far the local clock runs ahead of the server's, as an upper bound.

    A response received at local time t with `Date: D` (truncated to the second) was produced
    when the server clock read at least D, so local − server ≤ t − D. The minimum of that over
    recent samples converges to the true offset from above; waiting until `reset + skew` is
    therefore never too early.
    """

    def __init__(self, samples: int = SKEW_SAMPLES):
        self._samples: deque[float] = deque(maxlen=samples)
        self._lock = threading.Lock()

    def add(self, received_at: float, server_date: float) -> None:
        with self._lock:
            self._samples.append(received_at - server_date)

    @property
    def skew(self) -> float:
        with self._lock:
            return min(self._samples) if self._samples else 0.0


class RateLimiter:
    """Thread-safe pacing of calls per (credential, endpoint).

    `clock` gives local epoch seconds, `sleep` the default way to wait; both are injectable so
    tests can run windows of seconds, or none at all. `on_wait` hears about every wait (the
    progress line and the log); `store` keeps the last observation of each budget for `status`.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        store: RateLimitStore | None = None,
        on_wait: Callable[[Wait], None] | None = None,
        margin: float = SAFETY_MARGIN,
        fallback_seconds: float = FALLBACK_RETRY_SECONDS,
    ):
        self.clock = clock
        self.sleep = sleep
        self.store = store
        self.on_wait = on_wait
        self.margin = margin
        self.fallback_seconds = fallback_seconds
        self.skew = SkewEstimator()
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._cond = threading.Condition()
        self.waits: deque[Wait] = deque(maxlen=1000)
        self.rate_limited = 0
        self.peak_in_flight = 0

    # -- calls -----------------------------------------------------------------------------

    def acquire(
        self,
        credential: str,
        endpoint: str,
        wait: WaitFn | None = None,
        announce: Callable[[Wait], None] | None = None,
    ) -> Permit | None:
        """Block until a call may go; None when `wait` reported that the caller must stop.

        `announce` (default: the limiter's `on_wait`) hears of the wait when it starts, then about
        once a second while it lasts (`Wait.first` False), for a countdown.
        """
        wait = wait or self._plain_wait
        key = (credential, endpoint)
        while True:
            with self._cond:
                budget = self._budgets.setdefault(key, _Budget())
                delay = self._delay(budget)
                if delay is None:
                    budget.in_flight += 1
                    self.peak_in_flight = max(self.peak_in_flight, budget.in_flight)
                    return Permit(credential, endpoint, self.clock())
                if delay == 0.0:
                    # Others are in flight and will tell us the budget: wait for their answers.
                    self._cond.wait(timeout=0.25)
                    continue
                first = budget.announced_reset != budget.reset
                budget.announced_reset = budget.reset
                wait_info = Wait(credential, endpoint, delay, self.clock() + delay, budget.reason, first)
            self._announce(wait_info, announce)
            if wait(min(delay, 1.0)):
                return None

    def observe(self, permit: Permit, status: int, headers: Mapping[str, str]) -> None:
        """Record what a response said about its budget and release the permit."""
        received = self.clock()
        server_date = parse_date(headers)
        if server_date is not None:
            self.skew.add(received, server_date)
        quota = parse_quota(headers)
        with self._cond:
            budget = self._budgets.setdefault((permit.credential, permit.endpoint), _Budget())
            self._release(permit, budget)
            if quota is not None:
                self._update(budget, *quota)
            budget.reason = "budget spent"
            if status == 429:
                self.rate_limited += 1
                budget.remaining = 0
                budget.reason = "HTTP 429 received"
                if quota is None or budget.reset is None or budget.reset + self.skew.skew <= received:
                    budget.reset = received - self.skew.skew + self.fallback_seconds
            persist = quota is not None and (budget.remaining == 0 or received - budget.persisted_at >= PERSIST_INTERVAL)
            if persist:
                budget.persisted_at = received
                snapshot = (budget.limit or 0, budget.remaining or 0, budget.reset or 0.0)
            self._cond.notify_all()
        if persist and self.store is not None:
            self.store.record_rate_limit(permit.credential, permit.endpoint, *snapshot)
        if status == 429 and hasattr(self.store, "record_rate_limited"):  # counted for the metrics
            self.store.record_rate_limited(permit.credential, permit.endpoint)

    def release(self, permit: Permit) -> None:
        """Give back a permit whose call got no answer (network error): nothing was learned."""
        with self._cond:
            budget = self._budgets.setdefault((permit.credential, permit.endpoint), _Budget())
            self._release(permit, budget)
            self._cond.notify_all()

    def budget(self, credential: str, endpoint: str) -> dict:
        """The current view of one budget (for tests and progress)."""
        with self._cond:
            budget = self._budgets.get((credential, endpoint), _Budget())
            return {"limit": budget.limit, "remaining": budget.remaining, "reset": budget.reset,
                    "in_flight": budget.in_flight, "skew": self.skew.skew}

    # -- internals -------------------------------------------------------------------------

    def _delay(self, budget: _Budget) -> float | None:
        """None: go now; 0.0: wait for calls in flight; > 0: seconds until the window resets."""
        now = self.clock()
        if budget.reset is not None and now >= budget.reset + self.skew.skew + self.margin:
            budget.remaining = None  # the window ended: a new one starts with the next call
            budget.reset = None
        if budget.remaining is None:
            return None if budget.in_flight == 0 else 0.0
        if budget.remaining - budget.in_flight > 0:
            return None
        if budget.remaining > 0 or budget.reset is None:
            return 0.0
        return max(0.001, budget.reset + self.skew.skew + self.margin - now)

    def _update(self, budget: _Budget, limit: int, remaining: int, reset: float) -> None:
        budget.limit = limit
        if budget.reset is None or reset > budget.reset:
            budget.reset, budget.remaining = reset, remaining
        elif reset == budget.reset:
            budget.remaining = remaining if budget.remaining is None else min(budget.remaining, remaining)
        # an answer from an older window says nothing about the current one

    def _release(self, permit: Permit, budget: _Budget) -> None:
        if not permit.done:
            permit.done = True
            budget.in_flight = max(0, budget.in_flight - 1)

    def _announce(self, wait: Wait, announce: Callable[[Wait], None] | None) -> None:
        if wait.first:
            self.waits.append(wait)
        hook = announce or self.on_wait
        if hook is not None:
            hook(wait)

    def _plain_wait(self, seconds: float) -> bool:
        self.sleep(seconds)
        return False
