"""The fetch-urls job end to end: captures in, one request per distinct URL, urls lines and WARC out."""

from __future__ import annotations

import gzip
import threading
from datetime import date, datetime, timedelta, timezone

import pytest

from sfm_archiver.errors import LockBusyError, UsageError
from sfm_archiver.jobs.urls import collect_links, fetch_urls, yesterday
from sfm_archiver.locks import collection_lock
from sfm_archiver.storage.layout import parse_capture_name

from .helpers import (
    CAPTURE_DATE,
    CAPTURED_AT,
    assert_no_secret,
    gzip_members,
    index,
    make_ctx,
    tweet,
    url_lines,
    warc_files,
    warcio,
)


def shortener_hits(simulator) -> dict[str, int]:
    return simulator.counters()["shortener"]["hits"]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def write_shared_link_captures(archive, base: str) -> tuple[str, list[str]]:
    """1,000 posts share one link (in timelines, streams and included posts); 12 other links."""
    from .helpers import write_capture

    shared = f"{base}/s/chain/2/301/shared"
    others = [f"{base}/s/chain/{n % 3 + 1}/{(301, 302, 307, 308)[n % 4]}/other{n}" for n in range(10)]
    others += [f"{base}/s/end/404/missing", f"{base}/s/head405/refuser"]
    pages = []
    for page in range(8):
        posts = [tweet(1_000_000 + page * 100 + n, shared) for n in range(100)]
        posts[0] = tweet(posts[0]["id"], shared, others[page])
        record = {"data": posts, "meta": {"result_count": 100}}
        if page == 0:
            # A quoted post arrives in includes.tweets; its link counts too.
            record["includes"] = {"tweets": [tweet(900, others[8], unwound={others[8]: others[9]})]}
        pages.append(record)
    write_capture(archive, "news", "timeline", pages)
    stream = [{"data": tweet(2_000_000 + n, shared, *([others[10]] if n == 0 else []))} for n in range(200)]
    stream[1] = {"data": tweet(2_000_001, others[11], shared)}
    write_capture(archive, "news", "stream", stream)
    return shared, others


def test_each_distinct_url_is_requested_once_per_run_and_never_again(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    archive = ctx.config.paths.archive
    shared, others = write_shared_link_captures(archive, simulator.base_url)

    run = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)

    assert run["result"] == "ok", run
    hits = shortener_hits(simulator)
    assert hits[path_of(shared)] == 1
    for url in [shared, *others]:
        assert hits[path_of(url)] == (2 if "head405" in url else 1), url  # HEAD refused, then GET
    lines = {line["url"]: line for line in url_lines(archive, "news")}
    assert set(lines) == {shared, *others}
    shared_line = lines[shared]
    assert len(shared_line["tweet_ids"]) == 1000 and len(set(shared_line["tweet_ids"])) == 1000
    assert shared_line["final_status"] == 200 and shared_line["error"] is None
    assert [hop["status"] for hop in shared_line["chain"]] == [301, 301, 200]
    assert shared_line["final_url"] == shared.replace("chain/2/", "chain/0/")
    assert shared_line["cached"] is False and shared_line["duration_ms"] >= 0
    meta = shared_line["__sfm"]
    assert meta["collection"] == "news" and meta["job"] == "fetch_urls" and meta["run"] == run["run_id"]
    assert lines[others[8]]["tweet_ids"] == ["900"] and lines[others[9]]["tweet_ids"] == ["900"]
    assert lines[f"{simulator.base_url}/s/end/404/missing"]["error"]["type"] == "http_error"
    counts = run["counts"]
    assert counts["urls"] == 13 and counts["resolved"] == 13 and counts["cached"] == 0
    assert ctx.store.open_files() == []  # the urls and WARC files are closed and unregistered
    assert counts["posts"] == 8 * 100 + 1 + 200

    before = dict(shortener_hits(simulator))
    again = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)
    assert shortener_hits(simulator) == before, "a second run requested URLs again"
    assert again["counts"]["cached"] == 13 and again["counts"].get("resolved", 0) == 0
    assert [line for line in url_lines(archive, "news") if line["__sfm"]["run"] == again["run_id"]] == []

    refetched = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE, refetch=True)
    assert refetched["counts"]["resolved"] == 13
    assert shortener_hits(simulator)[path_of(shared)] == 2


