"""Timeline harvesting against the simulator: how close to the rate limit, and what workers buy.

The simulator runs in its own process (as the real API does), and every figure comes from a
real `harvest_timelines` run through tweepy's HTTP stack. Three measurements:

1. Rate-bound pass. A scaled window for the timeline endpoint (default 120 calls per 30 s;
   X gives 1,500 per 15 min) and enough accounts that the limit binds. Printed:
   elapsed / lower bound, where the lower bound is (windows needed - 1) x window: the last
   window's calls could all go at its start. X, and the simulator, report the reset in whole
   seconds and end each window on one, so each window after the first lasts up to a second
   longer than the nominal length; the strict bound ignores that, and a second ratio counts
   it. (With 60 calls per 10 s that second is 10% of a window; with 1,500 per 900 s, 0.1%.)
   Also the 429s the simulator served (target 0) and calls made / minimal calls (target
   1.00: one lookup per 100 accounts, one timeline call per 100 posts, at least one each).
   Account resolution (a lookup and one `added` ledger event per account) happens once, when
   an account joins a collection; it is timed separately.

2. The same pass SFM-style: one call at a time with a fixed sleep before each. SFM slept 2 s
   against 1,500 calls per 900 s; scaled so the sleep uses the same share of the budget, that
   is 2 s x (1500 / 900) / (limit / window) (0.83 s for 120 per 30 s).

3. Latency-bound pass: no rate limit to speak of, 100 ms latency added to every call. The
   speed-up of N workers over one (target >= 3.5x with 4 or more).

4. One token, several processes (about a minute). The simulator's windows begin at the first
   call after the last one ended and end a second before the reset they announce. (a) A long
   `user-timeline` run and, once it is under way, a concurrent one-shot of another collection;
   (b) a one-shot started in a window another process has just spent. Printed: the 429s
   (target 0) and the combined timeline calls as a ratio to the rate bound (target >= 0.95):
   limit x the windows that fit between the first and the last call (floor(span / window) + 1,
   the most windows a server could open in that span).

    python benchmarks/timelines.py                       # 480 accounts, 120 calls / 30 s (~12 min)
    python benchmarks/timelines.py --limit 60 --window 10 --accounts 360
    python benchmarks/timelines.py --quick               # 72 accounts, 24 calls / 5 s (~2 min)
    python benchmarks/timelines.py --shared-only         # only part 4
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml

from sfm_archiver.config import load_config_text
from sfm_archiver.jobs.accounts import sync_accounts
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.platforms.x import LOOKUP_BATCH, XClient
from sfm_archiver.ratelimit import Permit, Quota, RateLimiter
from sfm_archiver.state import StateStore

TOKEN = "benchmark-token"
SFM_SLEEP = 2.0
REAL_LIMIT, REAL_WINDOW = 1500, 900.0
POSTS_PER_ACCOUNT = 40


def scenario(accounts: int, limit: int, window: float, latency_ms: float = 0.0) -> dict:
    return {
        "tokens": [TOKEN],
        "accounts": [{"id": str(10_000 + n), "username": f"bench_{n}", "tweets": POSTS_PER_ACCOUNT}
                     for n in range(accounts)],
        "rate_limits": {"window_seconds": window, "user_tweets": limit, "users_lookup": 10_000},
        "faults": {"latency_ms": latency_ms},
        "links": {"probability": 0.0},
    }


class SimulatorProcess:
    """`sfm-archiver simulate` in its own process, as the real API is: it never shares our CPU lock."""

    def __init__(self, document: dict):
        self.document = document

    def __enter__(self) -> SimulatorProcess:
        self.folder = Path(tempfile.mkdtemp(prefix="sfm-bench-sim-"))
        path = self.folder / "scenario.yaml"
        path.write_text(yaml.safe_dump(self.document))
        self.process = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "simulate", "--scenario", str(path)],
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.base_url = line.strip().rsplit(" ", 1)[1]
        return self

    def counters(self) -> dict:
        with urllib.request.urlopen(f"{self.base_url}/_sim/counters", timeout=10) as answer:
            return json.load(answer)

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)


def context(folder: Path, base_url: str, accounts: int, workers: int) -> JobContext:
    document = {
        "paths": {name: str(folder / name) for name in ("archive", "state", "outbox")},
        "x": {"bearer_token": TOKEN, "api_base_url": base_url, "workers": workers},
        "collections": [{"name": "bench", "type": "timeline",
                         "accounts": [f"bench_{n}" for n in range(accounts)]}],
        "log_level": "WARNING",
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return JobContext.open(load_config_text(path.read_text(), path))


class FixedSleepLimiter(RateLimiter):
    """SFM's pacing: sleep a fixed time before every call; on a 429, sleep until the reset."""

    def __init__(self, delay: float):
        super().__init__()
        self.delay = delay
        self._resume_at = 0.0

    def acquire(self, credential, endpoint, wait=None, announce=None) -> Permit | None:
        time.sleep(max(self.delay, self._resume_at - time.time()))
        return Permit(credential, endpoint, time.time())

    def observe(self, permit, status, quota: Quota | None = None, server_date: float | None = None) -> None:
        if status == 429:
            self.rate_limited += 1
            self._resume_at = (quota.reset if quota else time.time() + 60) + 1

    def release(self, permit) -> None:
        return None


