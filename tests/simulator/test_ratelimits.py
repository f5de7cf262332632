"""Rate-limit headers, 429s, fresh windows, usage caps and clock skew, seen by tweepy."""

from __future__ import annotations

import email.utils
import time

import pytest
import tweepy

from sfm_archiver.simulator import bodies
from sfm_archiver.simulator.ratelimits import Quota
from sfm_archiver.simulator.ratelimits import RateLimiter as SimRateLimiter
from sfm_archiver.simulator.scenario import Scenario, ScenarioError
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


# -- window shapes: rolling or fixed windows, ending before the announced reset -----------------


class _Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _limiter(**shape) -> tuple[SimRateLimiter, _Clock]:
    clock = _Clock(1_800_000_000.3)
    scenario = Scenario.from_dict({"rate_limits": {"window_seconds": 10, "users_lookup": 3, **shape}})
    return SimRateLimiter(scenario.rate_limits, clock), clock


def _take_until_refused(limiter: SimRateLimiter) -> Quota:
    for _ in range(10):
        quota = limiter.take("users", "t")
        if not quota.allowed:
            return quota
    raise AssertionError("the window never ran out")


def test_rolling_windows_start_with_the_first_call_after_the_last_one_ended():
    limiter, clock = _limiter()
    first = limiter.take("users", "t")
    assert first.reset == 1_800_000_011  # the first whole second 10 s after the first call
    spent = _take_until_refused(limiter)
    assert (spent.remaining, spent.reset) == (0, first.reset)
    clock.now = 1_800_000_047.6  # long after: the next window starts here, not on a grid
    fresh = limiter.take("users", "t")
    assert (fresh.allowed, fresh.remaining, fresh.reset) == (True, 2, 1_800_000_058)


def test_fixed_windows_follow_a_grid():
    limiter, clock = _limiter(windows="fixed")
    assert limiter.take("users", "t").reset == 1_800_000_010
    _take_until_refused(limiter)
    clock.now = 1_800_000_047.6
    assert limiter.take("users", "t").reset == 1_800_000_050


@pytest.mark.parametrize("windows", ["rolling", "fixed"])
def test_an_early_reset_ends_the_window_before_the_reset_it_announced(windows):
    limiter, clock = _limiter(windows=windows, early_reset_seconds=1)
    first = limiter.take("users", "t")
    _take_until_refused(limiter)
    clock.now = first.reset - 1.01
    assert not limiter.take("users", "t").allowed
    clock.now = first.reset - 1  # one second before the announced reset: a new window
    fresh = limiter.take("users", "t")
    assert fresh.allowed and fresh.remaining == 2 and fresh.reset > first.reset


def test_window_shapes_are_checked_and_can_differ_per_endpoint():
    scenario = Scenario.from_dict({"rate_limits": {
        "windows": "fixed", "early_reset_seconds": 0.5,
        "user_tweets": {"limit": 5, "window_seconds": 4, "windows": "rolling", "early_reset_seconds": 1}}})
    assert (scenario.rate_limits["users"].windows, scenario.rate_limits["users"].early_reset_seconds) == ("fixed", 0.5)
    tweets = scenario.rate_limits["user_tweets"]
    assert (tweets.limit, tweets.window_seconds, tweets.windows, tweets.early_reset_seconds) == (5, 4.0, "rolling", 1.0)
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml("rate_limits:\n  windows: sliding\n  early_reset_seconds: 2000\n")
    problems = "\n".join(caught.value.problems)
    assert "scenario:2: rate_limits.windows must be one of rolling, fixed" in problems
    assert "scenario:3: rate_limits.early_reset_seconds" in problems


@pytest.mark.parametrize("simulator", [{"rate_limits": {"window_seconds": 2, "users_lookup": 2,
                                                        "early_reset_seconds": 1}}], indirect=True)
def test_an_early_reset_seen_over_http(simulator):
    client = raw_client(simulator.base_url)
    announced = int(client.get_user(username="sfm_alpha").headers["x-rate-limit-reset"])
    client.get_user(username="sfm_alpha")
    fresh = wait_for(lambda: _try(client), timeout=5)
    assert time.time() < announced  # served before the reset the spent window announced
    assert fresh.headers["x-rate-limit-remaining"] == "1" and int(fresh.headers["x-rate-limit-reset"]) > announced
    assert simulator.counters()["rate_limited"] >= 1