def test_results_of_every_kind_in_the_urls_file(tmp_path, simulator):
    from .helpers import write_capture

    base = simulator.base_url
    ctx = make_ctx(tmp_path, base, urls={"timeout": "300ms", "max_hops": 4})
    expected = {
        f"{base}/s/chain/1/307/k1": (200, None, [307, 200]),
        f"{base}/s/chain/3/308/k3": (200, None, [308, 308, 308, 200]),
        f"{base}/s/chain/6/302/k6": (302, "too_many_hops", [302, 302, 302, 302, 302]),
        f"{base}/s/loop/k": (302, "loop", [302, 302]),
        f"{base}/s/head405/k": (200, None, [301, 200]),
        f"{base}/s/end/410/k": (410, "http_error", [410]),
        f"{base}/s/end/500/k": (500, "http_error", [500]),
        f"{base}/s/hang/k": (None, "timeout", [None]),
        "not a url": (None, "malformed_url", []),
    }
    write_capture(ctx.config.paths.archive, "news", "timeline",
                  [{"data": [tweet(10 + n, url) for n, url in enumerate(expected)]}])
    run = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)
    lines = {line["url"]: line for line in url_lines(ctx.config.paths.archive, "news")}
    for url, (status, error, chain) in expected.items():
        line = lines[url]
        assert line["final_status"] == status, url
        assert (line["error"] or {}).get("type") == error, url
        assert [hop["status"] for hop in line["chain"]] == chain, url
    assert run["counts"]["failed"] == 6 and run["result"] == "ok"
    # Passing failures are not cached: the next run tries the timeout and the 500 again.
    again = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)
    assert again["counts"]["resolved"] == 2 and again["counts"]["cached"] == 7


def test_link_checks_go_to_a_valid_warc_without_the_token(tmp_path, simulator):
    from .helpers import write_capture

    base = simulator.base_url
    ctx = make_ctx(tmp_path, base)
    write_capture(ctx.config.paths.archive, "news", "timeline",
                  [{"data": [tweet(1, f"{base}/s/chain/2/302/w"), tweet(2, f"{base}/s/head405/w")]}])
    run = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)
    (path,) = warc_files(ctx.config.paths.archive)
    parts = parse_capture_name(path.name)
    assert parts["collection"] == "news" and parts["kind"] == "urls"
    urls_file = next(ctx.config.paths.archive.rglob("news-urls-*.jsonl.gz"))
    assert path.parent == urls_file.parent  # beside the JSON lines, in the same hour folder
    check = warcio("check", "-v", str(path))
    assert check.returncode == 0, check.stdout + check.stderr
    records = index(path)
    assert records[0]["warc-type"] == "warcinfo"
    responses = [r for r in records if r["warc-type"] == "response"]
    requests_ = [r for r in records if r["warc-type"] == "request"]
    assert len(responses) == len(requests_) == run["counts"]["requests"] == 3 + 3
    by_id = {r["warc-record-id"]: r for r in responses}
    for request in requests_:
        assert by_id[request["warc-concurrent-to"]]["warc-target-uri"] == request["warc-target-uri"]
    assert sorted(r["http:status"] for r in responses) == ["200", "200", "301", "302", "302", "405"]
    assert gzip_members(path) == len(records) == run["counts"]["warc_records"] + 1
    text = gzip.decompress(path.read_bytes())
    assert b"software: sfm-archiver/" in text and b"collection: news" in text and b"job: fetch_urls" in text
    assert b"User-Agent: sfm-archiver/" in text and b"archives@example.edu" in text
    assert_no_secret(tmp_path / "archive")


def test_warc_can_be_switched_off(tmp_path, simulator):
    from .helpers import write_capture

    ctx = make_ctx(tmp_path, simulator.base_url, urls={"warc": False})
    write_capture(ctx.config.paths.archive, "news", "timeline",
                  [{"data": [tweet(1, f"{simulator.base_url}/s/chain/1/301/off")]}])
    assert fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)["counts"]["resolved"] == 1
    assert warc_files(ctx.config.paths.archive) == []


def test_damaged_captures_are_reported_with_file_and_line_and_skipped(tmp_path, simulator):
    from .helpers import capture_line, write_capture

    base = simulator.base_url
    ctx = make_ctx(tmp_path, base)
    archive = ctx.config.paths.archive
    good = write_capture(archive, "news", "timeline", [{"data": [tweet(1, f"{base}/s/chain/1/301/good")]}])
    bad_json = good.with_name(good.name.replace(".jsonl.gz", "-1.jsonl.gz"))
    lines = [capture_line({"data": [tweet(2, f"{base}/s/chain/1/301/fine")]}, "news"), b"{not json\n", b"[1, 2]\n"]
    bad_json.write_bytes(gzip.compress(b"".join(lines)))
    torn = good.with_name(good.name.replace(".jsonl.gz", "-2.jsonl.gz"))
    member = gzip.compress(capture_line({"data": [tweet(3, f"{base}/s/chain/1/301/early")]}, "news"))
    tail = gzip.compress(capture_line({"data": [tweet(4, f"{base}/s/chain/1/301/lost")]}, "news"))
    torn.write_bytes(member + tail[:-12])  # the last member is torn, as by a power cut

    run = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)

    assert run["result"] == "warning"
    warnings = "\n".join(run["warnings"])
    assert f"{bad_json}:2: not valid JSON" in warnings
    assert f"{bad_json}:3: not a JSON object" in warnings
    assert f"{torn}:2: cannot decompress" in warnings
    assert run["counts"]["damaged"] == 3
    assert {line["url"] for line in url_lines(archive, "news")} == {
        f"{base}/s/chain/1/301/good", f"{base}/s/chain/1/301/fine", f"{base}/s/chain/1/301/early"}


