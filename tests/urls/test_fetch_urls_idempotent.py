"""fetch-urls over a range it already covered: each (link, post) gets one line, whatever the number of runs."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from sfm_archiver.jobs.urls import fetch_urls

from .helpers import CAPTURE_DATE, CAPTURED_AT, make_ctx, tweet, url_lines, write_capture


def link_posts(lines: list[dict]) -> Counter:
    """How many lines name each (link, post) pair."""
    return Counter((line["url"], tweet_id) for line in lines for tweet_id in line["tweet_ids"])


def write_day(archive, base: str) -> dict[str, set[str]]:
    """A timeline and a stream capture of the day; returns each link's posts, as written."""
    shared, lone, missing = f"{base}/s/chain/2/301/shared", f"{base}/s/chain/1/308/lone", f"{base}/s/end/404/gone"
    write_capture(archive, "news", "timeline", [
        {"data": [tweet(101, shared), tweet(102, shared, lone)], "includes": {"tweets": [tweet(90, missing)]}},
        {"data": [tweet(103, lone)]},
    ])
    write_capture(archive, "news", "stream", [{"data": tweet(201, shared)}, {"data": tweet(202, missing)}],
                  at=CAPTURED_AT + timedelta(minutes=5))
    return {shared: {"101", "102", "201"}, lone: {"102", "103"}, missing: {"90", "202"}}


@pytest.mark.parametrize("runs", [2, 3])
def test_runs_over_the_same_range_leave_the_lines_of_one_run(tmp_path, simulator, runs):
    ctx = make_ctx(tmp_path, simulator.base_url)
    archive = ctx.config.paths.archive
    expected = write_day(archive, simulator.base_url)

    results = [fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE) for _ in range(runs)]

    assert all(result["result"] == "ok" for result in results)
    lines = url_lines(archive, "news")
    assert link_posts(lines) == Counter({(url, post): 1 for url, posts in expected.items() for post in posts})
    assert len(lines) == len(expected)
    assert {line["__sfm"]["run"] for line in lines} == {results[0]["run_id"]}
    assert all(result["counts"]["already_recorded"] == len(expected) for result in results[1:])


def test_a_new_post_with_a_cached_link_gets_a_line_naming_it(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    archive = ctx.config.paths.archive
    expected = write_day(archive, simulator.base_url)
    shared = next(url for url in expected if url.endswith("shared"))
    fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)
    first = url_lines(archive, "news")

    write_capture(archive, "news", "stream", [{"data": tweet(301, shared)}], at=CAPTURED_AT + timedelta(hours=2))
    second = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)

    new = [line for line in url_lines(archive, "news") if line["__sfm"]["run"] == second["run_id"]]
    assert [(line["url"], line["tweet_ids"], line["cached"]) for line in new] == [(shared, ["301"], True)]
    old = next(line for line in first if line["url"] == shared)
    assert (new[0]["final_url"], new[0]["chain"]) == (old["final_url"], old["chain"])
    assert second["counts"].get("resolved", 0) == 0


def test_refetch_records_a_fresh_observation_for_every_post(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    archive = ctx.config.paths.archive
    expected = write_day(archive, simulator.base_url)
    fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)

    fresh = fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE, refetch=True)
    fetch_urls(ctx, "news", CAPTURE_DATE, CAPTURE_DATE)

    lines = [line for line in url_lines(archive, "news") if line["__sfm"]["run"] == fresh["run_id"]]
    assert fresh["counts"]["resolved"] == len(expected)
    assert {line["url"]: set(line["tweet_ids"]) for line in lines} == expected
    assert not any(line["cached"] for line in lines)
    assert link_posts(url_lines(archive, "news")) == Counter(
        {(url, post): 2 for url, posts in expected.items() for post in posts})
