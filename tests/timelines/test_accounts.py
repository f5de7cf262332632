"""The account lifecycle across runs against the simulator: every change once in the ledger."""

from __future__ import annotations

import yaml

from sfm_archiver.jobs.account_events import differs
from sfm_archiver.jobs.accounts import check_accounts_online, sync_accounts, update_usernames
from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.platforms.x import author_observation, well_formed_user

from .helpers import COLLECTION, TOKEN, captured, captured_by_account, context, events, fast_client, load, published_ids, write_config

ACCOUNTS = [
    {"id": "201", "username": "lib_one", "tweets": 30},
    {"id": "202", "username": "lib_two", "tweets": 30},
    {"id": "203", "username": "lib_three", "tweets": 30},
    {"id": "204", "username": "lib_four", "tweets": 30},
    {"id": "205", "username": "lib_five", "tweets": 30},
]


def scenario() -> dict:
    return {"tokens": [TOKEN], "accounts": ACCOUNTS}


def run(kind, path, **kwargs):
    """Each run in a fresh context, as a restarted process would be."""
    ctx = context(path)
    client = fast_client(ctx.config)
    if kind == "timeline":
        record = harvest_timelines(ctx, COLLECTION, client=client, **kwargs)
    else:
        record = update_usernames(ctx, COLLECTION, client=client)
    assert record["result"] in ("ok", "warning"), record
    return ctx, record


def set_accounts(path, accounts) -> None:
    document = yaml.safe_load(path.read_text())
    document["collections"][0]["accounts"] = accounts
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_every_transition_once_and_harvesting_follows(tmp_path, make_simulator):
    sim = make_simulator(**scenario())
    config = write_config(tmp_path, sim.base_url, ["lib_one", "lib_two", "lib_three", {"id": "204"}, "lib_five"])
    archive = tmp_path / "archive"

    ctx, _ = run("timeline", config)
    expected = [(i, "added", None, (name, "active")) for i, name in
                (("201", "lib_one"), ("202", "lib_two"), ("203", "lib_three"), ("205", "lib_five"), ("204", "lib_four"))]
    assert sorted(events(ctx)) == sorted(expected)
    assert {k: len(v) for k, v in captured_by_account(archive).items()} == {a["id"]: 30 for a in ACCOUNTS}

    sim.apply_event({"action": "rename", "account": "201", "username": "Lib_One"})  # case only
    for action, account in (("protect", "202"), ("suspend", "203"), ("deactivate", "204")):
        sim.apply_event({"action": action, "account": account})
    for account in ("201", "202"):
        sim.apply_event({"action": "post", "account": account, "count": 3})

    # the timeline run itself notices the unreadable accounts (200 with errors) and skips them,
    # and records the rename its pages show (includes.users)
    ctx, record = run("timeline", config)
    expected += [("202", "protected", "active", "protected"), ("203", "suspended", "active", "suspended"),
                 ("204", "deactivated", "active", "deactivated"), ("201", "renamed", "lib_one", "Lib_One")]
    assert sorted(events(ctx)) == sorted(expected)
    assert record["counts"]["accounts_skipped"] == 3 and record["counts"]["posts"] == 3

    ctx, record = run("usernames", config)
    assert sorted(events(ctx)) == sorted(expected)
    run("usernames", config)
    run("timeline", config)
    assert sorted(events(ctx)) == sorted(expected)  # nothing twice

    for action, account in (("unprotect", "202"), ("unsuspend", "203"), ("reactivate", "204")):
        sim.apply_event({"action": action, "account": account})
    for account in ("202", "203", "204"):
        sim.apply_event({"action": "post", "account": account, "count": 2})
    ctx, record = run("timeline", config)
    assert record["counts"]["accounts_done"] == 2  # still skipped until update-usernames sees them back
    ctx, _ = run("usernames", config)
    expected += [("202", "unprotected", "protected", "active"), ("203", "unsuspended", "suspended", "active"),
                 ("204", "reactivated", "deactivated", "active")]
    assert sorted(events(ctx)) == sorted(expected)
    run("timeline", config)
    by_account = captured_by_account(archive)
    for account in ("201", "202", "203", "204", "205"):
        assert by_account[account] == published_ids(sim, account)
    assert sum(captured_ids_count(archive).values()) == sum(len(published_ids(sim, a)) for a in by_account)

    # lookup pages are captured too (follower counts over time)
    assert all(page["__sfm"]["job"] == "update_usernames" for page in captured(archive, kind="users"))


