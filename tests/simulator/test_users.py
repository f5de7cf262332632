"""User lookups through unmodified tweepy: shapes, partial errors, 400 bodies."""

from __future__ import annotations

import json
import socket

import pytest
import tweepy

from sfm_archiver.simulator import bodies
from tests.conftest import SimulatorFactory, with_wire
from tests.simulator.helpers import TOKEN, raw_client


@pytest.fixture
def make_simulator(make_simulator: SimulatorFactory, wire_style: str) -> SimulatorFactory:
    """Every test here runs against both wire styles."""
    return with_wire(make_simulator, wire_style)


NOT_FOUND_TYPE = "https://api.twitter.com/2/problems/resource-not-found"


def test_lookup_by_username_returns_requested_fields(simulator, wire_style):
    client = raw_client(simulator.base_url)
    response = client.get_user(username="sfm_alpha", user_fields=["created_at", "public_metrics", "protected",
                                                                   "description", "verified", "url"])
    assert response.status_code == 200
    user = response.json()["data"]
    if wire_style == "compact":
        assert list(user)[:3] == ["id", "name", "username"]  # X's key order
    assert user["id"] == "100001" and user["username"] == "sfm_alpha" and user["name"] == "Alpha Library"
    assert user["created_at"].endswith("Z") and len(user["created_at"]) == 24
    assert set(user["public_metrics"]) == {"followers_count", "following_count", "tweet_count", "listed_count",
                                           "like_count"}
    assert user["public_metrics"]["tweet_count"] == 120
    assert user["protected"] is False and user["description"] == "News from the stacks"
    assert "location" not in user  # not requested


def test_default_fields_only_id_name_username(simulator):
    user = raw_client(simulator.base_url).get_user(id="100002").json()
    assert user == {"data": {"id": "100002", "name": "Beta Archive", "username": "sfm_beta"}}


def test_usernames_match_case_insensitively(simulator):
    data = raw_client(simulator.base_url).get_user(username="SFM_ALPHA").json()["data"]
    assert data["username"] == "sfm_alpha"


def test_batch_lookup_partial_errors_follow_the_request(simulator):
    client = raw_client(simulator.base_url)
    body = client.get_users(ids=["100001", "100004", "100005", "999", "100003"],
                            user_fields=["protected"]).json()
    assert [user["id"] for user in body["data"]] == ["100001", "100003"]
    assert body["data"][1]["protected"] is True
    assert body["errors"] == [
        {"value": "100004", "detail": "User has been suspended: [100004].", "title": "Forbidden",
         "resource_type": "user", "parameter": "ids", "resource_id": "100004", "type": NOT_FOUND_TYPE},
        {"value": "100005", "detail": "Could not find user with ids: [100005].", "title": "Not Found Error",
         "resource_type": "user", "parameter": "ids", "resource_id": "100005", "type": NOT_FOUND_TYPE},
        {"value": "999", "detail": "Could not find user with ids: [999].", "title": "Not Found Error",
         "resource_type": "user", "parameter": "ids", "resource_id": "999", "type": NOT_FOUND_TYPE},
    ]


@pytest.mark.parametrize("call, parameter, value", [
    ({"username": "sfm_gone"}, "username", "sfm_gone"),
    ({"id": "100005"}, "id", "100005"),
])
def test_single_lookup_of_deactivated_user_is_200_with_errors_only(simulator, call, parameter, value):
    response = raw_client(simulator.base_url).get_user(**call)
    assert response.status_code == 200
    assert response.json() == {"errors": [bodies.user_not_found(value, parameter)]}
    assert response.json()["errors"][0]["detail"] == f"Could not find user with {parameter}: [{value}]."


def test_lookup_by_usernames_names_the_parameter(simulator):
    body = raw_client(simulator.base_url).get_users(usernames=["sfm_banned", "Nobody_here"]).json()
    assert "data" not in body
    assert body["errors"][0]["parameter"] == "usernames"
    assert body["errors"][0]["detail"] == "User has been suspended: [sfm_banned]."
    assert body["errors"][1]["detail"] == "Could not find user with usernames: [Nobody_here]."