def harvest(sim: SimulatorProcess, folder: Path, accounts: int, workers: int, limiter: RateLimiter | None = None) -> dict:
    """Resolve the accounts, then time one timeline pass; returns the figures of that pass."""
    ctx = context(folder, sim.base_url, accounts, workers)
    client = XClient(ctx.config.x, limiter=limiter or RateLimiter())
    started = time.monotonic()
    sync_accounts(ctx, "bench", client=client)
    resolved = time.monotonic()
    before = sim.counters()
    record = harvest_timelines(ctx, "bench", client=client)
    elapsed = time.monotonic() - resolved
    after = sim.counters()
    assert record["result"] == "ok", record
    assert record["counts"]["posts"] == accounts * POSTS_PER_ACCOUNT, record["counts"]
    timeline_calls = after["calls"].get("user_tweets", 0) - before["calls"].get("user_tweets", 0)
    return {
        "elapsed": elapsed,
        "resolve": resolved - started,
        "timeline_calls": timeline_calls,
        "calls": after["calls_total"],
        "rate_limited": after["rate_limited"],
        "waits": record["counts"].get("rate_limit_waits", 0),
        "peak_in_flight": client.limiter.peak_in_flight,
    }


def minimal_calls(accounts: int) -> int:
    return math.ceil(accounts / LOOKUP_BATCH) + accounts * max(1, math.ceil(POSTS_PER_ACCOUNT / 100))


def rate_bound(accounts: int, limit: int, window: float, workers: int, latency_ms: float) -> dict:
    with SimulatorProcess(scenario(accounts, limit, window, latency_ms)) as sim, _folder() as folder:
        figures = harvest(sim, folder, accounts, workers)
    windows = math.ceil(figures["timeline_calls"] / limit)
    figures["lower_bound"] = (windows - 1) * window
    figures["whole_second_bound"] = (windows - 1) * window + max(0, windows - 2)
    figures["minimal_calls"] = minimal_calls(accounts)
    return figures


def sfm_style(accounts: int, limit: int, window: float, latency_ms: float) -> dict:
    delay = SFM_SLEEP * (REAL_LIMIT / REAL_WINDOW) / (limit / window)
    with SimulatorProcess(scenario(accounts, limit, window, latency_ms)) as sim, _folder() as folder:
        figures = harvest(sim, folder, accounts, 1, FixedSleepLimiter(delay))
    figures["delay"] = delay
    return figures


