"""User timelines through unmodified tweepy (Client + Paginator): paging, filters, caps, errors."""

from __future__ import annotations

import json
import re

import pytest
import tweepy

from sfm_archiver.platforms.transport import make_client
from sfm_archiver.simulator import Scenario, Simulator, bodies
from tests.conftest import SimulatorFactory, with_wire
from tests.simulator.helpers import TOKEN, raw_client, wait_for


@pytest.fixture
def make_simulator(make_simulator: SimulatorFactory, wire_style: str) -> SimulatorFactory:
    """Every test here runs against both wire styles."""
    return with_wire(make_simulator, wire_style)


ALL_FIELDS = ["created_at", "author_id", "conversation_id", "lang", "public_metrics", "referenced_tweets",
              "entities", "in_reply_to_user_id"]
CREATED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def timeline(base_url: str, user_id: str, **kwargs) -> list[dict]:
    """Every tweet of a timeline through tweepy.Paginator, in the order served."""
    client = make_client(TOKEN, base_url)
    tweets = []
    for page in tweepy.Paginator(client.get_users_tweets, user_id, **kwargs):
        tweets.extend(tweet.data for tweet in page.data or [])
    return tweets


def published_ids(simulator: Simulator, account_id: str) -> list[str]:
    return [post["id"] for post in simulator.published()["posts"][account_id]]


def test_paginator_walks_the_whole_timeline_newest_first(simulator):
    tweets = timeline(simulator.base_url, "100001", max_results=50, tweet_fields=ALL_FIELDS)
    ids = [tweet["id"] for tweet in tweets]
    assert ids == list(reversed(published_ids(simulator, "100001")))
    assert len(ids) == 120 and [int(i) for i in ids] == sorted((int(i) for i in ids), reverse=True)
    created = [tweet["created_at"] for tweet in tweets]
    assert all(CREATED_AT.match(moment) for moment in created) and created == sorted(created, reverse=True)
    assert all(tweet["author_id"] == "100001" and tweet["edit_history_tweet_ids"] == [tweet["id"]] for tweet in tweets)


def test_page_meta_and_tokens(simulator, wire_style):
    client = raw_client(simulator.base_url)
    first = client.get_users_tweets("100001", max_results=5).json()
    keys = ["result_count", "newest_id", "oldest_id", "next_token"]
    assert sorted(first["meta"]) == sorted(keys)
    if wire_style == "compact":
        assert list(first["meta"]) == keys  # X's key order
    assert first["meta"]["result_count"] == 5
    assert first["meta"]["newest_id"] == first["data"][0]["id"] and first["meta"]["oldest_id"] == first["data"][-1]["id"]
    second = client.get_users_tweets("100001", max_results=5, pagination_token=first["meta"]["next_token"]).json()
    assert int(second["data"][0]["id"]) < int(first["data"][-1]["id"])
    back = client.get_users_tweets("100001", max_results=5, pagination_token=second["meta"]["previous_token"]).json()
    assert back["data"] == first["data"]


def test_default_page_is_ten_with_default_fields(simulator):
    body = raw_client(simulator.base_url).get_users_tweets("100001").json()
    assert len(body["data"]) == 10
    assert all(set(tweet) == {"id", "text", "edit_history_tweet_ids"} for tweet in body["data"])


def test_since_and_until_are_exclusive(simulator):
    ids = published_ids(simulator, "100001")
    tweets = timeline(simulator.base_url, "100001", since_id=ids[100], until_id=ids[110], max_results=100)
    assert [tweet["id"] for tweet in tweets] == list(reversed(ids[101:110]))


def test_empty_page_is_exactly_result_count_zero(simulator, wire_style):
    newest = published_ids(simulator, "100001")[-1]
    response = raw_client(simulator.base_url).get_users_tweets("100001", since_id=newest)
    assert response.status_code == 200 and json.loads(response.content) == {"meta": {"result_count": 0}}
    if wire_style == "compact":
        assert response.content == b'{"meta":{"result_count":0}}'  # X's bytes


def test_start_and_end_time_bound_created_at(simulator):
    posts = simulator.published()["posts"]["100001"]
    start, end = posts[20]["created_at"], posts[30]["created_at"]
    tweets = timeline(simulator.base_url, "100001", max_results=100, tweet_fields=["created_at"],
                      start_time=start[:19] + "Z", end_time=end[:19] + "Z")
    assert tweets and all(start[:19] <= tweet["created_at"][:19] < end[:19] for tweet in tweets)


def test_exclude_replies_and_retweets(simulator):
    everything = timeline(simulator.base_url, "100001", max_results=100, tweet_fields=["referenced_tweets"])
    kinds = {ref["type"] for tweet in everything for ref in tweet.get("referenced_tweets", [])}
    assert kinds == {"replied_to", "retweeted", "quoted"}
    filtered = timeline(simulator.base_url, "100001", max_results=100, tweet_fields=["referenced_tweets"],
                        exclude=["replies", "retweets"])
    assert {ref["type"] for tweet in filtered for ref in tweet.get("referenced_tweets", [])} == {"quoted"}
    assert len(filtered) == sum(1 for tweet in everything
                                if not {ref["type"] for ref in tweet.get("referenced_tweets", [])} & {"replied_to", "retweeted"})


def test_only_3200_most_recent_reachable_and_800_without_replies(simulator):
    ids = published_ids(simulator, "100002")
    assert len(ids) == 3500
    reached = [tweet["id"] for tweet in timeline(simulator.base_url, "100002", max_results=100)]
    assert reached == list(reversed(ids[-3200:]))
    without_replies = timeline(simulator.base_url, "100002", max_results=100, exclude=["replies"])
    assert {tweet["id"] for tweet in without_replies} <= set(ids[-800:])
    assert 500 < len(without_replies) < 800


