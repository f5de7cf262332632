"""check_run against a real harvest from the simulator: sound after real jobs, loud after damage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sfm_archiver.config import load_config
from sfm_archiver.jobs.accounts import update_usernames
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.simulator import Scenario, Simulator
from tests.chaos.helpers import write_config
from tests.invariants import check_run

ACCOUNTS = [
    {"id": "100001", "username": "sfm_alpha", "tweets": 120},
    {"id": "100002", "username": "sfm_beta", "tweets": 40, "posts_per_second": 20},
    {"id": "100003", "username": "sfm_locked", "tweets": 10, "protected": True},
]


@pytest.fixture
def harvested(tmp_path: Path):
    """Two harvests and an account check around a rename, against a live simulator."""
    scenario = Scenario.from_dict({"seed": 5, "accounts": ACCOUNTS})
    with Simulator(scenario) as sim:
        config = load_config(write_config(tmp_path / "config.yaml", tmp_path, sim.base_url, [
            {"name": "gw", "type": "timeline", "schedule": "every 1h", "accounts": ["sfm_alpha", "sfm_beta", "sfm_locked"]},
        ]))
        ctx = JobContext.open(config)
        try:
            assert harvest_timelines(ctx, "gw")["result"] in ("ok", "warning")
            sim.apply_event({"action": "rename", "account": "100001", "username": "sfm_alpha2"})
            sim.apply_event({"action": "post", "account": "100001", "count": 3})
            assert update_usernames(ctx, "gw")["result"] in ("ok", "warning")
            assert harvest_timelines(ctx, "gw")["result"] in ("ok", "warning")
            yield sim, config, scenario, ctx
        finally:
            ctx.store.close()


def final_pass(ctx: JobContext) -> None:
    update_usernames(ctx, "gw")
    harvest_timelines(ctx, "gw")


def checks(report) -> set[str]:
    return {violation.check for violation in report.violations}


def test_a_real_harvest_keeps_every_promise(harvested):
    sim, config, scenario, ctx = harvested
    sim.apply_event({"action": "post", "account": "100002", "count": 2})
    final_pass(ctx)
    report = check_run(config, sim.published(), scenario.accounts)
    assert report.ok, report.summary()
    assert report.counts["timeline_posts_expected"] >= 120 + 3 + 40
    assert report.counts["ledger_events_expected"] == report.counts["ledger_events_matched"] == 1
    assert report.counts["checkpoints"] == 2


def test_a_copied_capture_file_is_a_duplicate(harvested):
    sim, config, scenario, ctx = harvested
    first = sorted(Path(config.paths.archive).rglob("gw-timeline-*.jsonl.gz"))[0]
    stamp = first.name.split("-")[2].split(".")[0]
    shutil.copy(first, first.with_name(f"gw-timeline-{stamp}-9.jsonl.gz"))
    report = check_run(config, sim.published(), scenario.accounts)
    assert "timeline.duplicate" in checks(report), report.summary()


def test_a_lost_capture_file_means_missing_posts_and_a_checkpoint_ahead(harvested):
    sim, config, scenario, ctx = harvested
    newest = max(Path(config.paths.archive).rglob("gw-timeline-*.jsonl.gz"), key=lambda p: p.stat().st_mtime_ns)
    newest.unlink()
    report = check_run(config, sim.published(), scenario.accounts)
    assert {"timeline.missing", "checkpoint.ahead"} <= checks(report), report.summary()


def test_a_lost_backfill_is_reported(harvested):
    sim, config, scenario, ctx = harvested
    oldest = min(Path(config.paths.archive).rglob("gw-timeline-*.jsonl.gz"), key=lambda p: p.stat().st_mtime_ns)
    oldest.unlink()
    report = check_run(config, sim.published(), scenario.accounts)
    assert "timeline.backfill" in checks(report), report.summary()


def test_an_unrecorded_change_of_state_is_reported(harvested):
    sim, config, scenario, ctx = harvested
    sim.apply_event({"action": "suspend", "account": "100001"})
    sim.apply_event({"action": "unsuspend", "account": "100001"})
    report = check_run(config, sim.published(), scenario.accounts)
    assert "ledger.events" in checks(report), report.summary()
    assert report.counts["ledger_events_expected"] == 3


def test_stream_messages_lost_at_a_break_need_a_recorded_disconnect(tmp_path, wire_style):
    """A real stream run checks out; cut its captures short and forget its events: loud."""
    import gzip

    from sfm_archiver.streams.supervisor import run_stream
    from tests.invariants import RunExpectations

    scenario = Scenario.from_dict({"seed": 2, "wire": wire_style,
                                   "streams": {"messages_per_second": 60, "keepalive_seconds": 1}})
    with Simulator(scenario) as sim:
        config = load_config(write_config(tmp_path / "config.yaml", tmp_path, sim.base_url, [
            {"name": "sample", "type": "sample_stream"}]))
        ctx = JobContext.open(config)
        try:
            assert run_stream(ctx, "sample", duration=2.0)["result"] == "ok"
        finally:
            ctx.store.close()
        expect = RunExpectations(loss_window_seconds=1.0)
        sound = check_run(config, sim.published(), scenario.accounts, expect)
        assert sound.ok and sound.counts["stream_messages_sent_sample"] > 60, sound.summary()

        newest = max(Path(config.paths.archive).rglob("sample-stream-*.jsonl.gz"), key=lambda p: p.stat().st_mtime_ns)
        lines = gzip.decompress(newest.read_bytes()).splitlines(keepends=True)
        newest.write_bytes(gzip.compress(b"".join(lines[:len(lines) // 5])))
        cut = check_run(config, sim.published(), scenario.accounts, expect)
        assert "stream.lost" in checks(cut), cut.summary()

        ctx = JobContext.open(config)
        try:
            ctx.store.db.execute("DELETE FROM stream_events")  # a daemon that kept no record of its breaks
        finally:
            ctx.store.close()
        newest.write_bytes(gzip.compress(b"".join(lines[:-3])))
        forgotten = check_run(config, sim.published(), scenario.accounts, expect)
        assert "stream.gap_unrecorded" in checks(forgotten), forgotten.summary()


def test_a_copy_missing_from_one_matched_collection_is_a_fault_unless_at_a_break(tmp_path):
    """Routing: a message tagged for climate and cop but written only to climate."""
    from datetime import timezone

    from sfm_archiver.state import StateStore
    from sfm_archiver.storage.records import envelope, sfm_metadata
    from sfm_archiver.storage.writer import CaptureWriter
    from sfm_archiver.timeutil import from_epoch, utcnow
    from tests.invariants import RunExpectations

    config = load_config(write_config(tmp_path / "config.yaml", tmp_path, "http://127.0.0.1:9", [
        {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}]},
        {"name": "cop", "type": "filter_stream", "rules": [{"value": "cop30", "tag": "cop"}]}]))
    closed = utcnow().timestamp()
    early, late = "1000000000000000001", "1000000000000000002"
    moment = utcnow().astimezone(timezone.utc)
    writer = CaptureWriter(config.paths.archive, "climate", "stream", clock=lambda: moment)
    meta = sfm_metadata(captured_at=moment, collection="climate", job="filter_stream", url="http://127.0.0.1/s")
    tags = b'"matching_rules":[{"id":"1","tag":"climate:cc"},{"id":"2","tag":"cop:cop"}]'
    writer.write_batch([envelope(b'{"data":{"id":"%s"},%s}' % (tweet.encode(), tags), meta) for tweet in (early, late)])
    writer.close()
    store = StateStore(config.paths.state)
    store.record_stream_event("cop", "disconnect", "killed", at=from_epoch(closed - 0.5))
    store.close()
    published = {"posts": {}, "events": [], "connections": [{"id": 1, "kind": "search", "opened_at": closed - 200,
                                                              "closed_at": closed, "reason": "client-closed"}],
                 "stream_messages": [{"tweet_id": early, "sent_at": closed - 100, "connection_id": 1},
                                     {"tweet_id": late, "sent_at": closed - 1, "connection_id": 1}]}
    report = check_run(config, published, [], RunExpectations(loss_window_seconds=3.0))
    assert [v.check for v in report.violations] == ["stream.misrouted"], report.summary()
    assert early in report.violations[0].message
    assert report.counts["stream_copies_lost_at_breaks"] == 1 and report.counts["stream_gaps"] == 1
