"""Timeline harvesting against the simulator, through tweepy's real HTTP stack."""

from __future__ import annotations

import time
from datetime import timedelta

from sfm_archiver.jobs.accounts import sync_accounts
from sfm_archiver.jobs.timeline import harvest_timelines, recover_pending
from sfm_archiver.ratelimit import RateLimiter
from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.writer import CaptureWriter
from sfm_archiver.timeutil import utcnow

from .helpers import COLLECTION, TOKEN, captured, captured_by_account, captured_ids, context, fast_client, published_ids, write_config


def accounts(count: int, tweets: int = 30, first: int = 300) -> list[dict]:
    return [{"id": str(first + n), "username": f"acct_{n}", "tweets": tweets} for n in range(count)]


def harvest(path, account=None, client=None, **kwargs):
    ctx = context(path, **kwargs.pop("context", {}))
    record = harvest_timelines(ctx, COLLECTION, account, client=client or fast_client(ctx.config), **kwargs)
    return ctx, record


def test_first_run_backfills_then_only_new_posts(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=[{"id": "301", "username": "deep", "tweets": 450}])
    config = write_config(tmp_path, sim.base_url, ["deep"], backfill=250)
    archive = tmp_path / "archive"
    ctx, record = harvest(config)
    assert record["result"] == "ok" and record["counts"]["posts"] == 250 and record["counts"]["pages"] == 3
    newest = sorted(published_ids(sim, "301"), key=int)[-250:]
    assert set(captured_ids(archive)) == set(newest)

    pages = captured(archive)
    assert [len(page["data"]) for page in pages] == [100, 100, 50]
    sfm = pages[0]["__sfm"]
    assert sfm["account"] == {"id": "301", "username": "deep"} and sfm["job"] == "user_timeline"
    assert sfm["collection"] == COLLECTION and sfm["url"].startswith(sim.base_url + "/2/users/301/tweets?")
    assert "max_results=100" in sfm["url"] and TOKEN not in sfm["url"]
    assert "includes" in pages[0] and pages[0]["meta"]["result_count"] == 100
    assert ctx.store.checkpoint(COLLECTION, "301") == max(newest, key=int)

    sim.apply_event({"action": "post", "account": "301", "count": 7})
    ctx, record = harvest(config)
    assert record["counts"]["posts"] == 7 and record["counts"]["calls"] == 1
    [latest] = [page for page in captured(archive) if page["meta"]["result_count"] == 7]
    assert "since_id=" in latest["__sfm"]["url"]
    assert sum(captured_ids(archive).values()) == 257 and set(captured_ids(archive).values()) == {1}


def test_backfill_zero_only_sets_the_checkpoint(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(1, tweets=80))
    config = write_config(tmp_path, sim.base_url, ["acct_0"], backfill=0)
    ctx, record = harvest(config)
    assert record["counts"]["posts"] == 0 and captured(tmp_path / "archive") == []
    assert ctx.store.checkpoint(COLLECTION, "300") == max(published_ids(sim, "300"), key=int)
    new = sim.apply_event({"action": "post", "account": "300", "count": 3})["result"]["tweet_ids"]
    harvest(config)
    assert set(captured_ids(tmp_path / "archive")) == set(new)


def test_more_posts_than_reachable_since_the_checkpoint_is_a_gap(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(1, tweets=20))
    config = write_config(tmp_path, sim.base_url, ["acct_0"])
    harvest(config)
    sim.apply_event({"action": "post", "account": "300", "count": 3300})
    ctx, record = harvest(config)
    assert record["result"] == "warning" and record["counts"]["gaps"] == 1
    assert record["counts"]["posts"] == 3200
    assert any("gap" in warning and "3200" in warning for warning in record["warnings"])
    sim.apply_event({"action": "post", "account": "300", "count": 5})
    ctx, record = harvest(config)
    assert record["result"] == "ok" and "gaps" not in record["counts"]


