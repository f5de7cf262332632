"""Header-driven rate-limit pacing per (credential, endpoint) (DESIGN.md section 6).

Every response reports the window of its endpoint, as a `Quota` its platform reads from the
headers (`Platform.rate_reading`): limit, remaining and reset (epoch seconds on the server's
clock). A call may go when the last reported remaining
budget, minus the calls already in flight, is above zero; when the server says the budget is
spent we wait until `reset` plus the measured clock skew (from the `Date` header), never
longer. While the budget is unknown (first call, or a window that just ended) only one call is
in flight: its answer tells the others how much there is. A 429 is the fallback, not the plan.

Nothing is assumed about where windows begin or end: a server may start a window at the first
call after the last one ended, or end it before the reset it announced. Each answer's headers
say which window it fell in (the latest reset wins); calls still in flight are counted against
whichever window is current, so a window that began early is never overshot either.

With the state store (`store`), budgets and the calls in flight of every process using a
credential live there (keyed by the credential's fingerprint, never the token), changed in one
transaction each: the daemon and one-shot commands share each window, and a process started in a
spent window waits for its reset instead of learning it from a 429. Without one, the threads of
this process share them.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, Callable, Mapping, NamedTuple, Protocol, TypeVar

from sfm_archiver.state import pid_alive

T = TypeVar("T")
WaitFn = Callable[[float], bool]
"""Sleep up to the given seconds; return True when the caller should give up (stop requested)."""

SKEW_SAMPLES = 64
SAFETY_MARGIN = 0.05
FALLBACK_RETRY_SECONDS = 60.0
PERMIT_LEASE = 120.0  # a call in flight longer than this is forgotten (its process hung, or died and its pid was reused)
LOCAL_POLL = 0.25  # how often a thread waiting on other calls' answers looks again (they also wake it)
SHARED_POLL = 0.02  # the same when the answers may come to other processes


class BudgetStore(Protocol):
    """What the limiter needs of the state store (state.py): one budget changed in one
    cross-process transaction, and a 429 answer counted."""

    def change_rate_budget(self, credential: str, endpoint: str, change: Callable) -> Any: ...

    def record_rate_limited(self, credential: str, endpoint: str) -> None: ...


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
    """One window as the answers reported it, and the calls in flight against it."""

    limit: int | None = None
    remaining: int | None = None  # the lowest remaining the current window reported; None: unknown
    reset: float | None = None  # server epoch seconds
    skew: float | None = None  # an upper bound of local − server clock, kept with the budget
    permits: dict[str, dict] = field(default_factory=dict)  # id -> {"pid", "taken_at"}


@dataclass
class Permit:
    """Handed out by `acquire`; give it back with `observe` or `release`."""

    credential: str
    endpoint: str
    sent_at: float
    done: bool = field(default=False)
    permit_id: str = ""


class LocalBudgets:
    """Budgets known to this process only (no state store: tests, benchmarks, previews)."""

    shared = False

    def __init__(self) -> None:
        self._budgets: dict[tuple[str, str], _Budget] = {}
        self._lock = threading.Lock()

    def change(self, credential: str, endpoint: str, change: Callable[[_Budget], T]) -> T:
        with self._lock:
            return change(self._budgets.setdefault((credential, endpoint), _Budget()))


class SharedBudgets:
    """Budgets in the state store, the one truth for every process using a credential.

    Each change (take a permit, record an answer) runs in one `BEGIN IMMEDIATE` transaction of
    the state database, so a daemon and any number of one-shot commands spend one window
    together, and a process started in a spent window reads that it must wait.
    """

    shared = True

    def __init__(self, store: BudgetStore):
        self.store = store

    def change(self, credential: str, endpoint: str, change: Callable[[_Budget], T]) -> T:
        def in_transaction(row: dict | None, permits: dict[str, dict]) -> tuple[dict | None, dict[str, dict], T]:
            budget = _Budget(permits=permits)
            if row is not None:
                budget.limit, budget.remaining, budget.reset, budget.skew = (
                    row["rate_limit"], row["remaining"], row["reset"], row["skew"])
            result = change(budget)
            changed = {"rate_limit": budget.limit, "remaining": budget.remaining, "reset": budget.reset,
                       "skew": budget.skew}
            return (changed if row is not None or budget.reset is not None else None), budget.permits, result

        return self.store.change_rate_budget(credential, endpoint, in_transaction)


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a credential (what status and the state store show)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


class Quota(NamedTuple):
    """What a response says of its endpoint's window (each platform reads it from its own headers)."""

    limit: int
    remaining: int
    reset: float  # epoch seconds on the server's clock