def captured_ids_count(archive):
    from .helpers import captured_ids

    counts = captured_ids(archive)
    assert set(counts.values()) == {1}
    return counts


def test_freed_username_given_to_another_account_is_reported_not_followed(tmp_path, make_simulator):
    sim = make_simulator(**scenario())
    config = write_config(tmp_path, sim.base_url, ["lib_one", "lib_two"])
    archive = tmp_path / "archive"
    run("timeline", config)

    sim.apply_event({"action": "rename", "account": "201", "username": "lib_uno"})
    sim.apply_event({"action": "reassign_username", "username": "lib_one", "id": "901", "tweets": 20})
    sim.apply_event({"action": "post", "account": "201", "count": 2})
    ctx, record = run("usernames", config)
    assert ("201", "renamed", "lib_one", "lib_uno") in events(ctx)
    reassigned = [r for r in ctx.ledger.records() if r["event"] == "username_reassigned"]
    assert len(reassigned) == 1
    assert reassigned[0]["account_id"] == "201"
    assert reassigned[0]["from"] == {"username": "lib_one", "id": "201"}
    assert reassigned[0]["to"] == {"username": "lib_one", "id": "901"}
    assert any("now belongs to account 901" in w for w in record["warnings"])

    run("usernames", config)
    ctx, record = run("timeline", config)
    assert len([r for r in ctx.ledger.records() if r["event"] == "username_reassigned"]) == 1
    by_account = captured_by_account(archive)
    assert "901" not in by_account
    assert by_account["201"] == published_ids(sim, "201")
    assert not {post["id"] for page in captured(archive) for post in page["data"]} & published_ids(sim, "901")


def test_config_changes_pause_resume_and_remove(tmp_path, make_simulator):
    sim = make_simulator(**scenario())
    config = write_config(tmp_path, sim.base_url, ["lib_one", "lib_two", "lib_three"])
    run("timeline", config)

    set_accounts(config, ["lib_one", {"username": "lib_two", "active": False}])
    sim.apply_event({"action": "post", "account": "202", "count": 4})
    ctx, record = run("timeline", config)
    assert events(ctx)[3:] == [("202", "paused", "active", "paused"), ("203", "removed", "username:lib_three", None)]
    assert record["counts"]["accounts"] == 1 and record["counts"]["posts"] == 0
    assert all(r.get("collection") == COLLECTION for r in ctx.ledger.records())

    sync_accounts(ctx, COLLECTION, client=fast_client(ctx.config))  # as the daemon does on reload: no change
    set_accounts(config, ["lib_one", "lib_two", "lib_three"])
    ctx = context(config)
    sync_accounts(ctx, COLLECTION, client=fast_client(ctx.config))
    assert events(ctx)[5:] == [("202", "resumed", "paused", "active"), ("203", "added", None, ("lib_three", "active"))]
    ctx, record = run("timeline", config)
    assert record["counts"]["posts"] == 4  # the paused account's posts, from its checkpoint
    assert len(events(ctx)) == 7


def test_ledger_ahead_of_the_store_after_a_crash_repeats_nothing(tmp_path, make_simulator):
    """A crash after the ledger append and before the store update: the next run must not repeat it."""
    sim = make_simulator(**scenario())
    config = write_config(tmp_path, sim.base_url, ["lib_one"])
    run("timeline", config)
    sim.apply_event({"action": "suspend", "account": "201"})
    ctx, _ = run("usernames", config)
    assert events(ctx)[-1] == ("201", "suspended", "active", "suspended")
    ctx.store.upsert_account("201", status="active")  # the store as it was before the event

    ctx, record = run("usernames", config)
    assert [e for e in events(ctx) if e[1] == "suspended"] == [("201", "suspended", "active", "suspended")]
    assert ctx.store.account("201")["status"] == "suspended"
    assert ctx.ledger.verify().ok


