"""Rate-limit pacing against a fake window with an injected clock: no overshoot, no wasted wait."""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
import threading
from email.utils import formatdate
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.platforms.x_platform import X, quota_of
from sfm_archiver.ratelimit import RateLimiter, SkewEstimator
from sfm_archiver.state import StateStore


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self, start: float = 1_800_000_000.25):
        self.now = start
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


class FakeWindow:
    """An endpoint budget like X's: the window starts with the first call and ends on a whole second.

    `fixed`: windows on a grid of `window` seconds instead; `early`: a window really ends that
    long before the reset it announces.
    """

    def __init__(self, time: FakeTime, limit: int, window: float, skew: float = 0.0, headers: bool = True,
                 fixed: bool = False, early: float = 0.0):
        self.time, self.limit, self.window, self.skew, self.headers = time, limit, window, skew, headers
        self.fixed, self.early = fixed, early
        self.reset: float | None = None
        self.used = 0
        self.calls = 0
        self.rejected = 0
        self._lock = threading.Lock()

    def call(self) -> tuple[int, dict]:
        with self._lock:
            now = self.time.clock()
            self.calls += 1
            if self.reset is None or now >= self.reset - self.early:
                if self.fixed:
                    self.reset = math.ceil((math.floor((now + self.early) / self.window) + 1) * self.window)
                else:
                    self.reset = math.ceil(now + self.window)
                self.used = 0
            status = 200 if self.used < self.limit else 429
            if status == 200:
                self.used += 1
            else:
                self.rejected += 1
            headers = {"date": formatdate(now + self.skew, usegmt=True)}
            if self.headers:
                headers.update({"x-rate-limit-limit": str(self.limit),
                                "x-rate-limit-remaining": str(self.limit - self.used),
                                "x-rate-limit-reset": str(int(self.reset + self.skew))})
            return status, headers


def call_through(limiter: RateLimiter, server: FakeWindow, endpoint: str = "tweets", wait=None,
                 latency: float = 0.0) -> int:
    permit = limiter.acquire("cred", endpoint, wait)
    assert permit is not None
    if latency:
        server.time.sleep(latency)  # the call reaches the server later (maybe in another window)
    status, headers = server.call()
    limiter.observe(permit, status, *X.rate_reading(headers))
    return status


def test_waits_only_when_spent_and_only_until_the_reset():
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    server = FakeWindow(time, limit=10, window=5)
    start = time.now
    statuses = [call_through(limiter, server) for _ in range(30)]
    assert statuses == [200] * 30 and server.rejected == 0
    # three windows: two waits, each to the end of a window (which ends on a whole second)
    assert 2 * 5 <= time.now - start <= 2 * 6 + 0.5
    assert len(limiter.waits) == 2


def test_concurrent_workers_never_overshoot():
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    server = FakeWindow(time, limit=7, window=3)
    done = []

    def worker() -> None:
        for _ in range(25):
            done.append(call_through(limiter, server))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(done) == 200 and server.rejected == 0 and server.calls == 200


def test_server_clock_ahead_costs_no_extra_wait():
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    server = FakeWindow(time, limit=5, window=4, skew=300.0)  # the server's clock reads 5 minutes later
    start = time.now
    assert all(call_through(limiter, server) == 200 for _ in range(15))
    assert time.now - start <= 2 * 5 + 1  # not 2 x 300 s
    assert -301 <= limiter.skew.skew <= -299


def test_server_clock_behind_causes_no_429():
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    server = FakeWindow(time, limit=5, window=4, skew=-120.0)  # local clock runs 2 minutes ahead
    assert all(call_through(limiter, server) == 200 for _ in range(20))
    assert server.rejected == 0


def test_a_429_without_headers_falls_back_to_a_fixed_wait():
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep, fallback_seconds=30)
    permit = limiter.acquire("cred", "tweets")
    limiter.observe(permit, 429)
    announced = []
    start = time.now
    permit = limiter.acquire("cred", "tweets", announce=announced.append)
    assert permit is not None and 30 <= time.now - start <= 31
    assert announced and announced[0].reason == "HTTP 429 received"
    assert limiter.rate_limited == 1


def test_a_stop_ends_the_wait():
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    server = FakeWindow(time, limit=1, window=600)
    call_through(limiter, server)
    asked = []

    def stop_now(seconds: float) -> bool:
        asked.append(seconds)
        return True

    assert limiter.acquire("cred", "tweets", wait=stop_now) is None
    assert asked and time.now - 1_800_000_000.25 < 1


