"""Filtered-stream rules through tweepy.StreamingClient: add, delete, dry_run, invalid, duplicate."""

from __future__ import annotations

import pytest
import tweepy

from sfm_archiver.platforms.transport import make_streaming_client
from tests.simulator.helpers import TOKEN

PROBLEMS = "https://api.twitter.com/2/problems/"


@pytest.fixture
def client(simulator) -> tweepy.StreamingClient:
    return make_streaming_client(TOKEN, simulator.base_url, return_type=dict)


def test_add_list_and_delete(client):
    added = client.add_rules([tweepy.StreamRule("cats has:images", tag="cats"), tweepy.StreamRule("dogs")])
    assert added["meta"]["summary"] == {"created": 2, "not_created": 0, "valid": 2, "invalid": 0}
    assert [rule["value"] for rule in added["data"]] == ["cats has:images", "dogs"]
    assert list(added["data"][0]) == ["value", "tag", "id"] and "tag" not in added["data"][1]
    listed = client.get_rules()
    assert listed["data"] == [{"id": added["data"][0]["id"], "value": "cats has:images", "tag": "cats"},
                              {"id": added["data"][1]["id"], "value": "dogs"}]
    assert listed["meta"]["result_count"] == 2 and listed["meta"]["sent"].endswith("Z")
    deleted = client.delete_rules([added["data"][0]["id"], "123"])
    assert deleted["meta"]["summary"] == {"deleted": 1, "not_deleted": 1}
    assert deleted["errors"][0]["type"] == PROBLEMS + "invalid-request"
    assert [rule["value"] for rule in client.get_rules()["data"]] == ["dogs"]


def test_created_is_201_and_nothing_created_is_200(simulator):
    client = make_streaming_client(TOKEN, simulator.base_url, return_type=__import__("requests").Response)
    assert client.add_rules(tweepy.StreamRule("cats")).status_code == 201
    assert client.add_rules(tweepy.StreamRule("cats")).status_code == 200


def test_dry_run_validates_without_storing(client):
    dry = client.add_rules(tweepy.StreamRule("cats", tag="t"), dry_run=True)
    assert dry["meta"]["summary"]["created"] == 1
    assert "data" not in client.get_rules() and client.get_rules()["meta"]["result_count"] == 0
    rule_id = client.add_rules(tweepy.StreamRule("cats"))["data"][0]["id"]
    assert client.delete_rules(rule_id, dry_run=True)["meta"]["summary"] == {"deleted": 1, "not_deleted": 0}
    assert len(client.get_rules()["data"]) == 1


@pytest.mark.parametrize("value", ["(cats", "-cats", "frobnicate:yes cats", '"cats', ""])
def test_invalid_rule_is_200_with_invalid_rules_error_naming_the_value(client, value):
    body = client.add_rules([tweepy.StreamRule(value), tweepy.StreamRule("dogs")])
    assert "data" not in body  # one invalid rule refuses the request
    assert body["meta"]["summary"] == {"created": 0, "not_created": 2, "valid": 1, "invalid": 1}
    assert body["errors"][0]["value"] == value and body["errors"][0]["type"] == PROBLEMS + "invalid-rules"
    assert body["errors"][0]["details"] and client.get_rules()["meta"]["result_count"] == 0


def test_duplicate_value_is_duplicate_rules_and_others_are_created(client):
    first = client.add_rules(tweepy.StreamRule("cats"))["data"][0]["id"]
    body = client.add_rules([tweepy.StreamRule("cats", tag="again"), tweepy.StreamRule("birds")])
    assert body["meta"]["summary"] == {"created": 1, "not_created": 1, "valid": 2, "invalid": 0}
    assert body["errors"] == [{"value": "cats", "id": first, "title": "DuplicateRule",
                               "type": PROBLEMS + "duplicate-rules"}]


def test_malformed_rules_request_is_400(client):
    with pytest.raises(tweepy.BadRequest) as caught:
        client.request("POST", "/2/tweets/search/stream/rules", json={"add": [], "delete": {"ids": ["1"]}})
    assert caught.value.response.json()["title"] == "Invalid Request"
    with pytest.raises(tweepy.BadRequest):
        client.request("POST", "/2/tweets/search/stream/rules", params={"dry_run": "maybe"}, json={"add": [{"value": "x"}]})
