"""What the bluesky Platform reads of AppView answers: sort times, checkpoints, links, rate windows."""

from __future__ import annotations

from sfm_archiver.platforms import platform_named
from sfm_archiver.platforms.bluesky_platform import already_captured, checkpoint_of, quota_of, sort_time

DID = "did:plc:alice2345alice2345alice23"
BLUESKY = platform_named("bluesky")


def post_item(rkey: str, created: str, indexed: str, **record) -> dict:
    return {"post": {"uri": f"at://{DID}/app.bsky.feed.post/{rkey}", "indexedAt": indexed,
                     "record": {"$type": "app.bsky.feed.post", "createdAt": created, **record}}}


def repost_item(indexed: str, rkey: str = "3lbx7ewzbn22c") -> dict:
    item = post_item("3other", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")
    item["reason"] = {"$type": "app.bsky.feed.defs#reasonRepost", "by": {"did": DID, "handle": "a.test"},
                      "uri": f"at://{DID}/app.bsky.feed.repost/{rkey}", "indexedAt": indexed}
    return item


def test_a_post_sorts_at_the_earlier_of_created_and_indexed_in_milliseconds():
    assert sort_time(post_item("3a", "2026-11-27T10:00:00.123456Z", "2026-11-27T10:00:02Z")) == "2026-11-27T10:00:00.123Z"
    assert sort_time(post_item("3a", "2030-01-01T00:00:00Z", "2026-11-27T10:00:02Z")) == "2026-11-27T10:00:02.000Z"
    assert sort_time(post_item("3a", "not a time", "2026-11-27T10:00:02+00:00")) == "2026-11-27T10:00:02.000Z"


def test_a_repost_sorts_at_its_record_key_when_that_is_earlier_than_its_indexing():
    # 3lbx7ewzbn22c is a TID of 2024-11-25; an indexedAt far later (a backfill) does not move it
    assert sort_time(repost_item("2026-11-27T10:00:00Z")).startswith("2024-11-2")
    assert sort_time(repost_item("2020-01-01T00:00:00Z")) == "2020-01-01T00:00:00.000Z"
    assert sort_time(repost_item("2026-11-27T10:00:00Z", rkey="not-a-tid")) == "2026-11-27T10:00:00.000Z"
    assert checkpoint_of(repost_item("2020-01-01T00:00:00Z")).endswith("/app.bsky.feed.repost/3lbx7ewzbn22c")


def test_the_checkpoint_stops_at_its_item_and_at_older_ones_never_at_its_own_millisecond():
    newest = post_item("3b", "2026-11-27T10:00:00.500Z", "2026-11-27T10:00:01Z")
    checkpoint = checkpoint_of(newest)
    assert checkpoint == f"2026-11-27T10:00:00.500Z at://{DID}/app.bsky.feed.post/3b"
    assert already_captured(newest, checkpoint)
    assert already_captured(post_item("3a", "2026-11-27T10:00:00.499Z", "2026-11-27T10:00:01Z"), checkpoint)
    assert not already_captured(post_item("3c", "2026-11-27T10:00:00.500Z", "2026-11-27T10:00:01Z"), checkpoint)
    assert not already_captured(post_item("3d", "2026-11-27T10:00:01Z", "2026-11-27T10:00:01Z"), checkpoint)
    timeless = post_item("3e", "?", "?")
    assert checkpoint_of(timeless).startswith("- ") and not already_captured(newest, checkpoint_of(timeless))
    assert BLUESKY.page_newest({"feed": [newest, timeless]}) == checkpoint


def test_links_of_facets_and_external_embeds_each_once():
    facets = [{"index": {"byteStart": 0, "byteEnd": 5}, "features": [
        {"$type": "app.bsky.richtext.facet#link", "uri": "https://a.example/1"},
        {"$type": "app.bsky.richtext.facet#tag", "tag": "x"}]}]
    post = post_item("3a", "2026-11-27T10:00:00Z", "2026-11-27T10:00:00Z", facets=facets, embed={
        "$type": "app.bsky.embed.recordWithMedia", "media": {"external": {"uri": "https://b.example/2"}}})["post"]
    post["embed"] = {"$type": "app.bsky.embed.external#view", "external": {"uri": " https://a.example/1 "}}
    assert list(BLUESKY.post_links(post)) == ["https://a.example/1", "https://b.example/2"]
    assert BLUESKY.post_id(post) == f"at://{DID}/app.bsky.feed.post/3a"
    page = {"feed": [{"post": post}, {"nothing": 1}], "cursor": "c"}
    assert list(BLUESKY.record_posts(page)) == [post] and list(BLUESKY.record_posts({"kind": "commit"})) == []


def test_rate_windows_reset_as_epoch_seconds_or_as_seconds_from_the_server_date():
    headers = {"ratelimit-limit": "3000", "ratelimit-remaining": "12", "ratelimit-reset": "1795000000",
               "date": "Sun, 06 Dec 2026 19:00:00 GMT"}
    quota, server_date = BLUESKY.rate_reading(headers)
    assert quota == (3000, 12, 1795000000.0) and server_date == 1796583600.0
    assert BLUESKY.rate_reading({**headers, "ratelimit-reset": "30"})[0].reset == server_date + 30
    assert quota_of({"ratelimit-limit": "x"}) is None
    assert BLUESKY.capture_meta() == {"platform": "bluesky"} and platform_named("x").capture_meta() == {}