@pytest.mark.parametrize("user_id, error", [
    ("100003", bodies.user_protected("100003")),
    ("100004", bodies.user_suspended("100004", "id")),
    ("100005", bodies.user_not_found("100005", "id")),
    ("424242", bodies.user_not_found("424242", "id")),
])
def test_unavailable_timelines_are_200_with_errors(simulator, user_id, error):
    response = raw_client(simulator.base_url).get_users_tweets(user_id)
    assert response.status_code == 200 and response.json() == {"errors": [error]}


def test_protected_error_body_is_the_recorded_one(simulator):
    body = raw_client(simulator.base_url).get_users_tweets("100003").json()
    assert body == {"errors": [{
        "value": "100003", "parameter": "id", "resource_type": "user", "section": "data",
        "title": "Authorization Error", "detail": "Sorry, you are not authorized to see the user with id: [100003].",
        "type": "https://api.twitter.com/2/problems/not-authorized-for-resource"}]}


@pytest.mark.parametrize("params, parameter", [
    ({"max_results": 4}, "max_results"),
    ({"max_results": 101}, "max_results"),
    ({"pagination_token": "not a token!"}, "pagination_token"),
    ({"since_id": "12ab"}, "since_id"),
    ({"start_time": "yesterday"}, "start_time"),
    ({"exclude": "likes"}, "exclude"),
    ({"tweet_fields": "colour"}, "tweet.fields"),
])
def test_bad_timeline_parameters_are_400(simulator, params, parameter):
    with pytest.raises(tweepy.BadRequest) as caught:
        raw_client(simulator.base_url).get_users_tweets("100001", **params)
    body = caught.value.response.json()
    assert body["type"] == "https://api.twitter.com/2/problems/invalid-request"
    assert list(body["errors"][0]["parameters"]) == [parameter]


def test_expansions_fill_includes(simulator):
    body = raw_client(simulator.base_url).get_users_tweets(
        "100001", max_results=100, tweet_fields=ALL_FIELDS, user_fields=["created_at"],
        expansions=["author_id", "referenced_tweets.id", "referenced_tweets.id.author_id"]).json()
    users = {user["id"]: user for user in body["includes"]["users"]}
    assert users["100001"]["username"] == "sfm_alpha" and "created_at" in users["100001"]
    referenced = {ref["id"] for tweet in body["data"] for ref in tweet.get("referenced_tweets", [])}
    included = {tweet["id"]: tweet for tweet in body["includes"]["tweets"]}
    assert referenced and set(included) == referenced
    assert {tweet["author_id"] for tweet in included.values()} <= set(users)
    replies = [tweet for tweet in body["data"] if tweet.get("in_reply_to_user_id")]
    assert replies and all(tweet["conversation_id"] == tweet["referenced_tweets"][0]["id"] for tweet in replies)


def test_links_point_at_the_simulator_shortener(simulator):
    tweets = timeline(simulator.base_url, "100001", max_results=100, tweet_fields=["entities"])
    urls = [(tweet["text"], url) for tweet in tweets for url in tweet.get("entities", {}).get("urls", [])]
    assert len(urls) > 20
    for text, url in urls:
        assert re.match(r"^https://t\.co/[A-Za-z0-9]{10}$", url["url"]) and text[url["start"]:url["end"]] == url["url"]
        assert url["expanded_url"].startswith(simulator.base_url + "/s/")
        assert url["display_url"] in url["expanded_url"] or url["display_url"].endswith("\u2026")


def test_same_seed_gives_byte_identical_pages_and_ids_unique_across_accounts():
    scenario = Scenario.from_dict({"seed": 11})
    pages = []
    port = 0
    for _ in range(2):
        with Simulator(scenario, port=port) as simulator:
            port = simulator.port
            client = raw_client(simulator.base_url)
            first = client.get_users_tweets("100001", max_results=100, tweet_fields=ALL_FIELDS,
                                            expansions=["author_id", "referenced_tweets.id"])
            second = client.get_users_tweets("100001", max_results=100, tweet_fields=ALL_FIELDS,
                                             pagination_token=first.json()["meta"]["next_token"])
            pages.append((first.content, second.content))
            posts = simulator.published()["posts"]
    assert pages[0] == pages[1]
    all_ids = [post["id"] for account in posts.values() for post in account]
    assert len(all_ids) == len(set(all_ids))
    with Simulator(Scenario.from_dict({"seed": 12}), port=port) as other:
        assert raw_client(other.base_url).get_users_tweets("100001", max_results=100).content != pages[0][0]


def test_posting_rate_publishes_new_posts_over_time(make_simulator):
    simulator = make_simulator(accounts=[{"id": "7", "username": "busy", "tweets": 5, "posts_per_second": 40}])
    client = raw_client(simulator.base_url)
    newest = client.get_users_tweets("7", max_results=5).json()["meta"]["newest_id"]
    fresh = wait_for(lambda: client.get_users_tweets("7", since_id=newest, max_results=100).json().get("data"))
    assert all(int(tweet["id"]) > int(newest) for tweet in fresh)
    posts = simulator.published()["posts"]["7"]
    assert [post["source"] for post in posts[:5]] == ["initial"] * 5
    assert {post["source"] for post in posts[5:]} == {"rate"}
    assert {tweet["id"] for tweet in fresh} <= {post["id"] for post in posts}
