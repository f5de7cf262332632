"""Rate-limit headers, 429s, fresh windows, usage caps and clock skew, seen by tweepy."""

from __future__ import annotations

import email.utils
import time

import pytest
import tweepy

from sfm_archiver.simulator import bodies
from tests.simulator.helpers import raw_client, wait_for


def test_every_response_has_rate_limit_headers_and_a_date(simulator):
    before = time.time()
    response = raw_client(simulator.base_url).get_users_tweets("100001")
    limit, remaining, reset = (response.headers[f"x-rate-limit-{name}"] for name in ("limit", "remaining", "reset"))
    assert (limit, remaining) == ("1500", "1499")
    assert before + 899 <= int(reset) <= time.time() + 901
    served = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert abs(served - time.time()) < 2


def test_windows_are_per_endpoint_and_per_token(simulator):
    first = raw_client(simulator.base_url, token="a")
    other = raw_client(simulator.base_url, token="b")
    for _ in range(3):
        first.get_user(id="100001")
    assert first.get_user(id="100001").headers["x-rate-limit-remaining"] == "296"
    assert other.get_user(id="100001").headers["x-rate-limit-remaining"] == "299"
    assert first.get_users_tweets("100001").headers["x-rate-limit-remaining"] == "1499"


@pytest.mark.parametrize("simulator", [{"rate_limits": {"window_seconds": 1, "users_lookup": 3}}], indirect=True)
def test_exhaustion_gives_429_with_reset_then_a_fresh_window(simulator):
    client = raw_client(simulator.base_url)
    remaining = [client.get_user(username="sfm_alpha").headers["x-rate-limit-remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(tweepy.TooManyRequests) as caught:
        client.get_user(username="sfm_alpha")
    response = caught.value.response
    assert response.json() == {"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank",
                               "status": 429}
    reset = int(response.headers["x-rate-limit-reset"])
    assert response.headers["x-rate-limit-remaining"] == "0" and caught.value.reset_time == reset
    assert reset - 2 <= time.time() <= reset
    fresh = wait_for(lambda: _try(client))
    assert time.time() >= reset - 0.01
    assert fresh.headers["x-rate-limit-remaining"] == "2" and int(fresh.headers["x-rate-limit-reset"]) > reset
    assert simulator.counters()["rate_limited"] >= 1


def _try(client):
    try:
        return client.get_user(username="sfm_alpha")
    except tweepy.TooManyRequests:
        return None


@pytest.mark.parametrize("simulator", [{"usage_cap": {"calls": 2, "period_seconds": 1}}], indirect=True)
def test_usage_cap_answers_usage_capped_until_the_period_ends(simulator):
    client = raw_client(simulator.base_url)
    client.get_user(id="100001")
    client.get_users_tweets("100001")
    with pytest.raises(tweepy.TooManyRequests) as caught:
        client.get_user(id="100001")
    assert caught.value.response.json() == bodies.USAGE_CAPPED
    assert caught.value.response.json()["type"] == "https://api.twitter.com/2/problems/usage-capped"
    assert "x-rate-limit-reset" in caught.value.response.headers
    assert raw_client(simulator.base_url, token="other").get_user(id="100001").status_code == 200
    wait_for(lambda: _try(client), what="the usage cap period to end")
    assert simulator.counters()["usage_capped"] >= 1


def test_usage_cap_forced_and_lifted_by_events(simulator):
    client = raw_client(simulator.base_url)
    simulator.apply_event({"action": "usage_cap"})
    with pytest.raises(tweepy.TooManyRequests) as caught:
        client.get_user(id="100001")
    assert caught.value.response.json()["title"] == "UsageCapExceeded"
    simulator.apply_event({"action": "lift_usage_cap"})
    assert client.get_user(id="100001").status_code == 200
    assert [event["action"] for event in simulator.published()["events"]] == ["usage_cap", "lift_usage_cap"]


@pytest.mark.parametrize("simulator", [{"clock_skew_seconds": -120}], indirect=True)
def test_clock_skew_shifts_date_and_reset_together(simulator):
    response = raw_client(simulator.base_url).get_user(id="100001")
    served = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert 115 <= time.time() - served <= 125
    assert 895 <= int(response.headers["x-rate-limit-reset"]) - served <= 905