def test_only_captures_of_the_date_range_count(tmp_path, simulator):
    from .helpers import write_capture

    base = simulator.base_url
    ctx = make_ctx(tmp_path, base)
    archive = ctx.config.paths.archive
    for day in (19, 20, 21, 22):
        at = datetime(2026, 11, day, 23, 59, tzinfo=timezone.utc)
        write_capture(archive, "news", "timeline", [{"data": [tweet(day, f"{base}/s/chain/1/301/day{day}")]}], at)
    write_capture(archive, "live", "stream", [{"data": tweet(99, f"{base}/s/chain/1/301/other-collection")}])
    links = collect_links(archive, "news", date(2026, 11, 20), date(2026, 11, 21))
    assert sorted(links.posts) == [f"{base}/s/chain/1/301/day20", f"{base}/s/chain/1/301/day21"]
    assert yesterday(datetime(2026, 11, 21, 0, 30, tzinfo=timezone.utc)) == date(2026, 11, 20)
    with pytest.raises(UsageError):
        fetch_urls(ctx, "news", date(2026, 11, 21), date(2026, 11, 20))
    with pytest.raises(UsageError):
        fetch_urls(ctx, "nope", CAPTURE_DATE, CAPTURE_DATE)


def test_a_stopped_run_caches_only_what_it_wrote(tmp_path, simulator):
    from .helpers import write_capture

    base = simulator.base_url
    ctx = make_ctx(tmp_path, base, urls={"concurrency": 2, "per_host": 2})
    urls = [f"{base}/s/slow/150/s{n}" for n in range(30)]
    write_capture(ctx.config.paths.archive, "news", "timeline", [{"data": [tweet(n, u) for n, u in enumerate(urls)]}])
    threading.Thread(target=_stop_after_hits, args=(simulator, ctx.stop, 4), daemon=True).start()

    run = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)

    assert run["result"] == "interrupted"
    written = {line["url"] for line in url_lines(ctx.config.paths.archive, "news")}
    assert 4 <= len(written) < 30 and written == {u for u in urls if ctx.store.cached_url(u)}
    ctx.stop.clear()
    rest = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)
    assert rest["result"] == "ok" and rest["counts"]["resolved"] == 30 - len(written)
    assert all(count == 1 for count in shortener_hits(simulator).values())
    lines = url_lines(ctx.config.paths.archive, "news")  # the stopped run and the rest: one line per link
    assert sorted(line["url"] for line in lines) == sorted(urls)


def _stop_after_hits(simulator, stop: threading.Event, count: int) -> None:
    from .helpers import wait_for

    wait_for(lambda: simulator.counters()["shortener"]["hits_total"] >= count)
    stop.set()


def test_low_disk_stops_early_without_caching(tmp_path, simulator):
    from .helpers import write_capture

    base = simulator.base_url
    ctx = make_ctx(tmp_path, base, disk_ok=lambda: False)
    write_capture(ctx.config.paths.archive, "news", "timeline", [{"data": [tweet(1, f"{base}/s/chain/1/301/d")]}])
    run = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)
    assert run["result"] == "warning" and "disk" in run["warnings"][0]
    assert url_lines(ctx.config.paths.archive, "news") == []
    assert ctx.store.cached_url(f"{base}/s/chain/1/301/d") is None


def test_busy_lock_refuses_to_run(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    with collection_lock(ctx.config.paths.state, "news", "urls"):
        with pytest.raises(LockBusyError):
            fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)


def test_no_links_no_files(tmp_path, simulator):
    from .helpers import write_capture

    ctx = make_ctx(tmp_path, simulator.base_url)
    write_capture(ctx.config.paths.archive, "news", "timeline", [{"data": [tweet(1)]}, {"errors": [{"x": 1}]}])
    run = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE + timedelta(days=1))
    assert run["result"] == "ok" and run["counts"]["urls"] == 0
    assert not list(ctx.config.paths.archive.rglob("*-urls-*"))
    assert CAPTURED_AT.date() == CAPTURE_DATE