def test_unresolvable_names_are_reported_without_stopping_the_rest(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=[*ACCOUNTS, {"id": "206", "username": "lib_locked", "protected": True},
                                                   {"id": "207", "username": "lib_banned", "suspended": True}])
    config = write_config(tmp_path, sim.base_url, ["lib_one", "nobody_here", "lib_locked", "lib_banned", {"id": "999"}])
    ctx, record = run("timeline", config)
    warnings = "\n".join(record["warnings"])
    assert "'nobody_here'" in warnings and "no such account" in warnings
    assert "'lib_banned'" in warnings and "suspended" in warnings
    assert "'lib_locked'" in warnings and "protected" in warnings
    assert "id 999" in warnings
    assert record["counts"]["accounts_done"] == 1 and record["counts"]["posts"] == 30

    problems = check_accounts_online(load(config), client=fast_client(load(config)))
    assert len(problems) == 4
    text = "\n".join(problems)
    for name in ("'nobody_here'", "'lib_locked'", "'lib_banned'", "id 999"):
        assert name in text
    assert "config line" in text


def test_check_config_online_reports_a_refused_token(tmp_path, make_simulator):
    sim = make_simulator(tokens=["another-token"])
    config = load(write_config(tmp_path, sim.base_url, ["sfm_alpha"]))
    problems = check_accounts_online(config, client=fast_client(config))
    assert len(problems) == 1 and "refused the bearer token" in problems[0]


def test_an_account_added_while_suspended_is_followed_once_it_returns(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=[*ACCOUNTS, {"id": "207", "username": "lib_banned", "suspended": True}])
    config = write_config(tmp_path, sim.base_url, [{"id": "207"}])
    ctx, record = run("timeline", config)
    assert events(ctx) == [("207", "added", None, (None, "suspended"))]
    assert record["counts"]["accounts_skipped"] == 1

    sim.apply_event({"action": "unsuspend", "account": "207"})
    ctx, _ = run("usernames", config)
    sim.apply_event({"action": "rename", "account": "207", "username": "lib_back"})
    run("usernames", config)
    ctx, record = run("timeline", config)
    assert events(ctx)[1:] == [("207", "unsuspended", "suspended", "active"), ("207", "renamed", "lib_banned", "lib_back")]
    assert captured_by_account(tmp_path / "archive")["207"] == published_ids(sim, "207")


def test_update_usernames_pauses_on_the_usage_cap(tmp_path, make_simulator):
    sim = make_simulator(**scenario())
    config = write_config(tmp_path, sim.base_url, ["lib_one"])
    run("timeline", config)
    sim.apply_event({"action": "usage_cap"})
    ctx, record = run("usernames", config)
    assert record["result"] == "warning" and "Usage cap exceeded" in record["warnings"][0]
    assert [cap["scope"] for cap in ctx.store.usage_caps()] == [f"x:{fast_client(ctx.config).credential}"]
    calls = sim.counters()["calls_total"]
    ctx, record = run("usernames", config)
    assert "paused by the API usage cap" in record["warnings"][0] and sim.counters()["calls_total"] == calls


def test_a_damaged_lookup_answer_changes_nothing(tmp_path, make_simulator):
    sim = make_simulator(**scenario())
    config = write_config(tmp_path, sim.base_url, ["lib_one", "lib_two"], max_retries=1)
    ctx, _ = run("timeline", config)
    before = events(ctx)
    sim.set_faults({"malformed_rate": 1.0, "endpoints": ["users"]})
    ctx = context(config)
    record = update_usernames(ctx, COLLECTION, client=fast_client(ctx.config))
    assert record["result"] == "warning" and len(record["errors"]) == 2
    assert all("lookup failed" in error and "invalid JSON" in error for error in record["errors"])
    assert events(ctx) == before and ctx.store.account("201")["status"] == "active"


# -- account changes seen by the harvest itself (includes.users), once whichever job sees them first


def ledger_events(ctx, account_id: str) -> list[dict]:
    return [r for r in ctx.ledger.records() if r["account_id"] == account_id and r["event"] != "added"]


