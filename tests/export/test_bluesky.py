"""Export of Bluesky captures: author-feed pages and Jetstream events, written by hand in the
documented capture format (gzip JSON lines, each an answer or event plus `__sfm`).

The oracle is a plain gzip + `json.loads` reading of those captures (`oracle_rows`), written from
the wire format, never from the exporter's flattening.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest

from sfm_archiver.errors import UsageError
from sfm_archiver.export import ExportRequest, run_export

from .helpers import add_capture, raw_captures, read_csv_rows, unguard

FORMATS = ("csv", "tsv", "xlsx", "jsonl", "parquet", "ids")
ALICE = ("did:plc:alice2345alice2345alice23", "alice.bsky.social", "Alice Ærø")
BRUNO = ("did:plc:bruno2345bruno2345bruno23", "bruno.example.edu", "Bruno 🌊")
CAROL = ("did:web:carol.example", "carol.example", None)
T1, T2 = "2026-11-27T13:05:00.000Z", "2026-11-27T14:05:00.000Z"


def profile(who: tuple) -> dict:
    did, handle, name = who
    out = {"did": did, "handle": handle, "labels": [], "createdAt": "2024-02-01T00:00:00.000Z", "viewer": {}}
    if name:
        out["displayName"] = name
    return out


def facet(text: str, part: str, feature: dict) -> dict:
    """A facet over `part` of `text`, its index in UTF-8 bytes as the lexicon says."""
    start = text.encode("utf-8").index(part.encode("utf-8"))
    return {"index": {"byteStart": start, "byteEnd": start + len(part.encode("utf-8"))}, "features": [feature]}


def post_record(text: str, created: str, links: tuple[str, ...] = (), tags: tuple[str, ...] = (),
                mentions: tuple[tuple[str, str], ...] = (), **extra) -> dict:
    facets = [facet(text, shown, {"$type": "app.bsky.richtext.facet#link", "uri": uri}) for shown, uri in
              ((uri.split("//")[1][:20], uri) for uri in links)]
    facets += [facet(text, f"#{tag}", {"$type": "app.bsky.richtext.facet#tag", "tag": tag}) for tag in tags]
    facets += [facet(text, f"@{handle}", {"$type": "app.bsky.richtext.facet#mention", "did": did}) for handle, did in mentions]
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": created, "langs": ["en"]}
    if facets:
        record["facets"] = facets
    record.update(extra)
    return record


def post_view(who: tuple, rkey: str, record: dict, likes: int = 0, indexed: str = "2026-11-27T12:00:01.000Z") -> dict:
    return {"uri": f"at://{who[0]}/app.bsky.feed.post/{rkey}", "cid": f"bafyrei{rkey}cid", "author": profile(who),
            "record": record, "replyCount": 1, "repostCount": 2, "likeCount": likes, "quoteCount": 0,
            "indexedAt": indexed, "labels": []}


def alice_feed(likes: int, new_post: bool = False) -> list[dict]:
    """Alice's author feed, newest first: replies, links, a quote, a repost, a pin, non-ASCII text."""
    text1 = "Flood maps 🌊 for Ærø: see https://example.org/maps/aero?lang=da #klima @bruno.example.edu"
    first = post_record(text1, "2026-11-27T10:00:00.123Z", links=("https://example.org/maps/aero?lang=da",),
                        tags=("klima",), mentions=(("bruno.example.edu", BRUNO[0]),))
    text2 = "=SUM(A1) is not a formula here; 日本語 too"
    second = post_record(text2, "2026-11-27T09:00:00Z", embed={
        "$type": "app.bsky.embed.external",
        "external": {"uri": "https://news.example.com/story", "title": "Story", "description": "ø"}})
    reply = post_record("@bruno agreed, ça va", "2026-11-27T08:30:00.000+00:00", reply={
        "root": {"uri": f"at://{BRUNO[0]}/app.bsky.feed.post/3broot", "cid": "bafyroot"},
        "parent": {"uri": f"at://{BRUNO[0]}/app.bsky.feed.post/3bparent", "cid": "bafyparent"}})
    quote = post_record("quoting this", "2026-11-27T08:00:00Z", embed={
        "$type": "app.bsky.embed.record", "record": {"uri": f"at://{CAROL[0]}/app.bsky.feed.post/3cq", "cid": "bafyq"}})
    feed = [
        {"post": post_view(ALICE, "3a1", first, likes)},
        {"post": post_view(ALICE, "3a2", second, likes + 1)},
        {"post": post_view(ALICE, "3a3", reply, likes),
         "reply": {"root": post_view(BRUNO, "3broot", post_record("root", "2026-11-26T00:00:00Z")),
                   "parent": post_view(BRUNO, "3bparent", post_record("parent", "2026-11-26T01:00:00Z"))}},
        {"post": post_view(ALICE, "3a4", quote, likes)},
        {"post": post_view(BRUNO, "3b9", post_record("Bruno's own post, reposted by Alice", "2026-11-26T20:00:00Z"), 40),
         "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": profile(ALICE), "indexedAt": "2026-11-27T07:00:00Z"}},
        {"post": post_view(ALICE, "3a0", post_record("pinned: about this account", "2026-11-01T00:00:00Z"), likes),
         "reason": {"$type": "app.bsky.feed.defs#reasonPin"}},
    ]
    if new_post:
        feed.insert(0, {"post": post_view(ALICE, "3a5", post_record("a new one +1", "2026-11-27T14:00:00Z"), 0)})
    return feed


