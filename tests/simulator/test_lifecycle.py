"""Account lifecycle events, from the scenario script and applied live, and the published record."""

from __future__ import annotations

import pytest

from sfm_archiver.simulator import EventError
from tests.simulator.helpers import raw_client, wait_for

SCRIPT = [{"at": 0.2, "action": "rename", "account": "100001", "username": "sfm_renamed"},
          {"at": 0.2, "action": "protect", "account": "sfm_beta"},
          {"at": 0.3, "action": "post", "account": "100001", "count": 2}]


@pytest.mark.parametrize("simulator", [{"script": SCRIPT}], indirect=True)
def test_script_applies_events_at_their_time(simulator):
    client = raw_client(simulator.base_url)
    assert client.get_user(username="sfm_alpha").json()["data"]["id"] == "100001"
    events = wait_for(lambda: len(simulator.published()["events"]) == 3 and simulator.published()["events"])
    assert [(event["action"], event["source"]) for event in events] == [("rename", "script"), ("protect", "script"),
                                                                        ("post", "script")]
    assert all(event["at"] >= 0.2 for event in events)
    assert client.get_user(username="sfm_alpha").json()["errors"][0]["title"] == "Not Found Error"
    assert client.get_user(username="sfm_renamed").json()["data"]["id"] == "100001"
    assert client.get_users_tweets("100002").json()["errors"][0]["title"] == "Authorization Error"
    posted = events[2]["result"]["tweet_ids"]
    newest = client.get_users_tweets("100001", max_results=5).json()["data"]
    assert [tweet["id"] for tweet in newest[:2]] == list(reversed(posted))
    assert [post["source"] for post in simulator.published()["posts"]["100001"][-2:]] == ["script", "script"]


@pytest.mark.parametrize("action, undo, check", [
    ("suspend", "unsuspend", "User has been suspended: [100001]."),
    ("deactivate", "reactivate", "Could not find user with id: [100001]."),
])
def test_suspend_and_deactivate_are_reversible(simulator, action, undo, check):
    client = raw_client(simulator.base_url)
    simulator.apply_event({"action": action, "account": "100001"})
    assert client.get_user(id="100001").json()["errors"][0]["detail"] == check
    assert client.get_users_tweets("100001").json()["errors"][0]["detail"] == check
    simulator.apply_event({"action": undo, "account": "sfm_alpha"})
    assert client.get_user(id="100001").json()["data"]["username"] == "sfm_alpha"


def test_reassign_username_gives_it_to_a_new_account(simulator):
    client = raw_client(simulator.base_url)
    with pytest.raises(EventError, match="active"):
        simulator.apply_event({"action": "reassign_username", "username": "sfm_alpha"})
    simulator.apply_event({"action": "deactivate", "account": "100001"})
    entry = simulator.apply_event({"action": "reassign_username", "username": "SFM_alpha", "tweets": 3})
    new_id = entry["result"]["account"]
    assert new_id not in ("100001", "") and new_id.isdigit()
    assert client.get_user(username="sfm_alpha").json()["data"]["id"] == new_id
    assert client.get_user(id="100001").json()["errors"][0]["title"] == "Not Found Error"
    assert len(client.get_users_tweets(new_id).json()["data"]) == 3
    assert len(simulator.published()["posts"][new_id]) == 3


def test_rename_to_a_taken_username_is_refused_and_logged(simulator):
    with pytest.raises(EventError, match="taken"):
        simulator.apply_event({"action": "rename", "account": "100001", "username": "sfm_beta"})
    assert simulator.published()["events"][-1]["error"].startswith("rename")
    with pytest.raises(EventError, match="unknown action"):
        simulator.apply_event({"action": "explode"})


def test_suspended_accounts_do_not_post(make_simulator):
    simulator = make_simulator(accounts=[{"id": "9", "username": "live", "tweets": 0, "posts_per_second": 50}])
    wait_for(lambda: len(simulator.published()["posts"]["9"]) >= 3)
    simulator.apply_event({"action": "suspend", "account": "9"})
    frozen = len(simulator.published()["posts"]["9"])
    simulator.apply_event({"action": "unsuspend", "account": "9"})
    wait_for(lambda: len(simulator.published()["posts"]["9"]) > frozen)
    posts = simulator.published()["posts"]["9"]
    ids = [int(post["id"]) for post in posts]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