def test_bad_data_is_the_accounts_error_and_never_advances_the_checkpoint(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(2))
    config = write_config(tmp_path, sim.base_url, ["acct_0", "acct_1"], max_retries=1)
    ctx, _ = harvest(config)
    before = ctx.store.checkpoints(COLLECTION)
    for account in ("300", "301"):
        sim.apply_event({"action": "post", "account": account, "count": 3})
    for damage in ({"malformed_rate": 1.0}, {"truncate_rate": 1.0, "malformed_rate": 0.0}):
        sim.set_faults({**damage, "endpoints": ["user_tweets"]})
        ctx, record = harvest(config)
        assert record["result"] == "warning" and record["counts"]["accounts_failed"] == 2
        assert len(record["errors"]) == 2
        assert all("/2/users/30" in error and "JSON" in error for error in record["errors"]), record["errors"]
        assert ctx.store.checkpoints(COLLECTION) == before
        assert ctx.store.account("300")["failures"] >= 1 and "JSON" in ctx.store.account("300")["last_error"]
    sim.set_faults({"truncate_rate": 0.0, "malformed_rate": 0.0})
    ctx, record = harvest(config)
    assert record["result"] == "ok" and record["counts"]["posts"] == 6
    assert ctx.store.account("300")["failures"] == 0
    assert set(captured_ids(tmp_path / "archive").values()) == {1}


def test_server_errors_are_retried_with_a_cap_then_recorded(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(3), faults={"error_rate": 1.0, "endpoints": ["user_tweets"]})
    config = write_config(tmp_path, sim.base_url, ["acct_0", "acct_1", "acct_2"], max_retries=2)
    ctx, record = harvest(config)
    assert record["counts"]["accounts_failed"] == 3 and record["counts"]["retries"] == 6
    assert sim.counters()["calls"]["user_tweets"] == 9  # 1 + 2 retries each, then given up
    assert all("HTTP 503" in error for error in record["errors"])
    assert ctx.store.checkpoints(COLLECTION) == {}


def test_refused_token_stops_the_run_at_once(tmp_path, make_simulator):
    sim = make_simulator(tokens=["the-real-token"], accounts=accounts(3))
    config = write_config(tmp_path, sim.base_url, ["acct_0", "acct_1", "acct_2"])
    ctx, record = harvest(config)
    assert record["result"] == "failed"
    assert "refused the bearer token (HTTP 401)" in record["errors"][0]
    assert sim.counters()["unauthorized"] == 1  # no retry loop


def test_usage_cap_pauses_the_job_until_it_is_lifted(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(4))
    config = write_config(tmp_path, sim.base_url, [f"acct_{n}" for n in range(4)])
    harvest(config)
    for n in range(4):
        sim.apply_event({"action": "post", "account": str(300 + n), "count": 2})
    sim.apply_event({"action": "usage_cap"})
    ctx, record = harvest(config)
    assert record["result"] == "warning" and "usage cap" in record["warnings"][0].lower()
    [cap] = ctx.store.usage_caps()
    assert cap["resume_at"] and "Usage cap exceeded" in cap["detail"]

    calls = sim.counters()["calls_total"]
    ctx, record = harvest(config)
    assert "paused by the API usage cap" in record["warnings"][0]
    assert sim.counters()["calls_total"] == calls  # not a single call while paused

    sim.apply_event({"action": "lift_usage_cap"})
    later = {"clock": lambda: utcnow() + timedelta(hours=2)}
    ctx, record = harvest(config, context=later)
    assert record["result"] == "ok" and record["counts"]["posts"] == 8
    assert ctx.store.usage_caps() == []


def test_rate_limit_waits_instead_of_429(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(8), clock_skew_seconds=300,
                         rate_limits={"window_seconds": 1, "user_tweets": 4})
    config = write_config(tmp_path, sim.base_url, [f"acct_{n}" for n in range(8)])
    messages: list[str] = []
    ctx = context(config, progress=messages.append)
    client = fast_client(ctx.config, limiter=RateLimiter(store=ctx.store))
    started = time.monotonic()
    record = harvest_timelines(ctx, COLLECTION, client=client)
    elapsed = time.monotonic() - started
    assert record["result"] == "ok" and record["counts"]["posts"] == 240
    assert sim.counters()["rate_limited"] == 0
    assert record["counts"]["rate_limit_waits"] >= 1
    assert any("rate limit GET /2/users/:id/tweets: budget spent, waiting" in m for m in messages)
    assert any(m.startswith(f"{COLLECTION}: 8/8 accounts, 240 posts") for m in messages)
    assert elapsed < 60  # windows of 1 s, not the 300 s the server clock runs ahead
    assert {row["endpoint"] for row in ctx.store.rate_limits()} >= {"GET /2/users/:id/tweets"}


