"""Jetstream collections captured against the real simulator over real WebSockets (in process).

Expectations come from what the simulator published (`sim.jetstream_events()`), never from the
capture code's own filters.
"""

from __future__ import annotations

import json
import re

import pytest

from sfm_archiver.config import load_config
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.ledger import read_ledger
from sfm_archiver.platforms.x_stream import DEFAULT_BACKOFF
from sfm_archiver.streams.jetstream import JetstreamSupervisor
from tests.bluesky.conftest import captured, event_keys, jetstream, officials, published_key, raw_lines, write_config
from tests.polling import wait_for

FAST = DEFAULT_BACKOFF.scaled(0.01)


def start(tmp_path, sim, collections, **sections) -> tuple[JetstreamSupervisor, JobContext]:
    ctx = JobContext.open(load_config(write_config(tmp_path, sim, collections, **sections)))
    supervisor = JetstreamSupervisor(ctx, backoff=FAST, overlap_seconds=2.0)
    supervisor.start()
    wait_for(lambda: all(s.get("connected") for s in supervisor.status().values()) and sim.counters["jetstream_connections"],
             what="every jetstream collection connected")
    return supervisor, ctx


def wait_captured(supervisor: JetstreamSupervisor, ctx: JobContext, count: int, what: str, collection: str = "live") -> None:
    """Poll (flushing the capture each time) until `collection` holds `count` lines."""
    wait_for(lambda: supervisor.flush() or len(captured(ctx.config.paths.archive, collection)) >= count, what=what)


def published(sim, did: str | None = None, kinds=("commit", "identity", "account")) -> list[dict]:
    return [e for e in sim.jetstream_events() if (did is None or e["did"] == did) and e["kind"] in kinds
            and (e["kind"] != "commit" or e["commit"]["collection"] == "app.bsky.feed.post")]


def test_posts_of_followed_accounts_are_captured_as_sent_with_sfm(make_bsky, tmp_path):
    sim = make_bsky(jetstream={"events_per_second": 100})
    alice, bob = sim.did_of("alice.bsky.test"), sim.did_of("bob.bsky.test")
    supervisor, ctx = start(tmp_path, sim, [officials("alice.bsky.test", bob), jetstream(from_collections=["officials"])])
    try:
        sim.post(alice, text="from alice")
        sim.post(bob, text="from bob")
        sim.post(sim.did_of("carol.bsky.test"), text="from carol, not followed")
        wanted = published(sim, alice) + published(sim, bob)
        wait_captured(supervisor, ctx, len(wanted), "the followed posts captured")
    finally:
        supervisor.stop()
    lines = captured(ctx.config.paths.archive, "live")
    assert sorted(event_keys(lines)) == sorted(published_key(e) for e in wanted)
    assert {line["did"] for line in lines} == {alice, bob}
    meta = lines[0]["__sfm"]
    assert meta["collection"] == "live" and meta["job"] == "jetstream" and meta["platform"] == "bluesky"
    assert meta["connection"].startswith("jetstream-")
    # each line is the server's bytes with `__sfm` spliced in before the closing brace
    sent = {published_key(e): e for e in wanted}
    for raw in raw_lines(ctx.config.paths.archive, "live"):
        body = raw[:raw.rindex(b',"__sfm":')] + b"}"
        assert json.loads(body) == sent[published_key(json.loads(raw))]
    cursor = ctx.store.stream_cursor("live")["cursor"]
    assert cursor == max(line["time_us"] for line in lines)
    run = ctx.store.runs(collection="live")[-1]
    assert run["result"] == "ok" and run["counts"]["messages"] == len(lines) and run["job"] == "jetstream"
    events = [e["event"] for e in ctx.store.stream_events("live")]
    assert events[:2] == ["start", "connect"] and events[-1] == "stop"


def test_keywords_match_words_and_hashtags_of_any_account(make_bsky, tmp_path):
    sim = make_bsky(jetstream={"events_per_second": 150})
    supervisor, ctx = start(tmp_path, sim, [jetstream("climate", keywords=["#climate", "flood"])])
    first = len(sim.jetstream_events())  # the subscriber is placed: from here on everything is sent to it
    try:
        wait_for(lambda: len(published(sim)) > first + 120, what="background traffic")
        mine = sim.post(sim.did_of("carol.bsky.test"), text="Floods? No: FLOOD. Really")
        count = len(sim.jetstream_events())
        rkey = mine.rsplit("/", 1)[1]
        # events come in order: once the last post is captured, every earlier one has been read
        wait_for(lambda: supervisor.flush() or any(line["commit"]["rkey"] == rkey
                                                   for line in captured(ctx.config.paths.archive, "climate")),
                 what="the last post captured")
    finally:
        supervisor.stop()
    lines = captured(ctx.config.paths.archive, "climate")
    keys = event_keys(lines)
    expected = {published_key(event) for event in sim.jetstream_events()[first:count] if holds_a_keyword(event)}
    assert expected and expected <= set(keys) and len(keys) == len(set(keys))
    assert all(holds_a_keyword(line) for line in lines)  # and nothing else (later events too)


def holds_a_keyword(event: dict) -> bool:
    """`#climate` (a tag facet, or written) or the word "flood", in a new post."""
    record = event.get("commit", {}).get("record") or {}
    if event["kind"] != "commit" or event["commit"]["operation"] != "create" or record.get("$type") != "app.bsky.feed.post":
        return False
    tags = {f["tag"].lower() for facet in record.get("facets", []) for f in facet["features"] if "tag" in f}
    words = set(re.findall(r"[#\w][\w'-]*", record["text"].lower()))
    return "climate" in tags or "#climate" in words or "flood" in words


