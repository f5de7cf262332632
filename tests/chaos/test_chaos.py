"""The CI chaos run: the real daemon, the simulator, a compressed day of trouble, >= 10 SIGKILLs.

Prints its counts (kills, restarts, posts published/captured, messages sent/captured, gaps,
bags made/validated, ledger events expected/found) and the seed; replay a failure with
`SFM_CHAOS_SEED=<seed> pytest tests/chaos/test_chaos.py -s`. The long version is
`python benchmarks/soak.py`. What the day holds is described in tests/chaos/engine.py.
"""

from __future__ import annotations

import os

import pytest

from tests.chaos.engine import ChaosSettings, run_chaos, seed_from_environment

DURATION = float(os.environ.get("SFM_CHAOS_SECONDS", 60))  # the whole plan, compressed; >= 10 kills all the same


def test_a_day_of_chaos_loses_nothing(tmp_path, wire_style, capsys: pytest.CaptureFixture):
    lines: list[str] = []
    settings = ChaosSettings(seed=seed_from_environment(), duration=DURATION, min_kills=10, log=lines.append,
                             wire=wire_style)
    result = run_chaos(tmp_path, settings)
    with capsys.disabled():
        print("\n" + result.summary())
    counts, report = result.counts, result.report
    assert result.ok, result.summary()
    assert counts["kills"] >= 10 and counts["restarts"] == counts["kills"]
    assert counts["unexpected_exits"] == 0 and counts["log_tracebacks"] == 0
    assert counts["invalid_reloads_refused"] >= 1 and counts["usage_cap_pauses_seen"] >= 1
    assert report.counts["bags"] >= 3 and report.counts["bags_validated"] == report.counts["bags"]
    assert report.counts["timeline_posts_expected"] > 500
    assert report.counts["ledger_events_matched"] == report.counts["ledger_events_expected"] >= 8
    assert report.counts["stream_messages_captured_search"] > 0 and report.counts["stream_messages_captured_sample"] > 0
    assert report.counts["bluesky_feed_items_captured"] == report.counts["bluesky_feed_items_published"] > 170
    assert report.counts["jetstream_events_captured"] == report.counts["jetstream_events_expected"] > 5
    assert report.counts["bluesky_ledger_events_matched"] == report.counts["bluesky_ledger_events_expected"] >= 3
    assert counts["jetstream_connections"] >= counts["kills"] and counts["bluesky_429s"] == 0