def http_date(headers: Mapping[str, str]) -> float | None:
    """The server's `Date` header (HTTP, every platform) as epoch seconds (whole seconds: it is truncated)."""
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

    @property
    def samples(self) -> int:
        with self._lock:
            return len(self._samples)

    def add(self, received_at: float, server_date: float) -> None:
        with self._lock:
            self._samples.append(received_at - server_date)

    @property
    def skew(self) -> float:
        with self._lock:
            return min(self._samples) if self._samples else 0.0


class RateLimiter:
    """Thread-safe pacing of calls per (credential, endpoint), shared across processes by `store`.

    `clock` gives local epoch seconds, `sleep` the default way to wait; both are injectable so
    tests can run windows of seconds, or none at all. `on_wait` hears about every wait (the
    progress line and the log). With a `store` (the state store) every budget lives there and
    is shared by every process using the credential; without one, by this process's threads.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        store: BudgetStore | None = None,
        on_wait: Callable[[Wait], None] | None = None,
        margin: float = SAFETY_MARGIN,
        fallback_seconds: float = FALLBACK_RETRY_SECONDS,
    ):
        self.clock = clock
        self.sleep = sleep
        self.store = store  # also where 429 answers are counted (for the metrics)
        self.budgets: LocalBudgets | SharedBudgets = LocalBudgets() if store is None else SharedBudgets(store)
        self.on_wait = on_wait
        self.margin = margin
        self.fallback_seconds = fallback_seconds
        self.skew = SkewEstimator()
        self._cond = threading.Condition()
        self._announced: dict[tuple[str, str], float | None] = {}  # the reset of the last wait announced
        self._reasons: dict[tuple[str, str], str] = {}  # why the budget is spent, as this process saw it
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
        poll = SHARED_POLL if self.budgets.shared else LOCAL_POLL
        while True:
            permit_id = uuid.uuid4().hex
            delay, reset, in_flight = self.budgets.change(credential, endpoint, partial(self._take, permit_id))
            if delay is None:
                self.peak_in_flight = max(self.peak_in_flight, in_flight)
                return Permit(credential, endpoint, self.clock(), permit_id=permit_id)
            if delay == 0.0:
                with self._cond:  # others are in flight and will tell us the budget: wait for their answers
                    self._cond.wait(timeout=poll)
                continue
            with self._cond:
                first = self._announced.get(key) != reset
                self._announced[key] = reset
                reason = self._reasons.get(key, "budget spent")
            wait_info = Wait(credential, endpoint, delay, self.clock() + delay, reason, first)
            self._announce(wait_info, announce)
            if wait(min(delay, 1.0)):
                return None

    def observe(self, permit: Permit, status: int, quota: Quota | None = None, server_date: float | None = None) -> None:
        """Record what a response said about its budget (`quota`, and its `Date` as `server_date`)
        and release the permit."""
        received = self.clock()
        if server_date is not None:
            self.skew.add(received, server_date)
        if status == 429:
            self.rate_limited += 1
        self.budgets.change(permit.credential, permit.endpoint, partial(self._answer, permit, status, quota, received))
        with self._cond:
            self._reasons[(permit.credential, permit.endpoint)] = "HTTP 429 received" if status == 429 else "budget spent"
            self._cond.notify_all()
        if status == 429 and self.store is not None:  # counted for the metrics
            self.store.record_rate_limited(permit.credential, permit.endpoint)

    def release(self, permit: Permit) -> None:
        """Give back a permit whose call got no answer (network error): nothing was learned."""
        self.budgets.change(permit.credential, permit.endpoint, partial(self._drop, permit))
        with self._cond:
            self._cond.notify_all()

    def budget(self, credential: str, endpoint: str) -> dict:
        """The current view of one budget (for tests and progress)."""

        def view(budget: _Budget) -> dict:
            return {"limit": budget.limit, "remaining": budget.remaining, "reset": budget.reset,
                    "in_flight": len(budget.permits), "skew": self._skew(budget)}

        return self.budgets.change(credential, endpoint, view)

    # -- changes of one budget (run under its lock or in its transaction) --------------------

    def _take(self, permit_id: str, budget: _Budget) -> tuple[float | None, float | None, int]:
        """Take a permit when a call may go: (None, reset, in flight); else (delay, reset, in flight)."""
        now = self.clock()
        self._forget_lost_permits(budget, now)
        delay = self._delay(budget, now)
        if delay is None:
            budget.permits[permit_id] = {"pid": os.getpid(), "taken_at": now}
        return delay, budget.reset, len(budget.permits)

    def _answer(self, permit: Permit, status: int, quota: Quota | None, received: float,
                budget: _Budget) -> None:
        self._drop(permit, budget)
        if quota is not None:
            self._update(budget, *quota)
        own = self.skew.skew if self.skew.samples else None
        budget.skew = own if budget.skew is None else (budget.skew if own is None else min(own, budget.skew))
        if status == 429:
            budget.remaining = 0
            skew = self._skew(budget)
            if quota is None or budget.reset is None or budget.reset + skew <= received:
                budget.reset = received - skew + self.fallback_seconds

    def _drop(self, permit: Permit, budget: _Budget) -> None:
        if not permit.done:
            permit.done = True
            budget.permits.pop(permit.permit_id, None)

    def _forget_lost_permits(self, budget: _Budget, now: float) -> None:
        """Permits of processes that died (kill -9) mid-call, or held impossibly long, are no call."""
        for permit_id, held in list(budget.permits.items()):
            if now - held["taken_at"] > PERMIT_LEASE or (held["pid"] != os.getpid() and not pid_alive(held["pid"])):
                del budget.permits[permit_id]

    def _delay(self, budget: _Budget, now: float) -> float | None:
        """None: go now; 0.0: wait for calls in flight; > 0: seconds until the window resets."""
        skew = self._skew(budget)
        ended = budget.reset is not None and now >= budget.reset + skew + self.margin
        remaining = None if ended else budget.remaining  # a new window starts with the next call
        in_flight = len(budget.permits)
        if remaining is None:
            return None if in_flight == 0 else 0.0
        if remaining - in_flight > 0:
            return None
        if remaining > 0 or budget.reset is None:
            return 0.0
        return max(0.001, budget.reset + skew + self.margin - now)

    def _update(self, budget: _Budget, limit: int, remaining: int, reset: float) -> None:
        budget.limit = limit
        if budget.reset is None or reset > budget.reset:
            budget.reset, budget.remaining = reset, remaining
        elif reset == budget.reset:
            budget.remaining = remaining if budget.remaining is None else min(budget.remaining, remaining)
        # an answer from an older window says nothing about the current one

    def _skew(self, budget: _Budget) -> float:
        """The tightest known upper bound of the skew: this process's, or the one kept with the budget."""
        bounds = [bound for bound in (self.skew.skew if self.skew.samples else None, budget.skew) if bound is not None]
        return min(bounds) if bounds else 0.0

    def _announce(self, wait: Wait, announce: Callable[[Wait], None] | None) -> None:
        if wait.first:
            self.waits.append(wait)
        hook = announce or self.on_wait
        if hook is not None:
            hook(wait)

    def _plain_wait(self, seconds: float) -> bool:
        self.sleep(seconds)
        return False