def test_more_than_100_ids_is_invalid_request(simulator):
    client = raw_client(simulator.base_url)
    ids = [str(100 + number) for number in range(101)]
    with pytest.raises(tweepy.BadRequest) as caught:
        client.get_users(ids=ids)
    body = caught.value.response.json()
    assert body == {"errors": [{"parameters": {"ids": [",".join(ids)]},
                                "message": "The number of values in the `ids` query parameter list [101] is not "
                                           "between 1 and 100"}],
                    "title": "Invalid Request", "detail": "One or more parameters to your request was invalid.",
                    "type": "https://api.twitter.com/2/problems/invalid-request"}


@pytest.mark.parametrize("path, parameter", [
    ("/2/users/by/username/not-valid!", "username"),
    ("/2/users/by/username/sixteen_chars_xx", "username"),
    ("/2/users/abc", "id"),
    ("/2/users?ids=1,abc", "ids"),
    ("/2/users?ids=", "ids"),
    ("/2/users", "ids"),
    ("/2/users/by?usernames=", "usernames"),
    ("/2/users/by?usernames=ok,bad-name", "usernames"),
    ("/2/users/100001?user.fields=nonsense", "user.fields"),
    ("/2/users/100001?expansions=nope", "expansions"),
    ("/2/users/100001?color=red", "color"),
])
def test_malformed_lookups_are_400_invalid_request(simulator, path, parameter):
    client = raw_client(simulator.base_url)
    with pytest.raises(tweepy.BadRequest) as caught:
        client.request("GET", path)
    response = caught.value.response
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["title"] == "Invalid Request" and body["type"].endswith("/invalid-request")
    assert list(body["errors"][0]["parameters"]) == [parameter]
    assert "Traceback" not in response.text


def test_pinned_tweet_expansion_includes_the_tweet(make_simulator):
    simulator = make_simulator(accounts=[{"id": str(200 + number), "username": f"pin_{number}", "tweets": 3}
                                         for number in range(12)])
    client = raw_client(simulator.base_url)
    body = client.get_users(ids=[str(200 + number) for number in range(12)], user_fields=["pinned_tweet_id"],
                            expansions=["pinned_tweet_id"], tweet_fields=["author_id"]).json()
    pinned = {user["pinned_tweet_id"]: user["id"] for user in body["data"] if "pinned_tweet_id" in user}
    assert pinned, "some of twelve accounts have a pinned post"
    assert {tweet["id"]: tweet["author_id"] for tweet in body["includes"]["tweets"]} == pinned


def test_unknown_route_and_wrong_method(simulator):
    client = raw_client(simulator.base_url)
    with pytest.raises(tweepy.NotFound):
        client.request("GET", "/2/nothing/here")
    with pytest.raises(tweepy.HTTPException) as caught:
        client.request("POST", "/2/users/100001")
    assert caught.value.response.status_code == 405


def test_tokens_list_restricts_access(make_simulator):
    simulator = make_simulator(tokens=["only-this"])
    with pytest.raises(tweepy.Unauthorized) as caught:
        raw_client(simulator.base_url, token=TOKEN).get_user(id="100001")
    assert caught.value.response.json() == {"title": "Unauthorized", "type": "about:blank", "status": 401,
                                            "detail": "Unauthorized"}
    assert raw_client(simulator.base_url, token="only-this").get_user(id="100001").status_code == 200


def test_missing_token_is_401(simulator):
    with pytest.raises(tweepy.Unauthorized) as caught:
        raw_client(simulator.base_url, token="").get_user(id="100001")
    assert caught.value.response.json()["title"] == "Unauthorized"
    assert simulator.counters()["unauthorized"] == 1


def test_unreadable_request_body_is_400_json_without_traceback(simulator):
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=5) as sock:
        sock.sendall(b"POST /2/tweets/search/stream/rules HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
                     b"Content-Length: lots\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 400") and b"application/json" in head
    assert json.loads(body)["title"] == "Invalid Request" and b"Traceback" not in answer