def feed_page(feed: list[dict], captured: str, collection: str = "bsky", cursor: str | None = "2026-11-01T00:00:00Z") -> dict:
    page = {"feed": feed}
    if cursor:
        page["cursor"] = cursor
    page["__sfm"] = {"platform": "bluesky", "collection": collection, "captured_at": captured, "job": "user_timeline",
                     "account": {"id": ALICE[0], "username": ALICE[1]},
                     "url": f"https://public.api.bsky.app/xrpc/app.bsky.feed.getAuthorFeed?actor={ALICE[0]}&limit=100",
                     "version": "test"}
    return page


def event(kind: str, body: dict, did: str, time_us: int, captured: str, collection: str = "bsky-live") -> dict:
    return {"did": did, "time_us": time_us, "kind": kind, kind: body,
            "__sfm": {"platform": "bluesky", "collection": collection, "captured_at": captured, "job": "jetstream",
                      "connection": "c1", "version": "test"}}


def jetstream_events() -> list[dict]:
    text = "live: 🌧 rain in Ærø https://rain.example/now #flood"
    created = post_record(text, "2026-11-27T13:10:00.000Z", links=("https://rain.example/now",), tags=("flood",))
    return [
        event("commit", {"rev": "r1", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3j1",
                         "record": created, "cid": "bafyj1"}, BRUNO[0], 1795784400000001, T1),
        event("commit", {"rev": "r2", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3j2",
                         "record": post_record("-minus at the start", "2026-11-27T13:11:00Z"), "cid": "bafyj2"},
              CAROL[0], 1795784400000001, T1),  # the same time_us as the one before: the server may send that
        event("commit", {"rev": "r3", "operation": "delete", "collection": "app.bsky.feed.post", "rkey": "3j0"},
              BRUNO[0], 1795784400000002, T1),
        event("commit", {"rev": "r4", "operation": "create", "collection": "app.bsky.feed.like", "rkey": "3l1",
                         "record": {"$type": "app.bsky.feed.like", "subject": {"uri": "at://x", "cid": "y"},
                                    "createdAt": "2026-11-27T13:12:00Z"}, "cid": "bafyl"}, BRUNO[0], 1795784400000003, T1),
        event("identity", {"did": BRUNO[0], "handle": BRUNO[1], "seq": 1, "time": "2026-11-27T13:12:00Z"},
              BRUNO[0], 1795784400000004, T1),
        event("account", {"active": False, "did": CAROL[0], "seq": 2, "time": "2026-11-27T13:13:00Z", "status": "deactivated"},
              CAROL[0], 1795784400000005, T1),
    ]


@pytest.fixture
def archive(tmp_path) -> Path:
    """Two captures of Alice's feed (an hour apart: counts changed, one new post) and a Jetstream capture."""
    root = tmp_path / "archive"
    add_capture(root, "bsky", "timeline", [feed_page(alice_feed(3), T1)], stamp="20261127T130500Z")
    add_capture(root, "bsky", "timeline", [feed_page(alice_feed(7, new_post=True)[:4], T2),
                                          feed_page(alice_feed(7)[3:], T2, cursor=None)], stamp="20261127T140500Z")
    add_capture(root, "bsky-live", "stream", jetstream_events(), stamp="20261127T131000Z")
    return root


