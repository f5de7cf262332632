"""The simulator honours fields and expansions as X does: what is not asked for is not sent."""

from __future__ import annotations

import json

import pytest

from tests.simulator.helpers import TOKEN, plain_session

POST_DEFAULTS = {"id", "text", "edit_history_tweet_ids"}  # X API v2: a post without tweet.fields
USER_DEFAULTS = {"id", "name", "username"}  # X API v2: a user without user.fields
ACCOUNT = {"id": "700001", "username": "long_writer", "tweets": 30}


def get(sim, path: str, **query: str) -> tuple[int, dict]:
    response = plain_session().get(f"{sim.base_url}{path}", params=query,
                                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    return response.status_code, json.loads(response.content)


def stream_messages(sim, count: int, **query: str) -> list[dict]:
    """The first `count` messages of a sample stream opened with `query`."""
    response = plain_session().get(f"{sim.base_url}/2/tweets/sample/stream", params=query, stream=True,
                                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.content
    messages = []
    try:
        for line in response.iter_lines(chunk_size=512):
            if line.strip():
                messages.append(json.loads(line))
            if len(messages) >= count:
                return messages
    finally:
        response.close()
    raise AssertionError(f"the stream ended after {len(messages)} messages")


@pytest.fixture
def sim(make_simulator, wire_style):
    return make_simulator(wire=wire_style, accounts=[ACCOUNT], long_posts=1.0,
                          streams={"messages_per_second": 500, "keepalive_seconds": 0.05,
                                   "max_connections": 2})  # the closed first one may not be gone yet


def test_a_timeline_without_fields_has_only_the_default_post_fields(sim):
    status, page = get(sim, f"/2/users/{ACCOUNT['id']}/tweets", max_results="20")
    assert status == 200 and "includes" not in page
    assert all(set(post) == POST_DEFAULTS for post in page["data"])
    assert all(len(post["text"]) <= 280 for post in page["data"])


def test_a_long_post_carries_note_tweet_only_when_asked(sim):
    _, page = get(sim, f"/2/users/{ACCOUNT['id']}/tweets", max_results="20", **{"tweet.fields": "note_tweet,entities"})
    for post in page["data"]:
        assert set(post) <= POST_DEFAULTS | {"note_tweet", "entities"} and "note_tweet" in post
        note = post["note_tweet"]
        assert len(note["text"]) > 280 and note["text"].startswith(post["text"]) and len(post["text"]) <= 280
        links = note["entities"]["urls"]
        assert links and all(note["text"][link["start"]:link["end"]] == link["url"] for link in links)
        assert links[-1]["start"] >= 280  # the last link is only in the note
        shown = [link["url"] for link in (post.get("entities") or {}).get("urls", [])]
        assert links[-1]["url"] not in shown and links[-1]["url"] not in post["text"]


def test_includes_hold_only_the_expansions_asked_for(sim):
    path = f"/2/users/{ACCOUNT['id']}/tweets"
    _, without = get(sim, path, max_results="20", **{"tweet.fields": "author_id,referenced_tweets"})
    assert "includes" not in without
    _, authors = get(sim, path, max_results="20", expansions="author_id", **{"user.fields": "verified_type"})
    assert [set(user) for user in authors["includes"]["users"]] == [USER_DEFAULTS | {"verified_type"}]
    assert "tweets" not in authors["includes"]
    _, referenced = get(sim, path, max_results="100", expansions="referenced_tweets.id")
    assert set(referenced["includes"]) == {"tweets"}
    assert all(set(post) == POST_DEFAULTS for post in referenced["includes"]["tweets"])


def test_user_lookups_send_only_the_user_fields_asked_for(sim):
    _, plain = get(sim, "/2/users/by", usernames=ACCOUNT["username"])
    assert set(plain["data"][0]) == USER_DEFAULTS
    _, typed = get(sim, "/2/users", ids=ACCOUNT["id"], **{"user.fields": "verified_type,created_at"})
    assert set(typed["data"][0]) == USER_DEFAULTS | {"verified_type", "created_at"}


def test_stream_messages_are_built_from_the_fields_the_connection_asked_for(sim):
    plain = stream_messages(sim, 5)
    assert all(set(message) == {"data"} and set(message["data"]) == POST_DEFAULTS for message in plain)
    assert all(len(message["data"]["text"]) <= 280 for message in plain)
    full = stream_messages(sim, 5, expansions="author_id", **{"tweet.fields": "author_id,note_tweet,created_at",
                                                               "user.fields": "verified_type"})
    for message in full:
        post = message["data"]
        assert set(post) == POST_DEFAULTS | {"author_id", "note_tweet", "created_at"}
        assert len(post["note_tweet"]["text"]) > 280 and post["note_tweet"]["entities"]["urls"]
        assert [user["id"] for user in message["includes"]["users"]] == [post["author_id"]]
        assert set(message["includes"]["users"][0]) == USER_DEFAULTS | {"verified_type"}


def test_fields_x_does_not_know_are_refused_with_400(sim):
    status, body = get(sim, f"/2/users/{ACCOUNT['id']}/tweets", **{"tweet.fields": "note_tweets"})
    assert status == 400 and "note_tweets" in json.dumps(body)
    response = plain_session().get(f"{sim.base_url}/2/tweets/sample/stream", params={"expansions": "author"},
                                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 400


def test_the_simulator_records_what_each_request_asked_for(sim):
    get(sim, "/2/users/by", usernames=ACCOUNT["username"], **{"user.fields": "created_at"})
    get(sim, f"/2/users/{ACCOUNT['id']}/tweets", **{"tweet.fields": "lang", "max_results": "5"})
    assert sim.queries("users_by")[-1]["query"] == {"usernames": ACCOUNT["username"], "user.fields": "created_at"}
    assert sim.queries("user_tweets")[-1]["query"] == {"tweet.fields": "lang", "max_results": "5"}
    assert [entry["endpoint"] for entry in sim.queries()] == ["users_by", "user_tweets"]
