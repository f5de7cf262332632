"""kill -9 of `user-timeline` while author feeds are paged: the restart loses nothing and doubles nothing.

A slow AppView (latency per call) keeps several accounts in flight at once; each kill comes
after a different number of XRPC calls, with new posts between the runs, so kills land
between pages, between an account's data and its checkpoint, and inside the group commit.
"""

from __future__ import annotations

import signal
import subprocess
import sys

from tests.polling import wait_for

from .helpers import assert_each_once, captured, run_cli, write_config

ACCOUNTS = [{"handle": f"acct{n}.bsky.test", "posts": 140 + 25 * n, "reposts": 0.2} for n in range(6)]
KILL_AFTER_CALLS = (2, 5, 9, 14)


def test_kill_9_during_author_feed_paging_loses_and_doubles_nothing(tmp_path, make_bluesky):
    sim = make_bluesky(seed=21, accounts=ACCOUNTS, latency_ms=60)
    dids = [sim.did_of(account["handle"]) for account in ACCOUNTS]
    config = write_config(tmp_path, sim.appview_url, [account["handle"] for account in ACCOUNTS])
    for round_number, calls in enumerate(KILL_AFTER_CALLS):
        harvest_killed_after(sim, config, calls)
        for did in dids[round_number::2]:
            sim.post(did, text=f"between kills {round_number}")

    partial = captured(tmp_path / "archive")
    assert 0 < sum(len(items) for items in partial.values()) < sum(len(sim.feed_uris(did)) for did in dids), \
        "the kills landed before any capture or after the harvest: they test nothing"
    sim.set_latency(0)
    done = run_cli("--config", str(config), "user-timeline")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_each_once(tmp_path / "archive", sim, dids)
    again = run_cli("--config", str(config), "user-timeline")
    assert again.returncode == 0 and "posts=0" in again.stdout, again.stdout


def harvest_killed_after(sim, config, calls: int) -> None:
    """`user-timeline` as a process, SIGKILLed once the AppView has answered `calls` more calls."""
    start = sim.counters["xrpc_calls"]
    process = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(config), "user-timeline"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: sim.counters["xrpc_calls"] - start >= calls or process.poll() is not None,
             timeout=120, what=f"{calls} XRPC calls")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
