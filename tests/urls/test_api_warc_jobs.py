"""The timeline and account jobs leave a WARC of every API call they make."""

from __future__ import annotations

import gzip

from sfm_archiver.jobs.accounts import update_usernames
from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.storage.layout import parse_capture_name

from .helpers import TOKEN, assert_no_secret, index, make_ctx, warc_files, warcio


def exchanges(paths) -> list[tuple[dict, dict]]:
    found = []
    for path in paths:
        check = warcio("check", str(path))
        assert check.returncode == 0, check.stdout + check.stderr
        records = index(path)
        assert records[0]["warc-type"] == "warcinfo"
        responses = {r["warc-record-id"]: r for r in records if r["warc-type"] == "response"}
        requests_ = [r for r in records if r["warc-type"] == "request"]
        assert len(requests_) == len(responses)
        found += [(request, responses[request["warc-concurrent-to"]]) for request in requests_]
    return found


def test_timeline_harvest_and_username_update_record_every_api_call(tmp_path, make_simulator, wire_style):
    simulator = make_simulator(wire=wire_style)
    ctx = make_ctx(tmp_path, simulator.base_url)
    archive = ctx.config.paths.archive

    run = harvest_timelines(ctx, "news")

    assert run["result"] == "ok", run
    calls = simulator.counters()["calls_total"]
    assert calls >= 3  # lookup of the account, then timeline pages
    files = warc_files(archive)
    timeline_files = [p for p in files if parse_capture_name(p.name)["kind"] == "timeline"]
    assert timeline_files and all(any(p.parent.glob("news-timeline-*.jsonl.gz")) for p in timeline_files)
    recorded = exchanges(files)
    assert len(recorded) == calls
    targets = [request["warc-target-uri"] for request, _ in recorded]
    assert any("/2/users/by" in t for t in targets) and sum("/tweets" in t for t in targets) == calls - 1
    assert ctx.store.open_files() == []

    update_usernames(ctx, "news")
    users_files = [p for p in warc_files(archive) if parse_capture_name(p.name)["kind"] == "users"]
    assert users_files
    assert len(exchanges(users_files)) == simulator.counters()["calls_total"] - calls
    assert b"job: update_usernames" in gzip.decompress(users_files[0].read_bytes())
    assert_no_secret(tmp_path / "archive", TOKEN)
