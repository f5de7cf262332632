"""harvest-timelines over Bluesky collections: real simulator, real job functions and CLI."""

from __future__ import annotations

from sfm_archiver.jobs.timeline import harvest_timelines

from .helpers import COLLECTION, assert_each_once, captured, context, lines, run_cli, write_config

ACCOUNTS = [{"handle": "alice.bsky.test", "posts": 230, "reposts": 0.2, "replies": 0.3},
            {"handle": "bob.bsky.test", "posts": 40},
            {"handle": "carol.bsky.test", "posts": 0}]


def test_harvest_then_only_new_posts_none_twice(tmp_path, make_bluesky):
    sim = make_bluesky(seed=5, accounts=ACCOUNTS)
    dids = [sim.did_of(a["handle"]) for a in ACCOUNTS]
    # one by handle, one by DID, one by handle with an @ and capitals
    config = write_config(tmp_path, sim.appview_url, ["alice.bsky.test", dids[1], "@Carol.bsky.test"])
    ctx = context(config)
    first = harvest_timelines(ctx, COLLECTION)
    assert first["result"] == "ok", first
    assert first["counts"]["posts"] == 270 and first["counts"]["accounts_done"] == 3
    assert_each_once(tmp_path / "archive", sim, dids)

    for line in lines(tmp_path / "archive"):
        meta = line["__sfm"]
        assert meta["platform"] == "bluesky" and meta["job"] == "user_timeline" and meta["collection"] == COLLECTION
        assert meta["account"]["id"] in dids and meta["account"]["username"].endswith(".bsky.test")
        assert meta["url"].startswith(f"{sim.appview_url}/xrpc/app.bsky.feed.getAuthorFeed?actor=did%3Aplc%3A")

    again = harvest_timelines(ctx, COLLECTION)
    assert again["result"] == "ok" and again["counts"]["posts"] == 0 and again["counts"]["pages"] == 0

    for n in range(3):
        sim.post(dids[0], text=f"new post {n} ✨")
    sim.post(dids[2], text="carol's first", links=["https://example.org/carol"])
    third = harvest_timelines(ctx, COLLECTION)
    assert third["counts"]["posts"] == 4 and third["counts"]["pages"] == 2
    assert_each_once(tmp_path / "archive", sim, dids)
    assert sim.counters["429s"] == 0


def test_a_deleted_checkpoint_post_still_stops_at_the_older_posts(tmp_path, make_bluesky):
    sim = make_bluesky(seed=8, accounts=ACCOUNTS[:2])
    alice, bob = sim.did_of("alice.bsky.test"), sim.did_of("bob.bsky.test")
    ctx = context(write_config(tmp_path, sim.appview_url, ["alice.bsky.test", "bob.bsky.test"]))
    assert harvest_timelines(ctx, COLLECTION)["result"] == "ok"
    gone = {alice: {sim.feed_uris(alice)[0]}, bob: {sim.feed_uris(bob)[0]}}
    for uri in (sim.feed_uris(alice)[0], sim.feed_uris(bob)[0]):
        sim.delete_post(uri)  # the items the checkpoints name
    nothing = harvest_timelines(ctx, COLLECTION)
    assert nothing["counts"]["posts"] == 0, nothing

    sim.post(alice, text="after the deletion")
    gone[alice].add(sim.feed_uris(alice)[1])
    sim.delete_post(sim.feed_uris(alice)[1])  # an older one too: the feed shrinks below the checkpoint
    later = harvest_timelines(ctx, COLLECTION)
    assert later["counts"]["posts"] == 1, later
    assert_each_once(tmp_path / "archive", sim, [alice, bob], also=gone)


def test_backfill_limits_the_first_harvest_and_later_ones_continue_from_the_newest(tmp_path, make_bluesky):
    sim = make_bluesky(seed=2, accounts=ACCOUNTS[:1])
    alice = sim.did_of("alice.bsky.test")
    ctx = context(write_config(tmp_path, sim.appview_url, ["alice.bsky.test"], backfill=150))
    first = harvest_timelines(ctx, COLLECTION)
    assert first["counts"]["posts"] == 150
    assert set(captured(tmp_path / "archive")[alice]) == set(sim.feed_uris(alice)[:150])
    sim.post(alice, text="one more")
    assert harvest_timelines(ctx, COLLECTION)["counts"]["posts"] == 1