def test_workers_overlap_latency(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(16, tweets=10), faults={"latency_ms": 100})
    config = write_config(tmp_path, sim.base_url, [f"acct_{n}" for n in range(16)], workers=8)
    ctx = context(config)
    limiter = RateLimiter()
    client = fast_client(ctx.config, limiter=limiter)
    sync_accounts(ctx, COLLECTION, client=client)  # resolve first: the timelines are what the pool overlaps
    record = harvest_timelines(ctx, COLLECTION, client=client)
    assert record["counts"]["accounts_done"] == 16
    assert limiter.peak_in_flight >= 6  # 8 workers, each waiting 100 ms on its answer: they overlap


def test_one_account_only(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(3))
    config = write_config(tmp_path, sim.base_url, ["acct_0", "acct_1", "acct_2"])
    harvest(config)
    for n in range(3):
        sim.apply_event({"action": "post", "account": str(300 + n), "count": 1})
    ctx, record = harvest(config, account="ACCT_1")
    assert record["counts"] == {**record["counts"], "accounts": 1, "posts": 1}
    ctx, record = harvest(config, account="302")
    assert record["counts"]["posts"] == 1


def test_stop_and_low_disk_end_the_run_early_without_checkpoints(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(3))
    config = write_config(tmp_path, sim.base_url, ["acct_0", "acct_1", "acct_2"])
    ctx, record = harvest(config, context={"disk_ok": lambda: False})
    assert record["result"] == "warning" and any("disk space" in w for w in record["warnings"])
    assert ctx.store.checkpoints(COLLECTION) == {} and captured(tmp_path / "archive") == []

    ctx = context(config)
    ctx.stop.set()
    record = harvest_timelines(ctx, COLLECTION, client=fast_client(ctx.config))
    assert record["result"] == "interrupted"


def test_a_batch_written_before_a_crash_is_found_and_not_fetched_again(tmp_path, make_simulator):
    """The state a kill -9 leaves between the durable write and the checkpoint, made on purpose."""
    sim = make_simulator(tokens=[TOKEN], accounts=accounts(2, tweets=150))
    config = write_config(tmp_path, sim.base_url, ["acct_0", "acct_1"])
    ctx = context(config)
    harvest_timelines(ctx, COLLECTION, "acct_0", client=fast_client(ctx.config))  # resolves both accounts

    client = fast_client(ctx.config)
    pages, newest = [], None
    token = None
    while True:
        page = client.user_timeline("301", pagination_token=token)
        pages.append(envelope(page.raw, sfm_metadata(captured_at=utcnow(), collection=COLLECTION, job="user_timeline",
                                                     url=page.url, account={"id": "301", "username": "acct_1"})))
        newest = newest or page.body["meta"]["newest_id"]
        token = page.body["meta"].get("next_token")
        if not token:
            break
    writer = CaptureWriter(tmp_path / "archive", COLLECTION, "timeline", registry=ctx.store)
    ctx.store.begin_batches(COLLECTION, [("301", newest), ("300", "999999999999999999")], writer.path)
    writer.write_batch(pages)  # durable, 301's batch; then the process "dies" before the checkpoints

    messages = recover_pending(context(config), COLLECTION)
    assert len(messages) == 2 and ctx.store.pending_batches(COLLECTION) == []
    assert ctx.store.checkpoint(COLLECTION, "301") == newest
    assert ctx.store.checkpoint(COLLECTION, "300") == max(published_ids(sim, "300"), key=int)  # untouched

    harvest(config)
    counts = captured_ids(tmp_path / "archive")
    assert set(counts.values()) == {1}
    by_account = captured_by_account(tmp_path / "archive")
    assert by_account["301"] == published_ids(sim, "301") and by_account["300"] == published_ids(sim, "300")