def renamed_after_a_harvest(tmp_path, sim, account_id: str, username: str, members=("lib_one", "lib_two")):
    """A first harvest, then the simulator's lifecycle renames an account, which posts twice."""
    config = write_config(tmp_path, sim.base_url, list(members))
    run("timeline", config)
    sim.apply_event({"action": "rename", "account": account_id, "username": username})
    sim.apply_event({"action": "post", "account": account_id, "count": 2})
    return config


def test_a_rename_seen_in_a_harvest_is_in_the_ledger_at_once_and_only_once(tmp_path, make_simulator, wire_style):
    sim = make_simulator(**scenario(), wire=wire_style)
    config = renamed_after_a_harvest(tmp_path, sim, "201", "lib_uno")
    ctx, record = run("timeline", config)
    [renamed] = ledger_events(ctx, "201")
    assert (renamed["event"], renamed["from"], renamed["to"]) == ("renamed", "lib_one", "lib_uno")
    assert renamed["observed_by"] == {"job": "user_timeline", "run": record["run_id"]}
    assert ctx.store.account("201")["username"] == "lib_uno"
    assert ledger_events(ctx, "202") == []

    ctx, _ = run("usernames", config)
    assert ledger_events(ctx, "201") == [renamed]  # update-usernames sees the same name: nothing twice
    sim.apply_event({"action": "post", "account": "201", "count": 1})
    ctx, _ = run("timeline", config)
    assert ledger_events(ctx, "201") == [renamed]


def test_a_rename_seen_first_by_update_usernames_is_not_repeated_by_the_harvest(tmp_path, make_simulator):
    sim = make_simulator(**scenario())
    config = renamed_after_a_harvest(tmp_path, sim, "202", "lib_dos")
    ctx, record = run("usernames", config)
    [renamed] = ledger_events(ctx, "202")
    assert renamed["observed_by"] == {"job": "update_usernames", "run": record["run_id"]}
    ctx, record = run("timeline", config)
    assert record["counts"]["posts"] == 2 and ledger_events(ctx, "202") == [renamed]


def test_a_store_lagging_the_ledger_makes_the_harvest_repeat_nothing(tmp_path, make_simulator):
    """A crash between the ledger append and the store update: the next harvest compares with the ledger."""
    sim = make_simulator(**scenario())
    config = renamed_after_a_harvest(tmp_path, sim, "201", "lib_eins", members=("lib_one",))
    ctx, _ = run("timeline", config)
    ctx.store.upsert_account("201", username="lib_one")  # the store as a crash would have left it
    sim.apply_event({"action": "post", "account": "201", "count": 1})
    ctx, _ = run("timeline", config)
    assert [r["event"] for r in ledger_events(ctx, "201")] == ["renamed"]
    assert ctx.store.account("201")["username"] == "lib_eins"
    ctx, _ = run("usernames", config)
    assert [r["event"] for r in ledger_events(ctx, "201")] == ["renamed"]


def test_only_the_author_and_only_what_the_page_says_is_observed():
    page = {"data": [{"id": "1", "author_id": "201"}], "includes": {"users": [
        {"id": "999", "username": "someone_mentioned", "protected": True},
        {"id": "201", "username": "lib_uno", "name": "Library One"}]}}
    seen = author_observation(page, "201")
    assert (seen.account_id, seen.username, seen.status) == ("201", "lib_uno", None)  # no `protected`: unknown
    assert not differs(seen, {"username": "lib_uno", "status": "protected"})  # so no false `unprotected`
    page["includes"]["users"][1]["protected"] = False
    assert author_observation(page, "201").status == "active"
    assert author_observation({"data": []}, "201") is None
    assert author_observation({"includes": {"users": [{"id": "201", "username": ""}]}}, "201") is None


def test_a_username_x_could_not_have_issued_is_a_damaged_answer():
    """A byte damaged in transit inside a username must never become a `renamed` event."""
    assert well_formed_user({"id": "100002", "username": "sfm_beta"})
    for damaged in ("sfm beta", "sfm_b\u00e9ta", 'sfm"beta', "", "a" * 16, "sfm\x00beta"):
        assert not well_formed_user({"id": "100002", "username": damaged}), damaged