# -- the oracle ------------------------------------------------------------------------------


def oracle_rows(archive: Path, collections: tuple[str, ...] = ("bsky", "bsky-live")) -> list[dict]:
    """Every post capture, from the raw lines: key, uri, text, did, handle, created_at, links,
    repost.by, like_count, captured_at."""
    out = []
    for collection in collections:
        for line in raw_captures(archive, collection):
            captured = line["__sfm"]["captured_at"]
            if "feed" in line:
                for item in line["feed"]:
                    post, record = item["post"], item["post"]["record"]
                    by = item.get("reason", {}).get("by", {}).get("did") if item.get("reason", {}).get("$type", "").endswith("#reasonRepost") else None
                    out.append({"key": post["uri"] + (f" repost:{by}" if by else ""), "uri": post["uri"], "text": record["text"],
                                "did": post["author"]["did"], "handle": post["author"]["handle"], "created_at": record["createdAt"],
                                "links": links_of(record), "repost.by": by, "like_count": post["likeCount"], "captured_at": captured})
            elif line.get("kind") == "commit" and line["commit"]["operation"] == "create" and line["commit"]["collection"] == "app.bsky.feed.post":
                record = line["commit"]["record"]
                uri = f"at://{line['did']}/app.bsky.feed.post/{line['commit']['rkey']}"
                out.append({"key": uri, "uri": uri, "text": record["text"], "did": line["did"], "handle": None,
                            "created_at": record["createdAt"], "links": links_of(record), "repost.by": None, "like_count": None,
                            "captured_at": captured})
    return out


def links_of(record: dict) -> list[str] | None:
    found = [f["uri"] for facet in record.get("facets", []) for f in facet["features"] if f["$type"].endswith("#link")]
    found += [record["embed"]["external"]["uri"]] if record.get("embed", {}).get("$type") == "app.bsky.embed.external" else []
    return found or None


def deduped(rows: list[dict], keep: str = "latest") -> dict[str, dict]:
    best: dict[str, dict] = {}
    for row in rows:
        held = best.get(row["key"])
        if held is None or (keep == "latest" and row["captured_at"] >= held["captured_at"]) or (
                keep == "first" and row["captured_at"] < held["captured_at"]):
            best[row["key"]] = row
    return best


# -- reading an export back, each format with its own reader ----------------------------------------