@pytest.mark.parametrize("wire", ["plain", "variant"])
def test_the_wire_style_is_kept_byte_for_byte(make_bsky, tmp_path, wire):
    sim = make_bsky(wire=wire)
    alice = sim.did_of("alice.bsky.test")
    supervisor, ctx = start(tmp_path, sim, [officials("alice.bsky.test"), jetstream(from_collections=["officials"])])
    try:
        for number in range(5):
            sim.post(alice, text=f"post {number} ✓ \"quoted\" / slash")
        wait_captured(supervisor, ctx, 5, "5 posts")
    finally:
        supervisor.stop()
    documents = {published_key(e): e for e in published(sim, alice)}
    for raw in raw_lines(ctx.config.paths.archive, "live"):
        document = json.loads(raw)
        head = raw[:raw.rindex(b',"__sfm":')]
        if wire == "variant":
            assert b"\\/" in head or b"\\u" in head or b": " in head  # the variant's own spelling survives
        assert json.loads(head + b"}") == documents[published_key(document)]


def test_deletes_renames_and_account_changes_are_captured_and_reach_the_ledger(make_bsky, tmp_path):
    sim = make_bsky()
    alice = sim.did_of("alice.bsky.test")
    supervisor, ctx = start(tmp_path, sim, [officials("alice.bsky.test"), jetstream(from_collections=["officials"])])
    try:
        uri = sim.post(alice, text="soon gone")
        sim.delete_post(uri)
        sim.rename(alice, "alice2.bsky.test")
        sim.takedown(alice)
        sim.restore(alice)
        sim.deactivate(alice)
        sim.reactivate(alice)
        sim.delete_account(alice)
        wanted = published(sim, alice)
        wait_captured(supervisor, ctx, len(wanted), "every event of alice")
    finally:
        supervisor.stop()
    lines = captured(ctx.config.paths.archive, "live")
    assert sorted(event_keys(lines)) == sorted(published_key(e) for e in wanted)
    assert [line["commit"]["operation"] for line in lines if line["kind"] == "commit"] == ["create", "delete"]
    ledger = [r for r in read_ledger(ctx.config.paths.state) if r["account_id"] == alice]
    assert [(r["event"], r["from"], r["to"]) for r in ledger[1:]] == [
        ("renamed", "alice.bsky.test", "alice2.bsky.test"),
        ("suspended", "active", "suspended"), ("unsuspended", "suspended", "active"),
        ("deactivated", "active", "deactivated"), ("reactivated", "deactivated", "active"),
        ("deactivated", "active", "deactivated"),
    ]
    assert ledger[0]["event"] == "added" and ledger[0]["collection"] == "live"
    assert {r["platform"] for r in ledger} == {"bluesky"}
    assert all(r["observed_by"]["job"] == "jetstream" for r in ledger)


def test_a_dropped_connection_resumes_from_the_cursor_without_loss_or_doubles(make_bsky, tmp_path):
    sim = make_bsky(jetstream={"events_per_second": 50})
    alice = sim.did_of("alice.bsky.test")
    supervisor, ctx = start(tmp_path, sim, [officials("alice.bsky.test"), jetstream(from_collections=["officials"])])
    try:
        for round_ in range(3):
            for number in range(10):
                sim.post(alice, text=f"round {round_} post {number}")
            before = sim.counters["jetstream_connections"]
            assert sim.drop_jetstream_connections() == 1
            for number in range(5):
                sim.post(alice, text=f"round {round_} while away {number}")
            wait_for(lambda before=before: sim.counters["jetstream_connections"] > before
                     and supervisor.status()["live"]["connected"],
                     what="the reconnect")
        wanted = published(sim, alice)
        wait_captured(supervisor, ctx, len(wanted), "every post")
        status = supervisor.status()["live"]
    finally:
        supervisor.stop()
    keys = event_keys(captured(ctx.config.paths.archive, "live"))
    assert len(keys) == len(set(keys)) == len(wanted) == 45
    assert set(keys) == {published_key(e) for e in wanted}
    assert status["duplicates"] > 0  # the overlap was asked for again and dropped
    events = [e["event"] for e in ctx.store.stream_events("live")]
    assert events.count("disconnect") == 3 and events.count("connect") == 4 and events.count("reconnect") == 3


def test_fetch_urls_resolves_the_links_of_posts_captured_from_jetstream(make_bsky, make_simulator, tmp_path):
    from sfm_archiver.jobs.urls import fetch_urls
    from sfm_archiver.timeutil import utcnow
    from tests.bluesky.helpers import lines

    base = make_simulator().base_url  # the X simulator's shortener: real local redirects
    link, embedded = f"{base}/s/chain/2/301/jet-one", f"{base}/s/chain/1/302/jet-two"
    sim = make_bsky()
    alice = sim.did_of("alice.bsky.test")
    supervisor, ctx = start(tmp_path, sim, [officials("alice.bsky.test"), jetstream(from_collections=["officials"])],
                            urls={"timeout": "2s", "warc": False})
    try:
        one = sim.post(alice, text="a link in the text", links=[link])
        two = sim.post(alice, text="two links", links=[link, embedded])
        sim.delete_post(one)  # a delete carries no record: no links
        wait_captured(supervisor, ctx, len(published(sim, alice)), "the posts and the delete captured")
    finally:
        supervisor.stop()
    today = utcnow().date()
    run = fetch_urls(ctx, "live", today, today)
    assert run["result"] == "ok" and run["counts"]["posts"] == 2, run
    results = {line["url"]: line for line in lines(ctx.config.paths.archive, "live", kind="urls")}
    assert set(results) == {link, embedded}
    assert sorted(results[link]["tweet_ids"]) == sorted([one, two]) and results[embedded]["tweet_ids"] == [two]
    assert all(line["final_status"] == 200 for line in results.values())