def latency_bound(accounts: int, workers: list[int], latency_ms: float) -> dict[int, float]:
    elapsed = {}
    for count in workers:
        with SimulatorProcess(scenario(accounts, 1_000_000, 900, latency_ms)) as sim, _folder() as folder:
            elapsed[count] = harvest(sim, folder, accounts, count)["elapsed"]
    return elapsed


# -- part 4: one token, several processes ---------------------------------------------------------

SHARED_LIMIT, SHARED_WINDOW = 30, 8.0


def shared_scenario(collections: dict[str, int]) -> dict:
    document = scenario(sum(collections.values()), SHARED_LIMIT, SHARED_WINDOW, 5.0)
    document["rate_limits"].update({"windows": "rolling", "early_reset_seconds": 1})
    return document


def shared_config(folder: Path, base_url: str, collections: dict[str, int]) -> Path:
    """One token and one state folder for every process; a collection per process."""
    first, blocks = 0, []
    for name, count in collections.items():
        blocks.append({"name": name, "type": "timeline", "accounts": [f"bench_{n}" for n in range(first, first + count)]})
        first += count
    document = {
        "paths": {name: str(folder / name) for name in ("archive", "state", "outbox")},
        "x": {"bearer_token": TOKEN, "api_base_url": base_url, "workers": 4},
        "collections": blocks, "log_level": "WARNING",
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


class CallWatch:
    """Polls the simulator's counters: when timeline calls were first and last seen to grow."""

    def __init__(self, sim: SimulatorProcess):
        self.sim = sim
        self.first = self.last = None
        self.calls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CallWatch:
        self.start_calls = self.calls = self.sim.counters()["calls"].get("user_tweets", 0)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            calls = self.sim.counters()["calls"].get("user_tweets", 0)
            if calls != self.calls:
                now = time.monotonic()
                self.first = self.first or now
                self.last, self.calls = now, calls

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self, rate_limited: int) -> dict:
        calls = self.calls - self.start_calls
        span = (self.last or 0) - (self.first or 0)
        windows = math.floor(span / SHARED_WINDOW) + 1
        return {"calls": calls, "span": span, "windows": windows, "rate_limited": rate_limited,
                "ratio": calls / (SHARED_LIMIT * windows)}