def test_budgets_are_separate_per_credential_and_endpoint():
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep)
    tweets, users = FakeWindow(time, limit=2, window=60), FakeWindow(time, limit=2, window=60)
    for _ in range(2):
        call_through(limiter, tweets, "tweets")
    start = time.now
    call_through(limiter, users, "users")
    call_through(limiter, users, "users")
    assert time.now == start  # the spent tweets budget does not hold up users


def test_observations_are_kept_for_status(tmp_path):
    time = FakeTime()
    store = StateStore(tmp_path)
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep, store=store)
    server = FakeWindow(time, limit=3, window=60)
    for _ in range(3):
        call_through(limiter, server)
    [row] = store.rate_limits()
    assert (row["credential"], row["endpoint"], row["rate_limit"], row["remaining"]) == ("cred", "tweets", 3, 0)
    assert row["reset"] == server.reset


def test_skew_is_an_upper_bound_from_truncated_dates():
    skew = SkewEstimator()
    skew.add(received_at=1000.9, server_date=990.0)  # server clock read 990.0-990.99 → offset ≤ 10.9
    skew.add(received_at=1002.1, server_date=992.0)
    assert abs(skew.skew - 10.1) < 1e-9
    assert quota_of({"x-rate-limit-limit": "5"}) is None


# -- budgets shared through the state store (each limiter stands for one process) -----------------


def run_workers(limiters: list[RateLimiter], server: FakeWindow, calls: int, threads_each: int = 3,
                latency: float = 0.0) -> list[int]:
    """`calls` calls per thread, `threads_each` threads per limiter, all at once."""
    done: list[int] = []

    def worker(limiter: RateLimiter) -> None:
        for _ in range(calls):
            done.append(call_through(limiter, server, latency=latency))

    threads = [threading.Thread(target=worker, args=(limiter,)) for limiter in limiters for _ in range(threads_each)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def test_processes_sharing_the_state_store_never_overshoot(tmp_path):
    time = FakeTime()
    server = FakeWindow(time, limit=6, window=3)
    limiters = [RateLimiter(clock=time.clock, sleep=time.sleep, store=StateStore(tmp_path)) for _ in range(3)]
    done = run_workers(limiters, server, calls=8)
    assert len(done) == 72 and server.rejected == 0 and server.calls == 72
    assert not StateStore(tmp_path).change_rate_budget("cred", "tweets", lambda row, permits: (row, permits, permits))


def test_a_process_started_in_a_spent_window_waits_for_its_reset(tmp_path):
    time = FakeTime()
    server = FakeWindow(time, limit=4, window=30)
    first = RateLimiter(clock=time.clock, sleep=time.sleep, store=StateStore(tmp_path))
    assert [call_through(first, server) for _ in range(4)] == [200] * 4
    spent_until = server.reset
    waited: list[float] = []

    def wait(seconds: float) -> bool:
        waited.append(seconds)
        time.sleep(seconds)
        return False

    later = RateLimiter(clock=time.clock, sleep=time.sleep, store=StateStore(tmp_path))  # a restart
    assert call_through(later, server, wait=wait) == 200
    assert server.rejected == 0 and time.now >= spent_until  # it waited for the new window
    assert 25 <= sum(waited) <= 32  # until the reset plus the skew bound and margin, not a fallback


def test_a_permit_of_a_killed_process_is_not_waited_for(tmp_path):
    store = StateStore(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    held = {"lost": {"pid": int(dead.stdout), "taken_at": 1_800_000_000.0}}
    store.change_rate_budget("cred", "tweets", lambda row, permits: (row, held, None))
    time = FakeTime()
    limiter = RateLimiter(clock=time.clock, sleep=time.sleep, store=store)
    assert call_through(limiter, FakeWindow(time, limit=2, window=5)) == 200  # an unknown budget: one probe


@settings(max_examples=25, deadline=None)
@given(limit=st.integers(1, 6), window=st.integers(1, 8), fixed=st.booleans(),
       early=st.sampled_from([0.0, 0.3, 1.0]), processes=st.integers(1, 3), skew=st.sampled_from([0.0, -40.0, 7.0]),
       latency=st.sampled_from([0.0, 0.05, 0.4]))
def test_no_429_whatever_the_window_shape(limit, window, fixed, early, processes, skew, latency):
    early = min(early, window / 2)
    with tempfile.TemporaryDirectory() as folder:
        time = FakeTime()
        server = FakeWindow(time, limit=limit, window=window, skew=skew, fixed=fixed, early=early)
        limiters = [RateLimiter(clock=time.clock, sleep=time.sleep, store=StateStore(Path(folder)))
                    for _ in range(processes)]
        done = run_workers(limiters, server, calls=4, threads_each=2, latency=latency)
    assert server.rejected == 0 and len(done) == processes * 8
