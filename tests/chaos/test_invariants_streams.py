"""check_run on hand-made stream captures: both provenance forms, `_unrouted`, shared rule tags."""

from __future__ import annotations

import json
from datetime import timezone

from sfm_archiver.config import load_config
from sfm_archiver.state import StateStore
from sfm_archiver.storage.writer import CaptureWriter
from sfm_archiver.timeutil import utcnow
from tests.chaos.test_invariants_run import write_config
from tests.invariants import RunExpectations, check_run

FILTERS = [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}]},
           {"name": "cop", "type": "filter_stream", "rules": [{"value": "cop30", "tag": "cop"}]}]


def _config(tmp_path):
    return load_config(write_config(tmp_path / "config.yaml", tmp_path, "http://127.0.0.1:9", FILTERS))


def _write(config, collection: str, messages: list[tuple[str, str, dict]], moment=None) -> None:
    """(tweet id, tag, extra __sfm keys) per line, in the capture format."""
    moment = moment or utcnow().astimezone(timezone.utc)
    writer = CaptureWriter(config.paths.archive, collection, "stream", clock=lambda: moment)
    lines = []
    for tweet, tag, extra in messages:
        meta = {"captured_at": "2026-11-27T13:00:00.000Z", "collection": collection, "job": "filter_stream", **extra,
                "version": "1"}
        record = {"data": {"id": tweet}, "matching_rules": [{"id": "1", "tag": tag}], "__sfm": meta}
        lines.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")
    writer.write_batch(lines)
    writer.close()


def _published(*tweets: str) -> dict:
    now = utcnow().timestamp()
    return {"posts": {}, "events": [], "connections": [{"id": 1, "kind": "search", "opened_at": now - 100,
                                                        "closed_at": None, "reason": None}],
            "stream_messages": [{"tweet_id": tweet, "sent_at": now - 50, "connection_id": 1} for tweet in tweets]}


def _checks(report) -> list[str]:
    return [violation.check for violation in report.violations]


def test_lines_with_url_written_before_and_with_connection_now_are_both_valid(tmp_path):
    config = _config(tmp_path)
    _write(config, "climate", [("11", "climate:cc", {"url": "https://api.twitter.com/2/tweets/search/stream?x=1"}),
                               ("12", "climate:cc", {"connection": "filter_stream-20261127T130000.000000Z-1-1"})])
    report = check_run(config, _published("11", "12"), [], RunExpectations())
    assert report.ok, report.summary()
    _write(config, "climate", [("13", "climate:cc", {})])
    broken = check_run(config, _published("11", "12", "13"), [], RunExpectations())
    assert _checks(broken) == ["capture.provenance"], broken.summary()


def test_unrouted_messages_are_a_failure_unless_recorded(tmp_path):
    config = _config(tmp_path)
    _write(config, "_unrouted", [("21", "gone:x", {"connection": "c1"}), ("22", "gone:x", {"connection": "c1"})])
    report = check_run(config, _published("21", "22"), [], RunExpectations())
    assert _checks(report) == ["stream.unrouted_unrecorded"], report.summary()
    assert report.counts["stream_messages_unrouted"] == 2
    store = StateStore(config.paths.state)
    store.add_stream_counts("stream", "_unrouted", utcnow(), 2, 0, utcnow())
    store.close()
    recorded = check_run(config, _published("21", "22"), [], RunExpectations())
    assert recorded.ok, recorded.summary()


def test_a_rule_shared_by_two_collections_needs_a_copy_in_each(tmp_path):
    """One rule tagged `climate:cc|cop:cop` (what the rules sync writes for a shared value)."""
    config = _config(tmp_path)
    _write(config, "climate", [("31", "climate:cc|cop:cop", {"connection": "c1"})])
    report = check_run(config, _published("31"), [], RunExpectations())
    assert _checks(report) == ["stream.misrouted"] and "cop" in report.violations[0].where, report.summary()


def test_verify_accepts_a_bag_holding_both_forms(tmp_path):
    from datetime import datetime

    from sfm_archiver.bagging.job import bag_completed_periods
    from sfm_archiver.bagging.verify import verify_paths
    from sfm_archiver.jobs.context import JobContext

    config = _config(tmp_path)
    moment = datetime(2026, 11, 27, 10, 15, tzinfo=timezone.utc)
    _write(config, "climate", [("41", "climate:cc", {"url": "https://api.twitter.com/2/tweets/search/stream?x=1"}),
                               ("42", "climate:cc", {"connection": "c1"})], moment)
    ctx = JobContext.open(config)
    try:
        results = bag_completed_periods(ctx, ["climate"])
    finally:
        ctx.store.close()
    bags = [config.paths.outbox / result["name"] for result in results if result.get("status") == "bagged"]
    assert len(bags) == 1 and verify_paths(bags) == []