def one_shot(config: Path, collection: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sfm_archiver", "user-timeline", collection, "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> None:
    out, err = process.communicate(timeout=600)
    if process.returncode != 0 or "user_timeline ok" not in out:
        raise RuntimeError(f"a one-shot failed ({process.returncode}): {out}{err}")


def concurrent_one_shot() -> dict:
    """(a) a long run (3 windows of calls) and, once it is under way, a one-shot (1 window) on one token."""
    collections = {"long": 3 * SHARED_LIMIT, "short": SHARED_LIMIT}
    with SimulatorProcess(shared_scenario(collections)) as sim, _folder() as folder:
        config = shared_config(folder, sim.base_url, collections)
        with CallWatch(sim) as watch:
            long_run = one_shot(config, "long")
            while watch.calls < SHARED_LIMIT // 2 and long_run.poll() is None:
                time.sleep(0.05)
            short_run = one_shot(config, "short")
            finished(short_run)
            finished(long_run)
        return watch.figures(sim.counters()["rate_limited"])


def spent_window_one_shot() -> dict:
    """(b) this process spends a window, then a one-shot (2 windows of calls) starts in it."""
    collections = {"spender": 1, "later": 2 * SHARED_LIMIT}
    with SimulatorProcess(shared_scenario(collections)) as sim, _folder() as folder:
        config = shared_config(folder, sim.base_url, collections)
        settings = load_config_text(config.read_text(), config)
        with CallWatch(sim) as watch:
            spender = XClient(settings.x, limiter=RateLimiter(store=StateStore(settings.paths.state)))
            for _ in range(SHARED_LIMIT):
                spender.user_timeline("10000", max_results=5)
            finished(one_shot(config, "later"))
        return watch.figures(sim.counters()["rate_limited"])


def print_shared() -> None:
    print(f"one token, several processes: {SHARED_LIMIT} timeline calls / {SHARED_WINDOW:g} s windows, "
          "rolling, ending 1 s before the announced reset")
    for label, measure in (("(a) long run + concurrent one-shot", concurrent_one_shot),
                           ("(b) one-shot started in a spent window", spent_window_one_shot)):
        got = measure()
        print(f"  {label}: 429s = {got['rate_limited']} (target 0); {got['calls']} calls in {got['span']:.1f} s, "
              f"bound {SHARED_LIMIT} x {got['windows']} windows; calls / rate bound = {got['ratio']:.3f} (target >= 0.95); "
              f"span / ((windows - 1) x window) = {got['span'] / max(SHARED_WINDOW, (got['windows'] - 1) * SHARED_WINDOW):.3f}")


class _folder:
    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="sfm-bench-"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (72 accounts, 24 calls per 5 s)")
    parser.add_argument("--accounts", type=int, help="accounts per pass (default 480, quick 72)")
    parser.add_argument("--limit", type=int, help="timeline calls per window (default 120, quick 24)")
    parser.add_argument("--window", type=float, help="window seconds (default 30, quick 5)")
    parser.add_argument("--sfm-accounts", type=int, help="accounts of the SFM-style pass (default: all)")
    parser.add_argument("--workers", type=int, default=4, help="workers of the rate-bound and parallel passes")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="latency added in the rate-bound passes")
    parser.add_argument("--shared-only", action="store_true", help="only part 4: several processes on one token")
    args = parser.parse_args()
    if args.shared_only:
        print_shared()
        return
    accounts = args.accounts or (72 if args.quick else 480)
    limit = args.limit or (24 if args.quick else 120)
    window = args.window or (5.0 if args.quick else 30.0)

    print(f"timeline harvest benchmark: {accounts} accounts x {POSTS_PER_ACCOUNT} posts, "
          f"rate window {limit} calls / {window:g} s, {args.workers} workers, {args.latency_ms:g} ms latency")
    ours = rate_bound(accounts, limit, window, args.workers, args.latency_ms)
    print(f"  resolve accounts (once): {ours['resolve']:.1f} s")
    print(f"  rate-bound pass: {ours['elapsed']:.1f} s; lower bound {ours['lower_bound']:.1f} s; "
          f"elapsed / lower bound = {ours['elapsed'] / ours['lower_bound']:.3f} (target <= 1.10); "
          f"counting whole-second resets: {ours['elapsed'] / ours['whole_second_bound']:.3f}")
    print(f"  429s received: {ours['rate_limited']} (target 0); rate-limit waits: {ours['waits']}")
    print(f"  calls made / minimal calls = {ours['calls']} / {ours['minimal_calls']} = "
          f"{ours['calls'] / ours['minimal_calls']:.2f} (target 1.00)")

    sfm_accounts = min(accounts, args.sfm_accounts or accounts)
    sfm = sfm_style(sfm_accounts, limit, window, args.latency_ms)
    scaled = sfm["elapsed"] * accounts / sfm_accounts
    note = "" if sfm_accounts == accounts else f" (measured on {sfm_accounts} accounts, scaled linearly)"
    print(f"  SFM-style ({sfm['delay']:.2f} s sleep before each call, one at a time): {scaled:.1f} s{note}, "
          f"{sfm['rate_limited']} 429s; {scaled / ours['elapsed']:.1f}x the time of the paced pass")

    counts = sorted({1, args.workers, max(8, args.workers)})
    parallel = latency_bound(accounts, counts, 100.0)
    print("  no rate bound, 100 ms latency per call:")
    for count in counts:
        print(f"    {count} worker(s): {parallel[count]:.1f} s, speed-up over one = {parallel[1] / parallel[count]:.2f}x"
              + (" (target >= 3.5x)" if count >= 4 else ""))
    print_shared()


if __name__ == "__main__":
    main()