def test_a_small_rate_window_is_paced_never_hit(tmp_path, make_bluesky):
    sim = make_bluesky(seed=3, accounts=ACCOUNTS[:2], rate_limit={"limit": 3, "window_seconds": 1})
    dids = [sim.did_of("alice.bsky.test"), sim.did_of("bob.bsky.test")]
    ctx = context(write_config(tmp_path, sim.appview_url, ["alice.bsky.test", "bob.bsky.test"]))
    run = harvest_timelines(ctx, COLLECTION)
    assert run["result"] == "ok" and run["counts"]["calls"] >= 4, run
    assert run["counts"]["rate_limit_waits"] >= 1
    assert sim.counters["429s"] == 0
    assert_each_once(tmp_path / "archive", sim, dids)


def test_a_spent_window_costs_one_429_then_the_reset_is_waited_for(tmp_path, make_bluesky):
    sim = make_bluesky(seed=4, accounts=ACCOUNTS[:2], rate_limit={"limit": 50, "window_seconds": 2})
    dids = [sim.did_of("alice.bsky.test"), sim.did_of("bob.bsky.test")]
    ctx = context(write_config(tmp_path, sim.appview_url, ["alice.bsky.test", "bob.bsky.test"]))
    sim.exhaust_rate_window()
    run = harvest_timelines(ctx, COLLECTION)
    assert run["result"] == "ok", run
    assert sim.counters["429s"] == 1  # the first answer told the limiter; nothing else ran into it
    assert_each_once(tmp_path / "archive", sim, dids)


def test_a_mixed_configuration_harvests_x_and_bluesky_in_one_run(tmp_path, make_bluesky, make_simulator):
    from tests.timelines.helpers import TOKEN, captured_ids, published_ids

    bsky = make_bluesky(seed=6, accounts=ACCOUNTS[1:2])
    x = make_simulator(tokens=[TOKEN], accounts=[{"id": "901", "username": "x_one", "tweets": 60}])
    x_collection = {"name": "xnews", "type": "timeline", "accounts": ["x_one"]}
    config = write_config(tmp_path, bsky.appview_url, ["bob.bsky.test"], collections=[x_collection],
                          extra={"x": {"bearer_token": TOKEN, "api_base_url": x.base_url}})
    done = run_cli("user-timeline", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{COLLECTION}: user_timeline ok" in done.stdout and "xnews: user_timeline ok" in done.stdout
    assert_each_once(tmp_path / "archive", bsky, [bsky.did_of("bob.bsky.test")])
    assert set(captured_ids(tmp_path / "archive", "xnews")) == published_ids(x, "901")
    x_lines = lines(tmp_path / "archive", "xnews")
    assert x_lines and all("platform" not in line["__sfm"] for line in x_lines)  # X's captures as before


def test_posts_of_one_millisecond_are_not_captured_again_once_the_checkpoint_post_is_deleted(tmp_path):
    from sfm_archiver.simulator.bluesky import BlueskyScenario, BlueskySimulator

    now = [1_780_000_000.0]
    scenario = BlueskyScenario.from_dict({"seed": 9, "accounts": [{"handle": "bob.bsky.test", "posts": 5}]})
    with BlueskySimulator(scenario, clock=lambda: now[0]) as sim:
        bob = sim.did_of("bob.bsky.test")
        ctx = context(write_config(tmp_path, sim.appview_url, ["bob.bsky.test"]))
        assert harvest_timelines(ctx, COLLECTION)["result"] == "ok"
        now[0] += 60
        for n in range(3):  # one clock reading: one millisecond, three record keys
            sim.post(bob, text=f"same millisecond {n}")
        assert harvest_timelines(ctx, COLLECTION)["counts"]["posts"] == 3
        newest = sim.feed_uris(bob)[0]
        sim.delete_post(newest)  # the checkpoint's item
        now[0] += 60
        assert harvest_timelines(ctx, COLLECTION)["counts"]["posts"] == 0
        sim.post(bob, text="a minute later")
        assert harvest_timelines(ctx, COLLECTION)["counts"]["posts"] == 1
        assert_each_once(tmp_path / "archive", sim, [bob], also={bob: {newest}})