def exported(folder: Path, fmt: str) -> list[dict]:
    """Rows as dicts (csv, tsv, xlsx, parquet), posts made comparable (jsonl), or {"uri"} (ids)."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lstrip(".") == {"ids": "txt"}.get(fmt, fmt)
                   and p.name not in ("README.txt", "manifest-sha256.txt"))
    rows: list[dict] = []
    if fmt in ("csv", "tsv"):
        rows = [{**row, "text": unguard(row["text"])} for row in read_csv_rows(folder, fmt)]
    elif fmt == "xlsx":
        for path in files:
            header, *body = list(openpyxl.load_workbook(path, read_only=True)["posts"].iter_rows(values_only=True))
            rows += [dict(zip(header, values, strict=True)) for values in body]
    elif fmt == "parquet":
        for path in files:
            rows += pq.read_table(path).to_pylist()
    elif fmt == "jsonl":
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                item = json.loads(line)
                if "post" in item:
                    by = item.get("reason", {}).get("by", {}).get("did")
                    rows.append({"uri": item["post"]["uri"], "text": item["post"]["record"]["text"], "repost.by": by,
                                 "captured_at": item["__sfm"]["captured_at"]})
                else:
                    rows.append({"uri": f"at://{item['did']}/app.bsky.feed.post/{item['commit']['rkey']}",
                                 "text": item["commit"]["record"]["text"], "repost.by": None,
                                 "captured_at": item["__sfm"]["captured_at"]})
    else:
        rows = [{"uri": uri} for path in files for uri in path.read_text(encoding="utf-8").splitlines()]
    return rows


def text_value(value) -> str | None:
    """A cell as text: empty cells are None, JSON cells parsed."""
    return None if value in (None, "") else value


def as_time(value) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def run(archive: Path, out: Path, collections: tuple[str, ...] = ("bsky", "bsky-live"), **options):
    return run_export(ExportRequest(collections=collections, sources=(archive,), out=out, **options))


# -- the tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_the_posts_of_the_captures(archive, tmp_path, fmt):
    expected = deduped(oracle_rows(archive))
    result = run(archive, tmp_path / "out", format=fmt)
    assert result.exit_code == 0, result.problems
    assert result.platform == "bluesky"
    rows = exported(tmp_path / "out", fmt)
    assert result.rows == len(rows) == len(expected) == 9  # 6 posts and a repost of the feed, 2 post creations
    if fmt == "ids":
        assert sorted(row["uri"] for row in rows) == sorted(row["uri"] for row in expected.values())
        return
    got = {row["uri"] + (f" repost:{row['repost.by']}" if row.get("repost.by") else ""): row for row in rows}
    assert got.keys() == expected.keys()
    for key, want in expected.items():
        row = got[key]
        assert row["text"] == want["text"], (fmt, key)
        assert as_time(row["captured_at"]) == as_time(want["captured_at"]), (fmt, key)
        if fmt == "jsonl":
            continue
        assert row["did"] == want["did"] and text_value(row["handle"]) == want["handle"], (fmt, key)
        assert as_time(row["created_at"]).replace(microsecond=0) == as_time(want["created_at"]).replace(microsecond=0)
        links = row["links"]
        assert (json.loads(links) if links else None) == want["links"], (fmt, key)
        count = row["like_count"]
        assert (None if count in (None, "") else int(count)) == want["like_count"], (fmt, key)


def test_the_columns_of_a_feed_item_and_of_a_jetstream_event(archive, tmp_path):
    run(archive, tmp_path / "out", format="csv", dedupe="none")
    rows = read_csv_rows(tmp_path / "out")
    by_uri = {(row["uri"], row["repost.by"], row["captured_at"]): row for row in rows}
    first = by_uri[(f"at://{ALICE[0]}/app.bsky.feed.post/3a1", "", T2)]
    assert (first["cid"], first["display_name"], first["langs"], first["indexed_at"]) == (
        "bafyrei3a1cid", "Alice Ærø", '["en"]', "2026-11-27T12:00:01.000Z")
    assert (first["reply_count"], first["repost_count"], first["like_count"], first["quote_count"]) == ("1", "2", "7", "0")
    assert json.loads(first["tags"]) == ["klima"] and json.loads(first["mentions"]) == [BRUNO[0]]
    assert (first["collection"], first["kind"], first["time_us"]) == ("bsky", "timeline", "")
    reply = by_uri[(f"at://{ALICE[0]}/app.bsky.feed.post/3a3", "", T1)]
    assert (reply["reply.parent"], reply["reply.root"]) == (
        f"at://{BRUNO[0]}/app.bsky.feed.post/3bparent", f"at://{BRUNO[0]}/app.bsky.feed.post/3broot")
    quote = by_uri[(f"at://{ALICE[0]}/app.bsky.feed.post/3a4", "", T1)]
    assert quote["quote.uri"] == f"at://{CAROL[0]}/app.bsky.feed.post/3cq"
    second = by_uri[(f"at://{ALICE[0]}/app.bsky.feed.post/3a2", "", T1)]
    assert second["text"] == "'=SUM(A1) is not a formula here; 日本語 too"  # the formula guard
    assert json.loads(second["links"]) == ["https://news.example.com/story"]
    repost = by_uri[(f"at://{BRUNO[0]}/app.bsky.feed.post/3b9", ALICE[0], T1)]
    assert (repost["did"], repost["handle"], repost["repost.by_handle"], repost["like_count"]) == (
        BRUNO[0], BRUNO[1], ALICE[1], "40")
    pinned = by_uri[(f"at://{ALICE[0]}/app.bsky.feed.post/3a0", "", T1)]
    assert pinned["repost.by"] == ""  # a pin is the post itself
    live = by_uri[(f"at://{BRUNO[0]}/app.bsky.feed.post/3j1", "", T1)]
    assert (live["cid"], live["did"], live["handle"], live["indexed_at"], live["like_count"]) == ("bafyj1", BRUNO[0], "", "", "")
    assert (live["time_us"], live["kind"], live["collection"]) == ("1795784400000001", "stream", "bsky-live")
    assert json.loads(live["links"]) == ["https://rain.example/now"] and json.loads(live["tags"]) == ["flood"]
    # rows: 6 + 4 + 3 feed items in three pages, and the two post creations (no delete, like, identity, account)
    assert len(rows) == 6 + 4 + 3 + 2
    readme = (tmp_path / "out" / "README.txt").read_text()
    assert "platform: bluesky" in readme and "uri (str): the post's at:// URI" in readme
    assert "id (id)" not in readme


@pytest.mark.parametrize("keep", ["latest", "first"])
def test_dedupe_across_two_captures_keeps_one_row_per_uri(archive, tmp_path, keep):
    expected = deduped(oracle_rows(archive), keep)
    result = run(archive, tmp_path / "out", format="parquet", dedupe=keep)
    rows = pq.read_table(next((tmp_path / "out").glob("*.parquet"))).to_pylist()
    assert result.rows == len(rows) == len(expected)
    first = [row for row in rows if row["uri"].endswith("/3a1")]
    assert [row["like_count"] for row in first] == [7 if keep == "latest" else 3]
    assert len({(row["uri"], row["repost.by"]) for row in rows}) == len(rows)
    # the repost and the reposted post's own row (had it been captured) are different keys
    assert {row["repost.by"] for row in rows if row["uri"].endswith("/3b9")} == {ALICE[0]}
    none = run(archive, tmp_path / "none", format="ids", dedupe="none")
    assert none.rows == len(oracle_rows(archive)) == 15


def test_filters_by_account_handle_did_and_time(archive, tmp_path):
    by_handle = run(archive, tmp_path / "h", format="ids", accounts=("bruno.example.edu",))
    assert sorted((tmp_path / "h" / "bsky+bsky-live_001.txt").read_text().split()) == [
        f"at://{BRUNO[0]}/app.bsky.feed.post/3b9"]  # the Jetstream event has no handle
    assert by_handle.rows == 1
    by_did = run(archive, tmp_path / "d", format="ids", accounts=(BRUNO[0],))
    assert by_did.rows == 2
    assert sorted((tmp_path / "d" / "bsky+bsky-live_001.txt").read_text().split()) == [
        f"at://{BRUNO[0]}/app.bsky.feed.post/3b9", f"at://{BRUNO[0]}/app.bsky.feed.post/3j1"]
    timed = run(archive, tmp_path / "t", format="ids", start="2026-11-27T09:00:00Z", end="2026-11-27T13:11:00Z")
    assert sorted((tmp_path / "t" / "bsky+bsky-live_001.txt").read_text().split()) == sorted([
        f"at://{ALICE[0]}/app.bsky.feed.post/3a1", f"at://{ALICE[0]}/app.bsky.feed.post/3a2",
        f"at://{BRUNO[0]}/app.bsky.feed.post/3j1"])
    assert timed.exit_code == 0


def test_links_join_their_final_urls(archive, tmp_path):
    add_capture(archive, "bsky", "urls", [
        {"url": "https://news.example.com/story", "final_url": "https://news.example.com/2026/story.html", "final_status": 200,
         "__sfm": {"captured_at": T2, "collection": "bsky", "job": "fetch_urls"}}], stamp="20261127T150000Z")
    run(archive, tmp_path / "csv", format="csv")
    rows = {row["uri"]: row for row in read_csv_rows(tmp_path / "csv")}
    assert json.loads(rows[f"at://{ALICE[0]}/app.bsky.feed.post/3a2"]["urls.final"]) == ["https://news.example.com/2026/story.html"]
    assert rows[f"at://{ALICE[0]}/app.bsky.feed.post/3a1"]["urls.final"] == ""


def test_unknown_fields_break_nothing_and_are_counted(archive, tmp_path):
    page = feed_page(alice_feed(9), "2026-11-27T15:00:00.000Z")
    for item in page["feed"]:
        item["zzNewItemField"] = {"a": 1}
        item["post"]["zzBookmarks"] = 5
        item["post"]["author"]["zzPronouns"] = ["they"]
        item["post"]["record"]["zzDraft"] = True
    page["feed"][0]["post"]["likeCount"] = "many"  # a known field of an unexpected type
    page["feed"][1]["post"]["record"]["createdAt"] = "not a time"
    events = copy.deepcopy(jetstream_events())
    events[0]["commit"]["zzSig"] = "abc"
    add_capture(archive, "bsky", "timeline", [page], stamp="20261127T150000Z")
    add_capture(archive, "bsky-live", "stream", events, stamp="20261127T150000Z")
    for fmt in FORMATS:
        result = run(archive, tmp_path / fmt, format=fmt, columns="all" if fmt == "csv" else None)
        assert result.exit_code == 0, (fmt, result.problems)
        readme = (tmp_path / fmt / "README.txt").read_text()
        for path in ("zzNewItemField", "post.zzBookmarks", "post.author.zzPronouns", "post.record.zzDraft", "commit.zzSig"):
            assert f"{path}: " in readme, (fmt, path)
    extra = {json.dumps(json.loads(row["extra"]), sort_keys=True) for row in read_csv_rows(tmp_path / "csv") if row["extra"]}
    assert json.dumps({"post.author.zzPronouns": ["they"], "post.record.zzDraft": True, "post.zzBookmarks": 5,
                       "zzNewItemField": {"a": 1}}, sort_keys=True) in extra
    parquet = pq.read_table(next((tmp_path / "parquet").glob("*.parquet"))).to_pylist()
    assert [row["like_count"] for row in parquet if row["uri"].endswith("/3a1")] == [None]  # "many": no int


def test_collections_of_two_platforms_are_refused(archive, tmp_path):
    add_capture(archive, "tl", "timeline", [{"data": [{"id": "1", "text": "x post", "author_id": "9"}],
                                             "__sfm": {"captured_at": T1, "collection": "tl"}}])
    with pytest.raises(UsageError, match=r"different platforms \(bluesky: bsky; x: tl\).*export each platform"):
        run(archive, tmp_path / "out", collections=("bsky", "tl"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    x_only = run(archive, tmp_path / "x", collections=("tl",), format="ids")
    assert (x_only.platform, x_only.rows) == ("x", 1)


def test_columns_are_chosen_from_the_platform_table(archive, tmp_path):
    run(archive, tmp_path / "out", format="tsv", columns="uri,text,repost.by")
    rows = read_csv_rows(tmp_path / "out", "tsv")
    assert list(rows[0]) == ["uri", "text", "repost.by"]
    with pytest.raises(UsageError, match="unknown column.*of bluesky posts.*author_id"):
        run(archive, tmp_path / "x", columns="uri,author_id")
    with pytest.raises(UsageError, match="unknown column.*nonsense"):
        run(archive, tmp_path / "y", columns="nonsense")


def test_a_bluesky_line_inside_an_x_collection_is_reported_not_mixed(tmp_path):
    root = tmp_path / "archive"
    add_capture(root, "tl", "timeline", [
        {"data": [{"id": "1", "text": "x post", "author_id": "9"}], "__sfm": {"captured_at": T1, "collection": "tl"}},
        feed_page(alice_feed(1), T1, collection="tl")])
    for dedupe in ("latest", "none"):
        result = run(root, tmp_path / dedupe, collections=("tl",), format="ids", dedupe=dedupe)
        assert result.rows == 1 and result.exit_code == 1
        assert any("a bluesky capture in an export of x captures: skipped" in problem for problem in result.problems)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_worker_processes_write_the_same_files(archive, tmp_path, fmt):
    one = run(archive, tmp_path / "one", format=fmt, jobs=1)
    two = run(archive, tmp_path / "two", format=fmt, jobs=2)
    assert one.rows == two.rows == 9
    names = [name for name, _rows in one.files]
    assert names == [name for name, _rows in two.files]
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_every_bluesky_column_is_documented():
    from sfm_archiver.export.columns import BLUESKY_COLUMNS

    text = (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text()
    assert [column.name for column in BLUESKY_COLUMNS if f"| `{column.name}` |" not in text.split("## Bluesky")[-1]] == []
