"""fetch-urls and export over harvested Bluesky captures: the links of link facets and external
embeds resolved against real local redirects, and the posts exported as rows."""

from __future__ import annotations

import json

from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.jobs.urls import fetch_urls
from sfm_archiver.timeutil import utcnow
from tests.export.helpers import read_csv_rows

from .helpers import COLLECTION, context, item_name, lines, run_cli, write_config

URL_SETTINGS = {"urls": {"concurrency": 4, "per_host": 4, "timeout": "2s", "max_hops": 10, "warc": False}}


def harvested(tmp_path, make_bluesky, make_simulator):
    """Alice posts links to a local shortener (the X simulator's): a chain, a 404, one link twice."""
    targets = make_simulator()
    base = targets.base_url
    links = {"chain": f"{base}/s/chain/2/301/bsky-one", "missing": f"{base}/s/end/404/bsky-two",
             "shared": f"{base}/s/chain/1/302/bsky-shared"}
    sim = make_bluesky(seed=21, accounts=[{"handle": "alice.bsky.test", "posts": 12, "links": 0, "reposts": 0}])
    alice = sim.did_of("alice.bsky.test")
    uris = {"chain": sim.post(alice, text="a chain of redirects", links=[links["chain"], links["shared"]]),
            "missing": sim.post(alice, text="a link to nowhere 🌊", links=[links["missing"]]),
            "shared": sim.post(alice, text="the shared one again", links=[links["shared"]])}
    config = write_config(tmp_path, sim.appview_url, ["alice.bsky.test"], extra=URL_SETTINGS)
    ctx = context(config)
    assert harvest_timelines(ctx, COLLECTION)["result"] == "ok"
    return sim, alice, config, ctx, links, uris


def test_fetch_urls_resolves_the_links_of_bluesky_posts(tmp_path, make_bluesky, make_simulator):
    sim, alice, config, ctx, links, uris = harvested(tmp_path, make_bluesky, make_simulator)
    today = utcnow().date()
    run = fetch_urls(ctx, COLLECTION, today, today)
    assert run["result"] == "ok", run
    results = {line["url"]: line for line in lines(tmp_path / "archive", kind="urls")}
    assert set(results) == set(links.values())
    assert results[links["chain"]]["tweet_ids"] == [uris["chain"]]
    assert sorted(results[links["shared"]]["tweet_ids"]) == sorted([uris["chain"], uris["shared"]])
    assert results[links["chain"]]["final_status"] == 200 and len(results[links["chain"]]["chain"]) == 3
    assert results[links["missing"]]["final_status"] == 404
    assert all(line["__sfm"]["collection"] == COLLECTION for line in results.values())
    again = fetch_urls(ctx, COLLECTION, today, today)
    assert len(lines(tmp_path / "archive", kind="urls")) == 3, again  # cached, and every (link, post) written once


def test_export_of_harvested_bluesky_captures(tmp_path, make_bluesky, make_simulator):
    sim, alice, config, ctx, links, uris = harvested(tmp_path, make_bluesky, make_simulator)
    today = utcnow().date()
    fetch_urls(ctx, COLLECTION, today, today)
    sim.post(alice, text="one after the first harvest")
    harvest_timelines(ctx, COLLECTION)
    out = tmp_path / "export"
    result = run_cli("export", COLLECTION, "--format", "csv", "--out", str(out), "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    rows = read_csv_rows(out)
    # the oracle: the feed items as captured, read with json; a repost is its own row
    items = [item for line in lines(tmp_path / "archive") for item in line["feed"]]
    assert len(rows) == len({item_name(item) for item in items}) == len(sim.feed_uris(alice))
    assert {row["uri"] for row in rows} == {item["post"]["uri"] for item in items}
    by_uri = {row["uri"]: row for row in rows if not row["repost.by"]}
    assert json.loads(by_uri[uris["chain"]]["links"]) == [links["chain"], links["shared"]]
    assert json.loads(by_uri[uris["chain"]]["urls.final"])[0].endswith("/bsky-one")
    assert by_uri[uris["missing"]]["text"].startswith("a link to nowhere 🌊 http:")
    assert {row["handle"] for row in by_uri.values()} == {"alice.bsky.test"}
    assert all(row["kind"] == "timeline" and row["collection"] == COLLECTION for row in rows)
