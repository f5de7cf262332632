"""Account lifecycle of Bluesky collections in the ledger: renames, takedowns, deactivation,
deletion and returns, seen by update-usernames and by the harvest itself."""

from __future__ import annotations

from sfm_archiver.jobs.accounts import update_usernames
from sfm_archiver.jobs.timeline import harvest_timelines

from .helpers import COLLECTION, assert_each_once, captured, context, ledger_events, lines, run_cli, write_config

HANDLES = ("alice.bsky.test", "bob.bsky.test", "carol.bsky.test", "dave.bsky.test")


def make(make_bluesky, tmp_path, **scenario):
    sim = make_bluesky(seed=11, accounts=[{"handle": handle, "posts": 30} for handle in HANDLES], **scenario)
    dids = {handle.split(".")[0]: sim.did_of(handle) for handle in HANDLES}
    ctx = context(write_config(tmp_path, sim.appview_url, list(HANDLES)))
    return sim, dids, ctx


def test_rename_takedown_deactivation_deletion_and_returns_in_the_ledger(tmp_path, make_bluesky):
    sim, did, ctx = make(make_bluesky, tmp_path)
    assert harvest_timelines(ctx, COLLECTION)["result"] == "ok"
    added = [r for r in ctx.ledger.records() if r["event"] == "added"]
    assert sorted((r["account_id"], r["to"]["username"], r["platform"]) for r in added) == sorted(
        (did[h.split(".")[0]], h, "bluesky") for h in HANDLES)

    sim.rename(did["alice"], "alice-archive.bsky.test")
    sim.takedown(did["bob"])
    sim.deactivate(did["carol"])
    sim.delete_account(did["dave"])
    run = update_usernames(ctx, COLLECTION)
    assert run["result"] == "ok", run
    assert sorted(ledger_events(ctx)) == sorted([
        (did["alice"], "renamed", "alice.bsky.test", "alice-archive.bsky.test"),
        (did["bob"], "suspended", "active", "suspended"),
        (did["carol"], "deactivated", "active", "deactivated"),
        (did["dave"], "deactivated", "active", "deactivated"),  # gone: "Profile not found"
    ])
    users = lines(tmp_path / "archive", kind="users")
    assert users and all(line["__sfm"]["platform"] == "bluesky" for line in users)
    errors = {line.get("error") for line in users if "error" in line}
    assert {"AccountTakedown", "AccountDeactivated", "InvalidRequest"} <= errors  # the answers that tell them apart

    assert update_usernames(ctx, COLLECTION)["counts"]["events"] == 0  # nothing new, nothing twice
    sim.post(did["bob"], text="written while taken down")
    skipped = harvest_timelines(ctx, COLLECTION)
    assert skipped["counts"]["accounts_skipped"] == 3 and skipped["counts"]["accounts_done"] == 1

    sim.restore(did["bob"])
    sim.reactivate(did["carol"])
    update_usernames(ctx, COLLECTION)
    assert sorted(ledger_events(ctx)[-2:]) == sorted([(did["bob"], "unsuspended", "suspended", "active"),
                                                      (did["carol"], "reactivated", "deactivated", "active")])
    back = harvest_timelines(ctx, COLLECTION)
    assert back["counts"]["accounts_done"] == 3 and back["counts"]["posts"] == 1  # bob's post, once
    assert_each_once(tmp_path / "archive", sim, [did["alice"], did["bob"], did["carol"]])


def test_the_harvest_records_a_rename_and_a_takedown_at_once(tmp_path, make_bluesky):
    sim, did, ctx = make(make_bluesky, tmp_path)
    harvest_timelines(ctx, COLLECTION)
    sim.rename(did["alice"], "alice2.bsky.test")  # no new post: the page that shows nothing new still shows it
    sim.takedown(did["bob"])
    run = harvest_timelines(ctx, COLLECTION)
    assert run["counts"]["accounts_skipped"] == 1
    observed = [(r["account_id"], r["event"], r["to"], r["observed_by"]["job"]) for r in ctx.ledger.records()
                if r["event"] != "added"]
    assert sorted(observed) == sorted([(did["alice"], "renamed", "alice2.bsky.test", "user_timeline"),
                                       (did["bob"], "suspended", "suspended", "user_timeline")])
    sim.post(did["alice"], text="under the new handle")
    harvest_timelines(ctx, COLLECTION)
    newest = [line for line in lines(tmp_path / "archive") if line["__sfm"]["account"]["id"] == did["alice"]][-1]
    assert newest["__sfm"]["account"]["username"] == "alice2.bsky.test"
    assert update_usernames(ctx, COLLECTION)["counts"]["events"] == 0  # already in the ledger


def test_a_handle_now_held_by_another_account_is_reported_never_followed(tmp_path, make_bluesky):
    sim, did, ctx = make(make_bluesky, tmp_path)
    harvest_timelines(ctx, COLLECTION)
    sim.rename(did["alice"], "alice-old.bsky.test")
    sim.rename(did["bob"], "alice.bsky.test")
    update_usernames(ctx, COLLECTION)
    kinds = {(r["account_id"], r["event"]) for r in ctx.ledger.records()}
    assert (did["alice"], "username_reassigned") in kinds
    reassigned = next(r for r in ctx.ledger.records() if r["event"] == "username_reassigned")
    assert reassigned["to"] == {"username": "alice.bsky.test", "id": did["bob"]}
    sim.post(did["alice"], text="still alice's feed")
    harvest_timelines(ctx, COLLECTION)
    assert captured(tmp_path / "archive")[did["alice"]].keys() == set(sim.feed_uris(did["alice"]))


def test_accounts_unknown_or_gone_at_the_start_are_reported(tmp_path, make_bluesky):
    sim = make_bluesky(seed=12, accounts=[{"handle": "alice.bsky.test", "posts": 5},
                                          {"handle": "gone.bsky.test", "posts": 5, "status": "takendown"}])
    config = write_config(tmp_path, sim.appview_url, ["alice.bsky.test", "gone.bsky.test", "nobody.bsky.test"])
    result = run_cli("check-config", "--online", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'gone.bsky.test'" in result.stdout and "suspended" in result.stdout
    assert "'nobody.bsky.test'" in result.stdout and "'alice.bsky.test'" not in result.stdout
    ctx = context(config)
    run = harvest_timelines(ctx, COLLECTION)
    assert run["counts"]["accounts_done"] == 1
    assert any("gone.bsky.test" in warning and "suspended" in warning for warning in run["warnings"])
    assert any("nobody.bsky.test" in warning for warning in run["warnings"])
