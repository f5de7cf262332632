"""Seeded fault injection: 5xx, damaged bodies, latency; set in the scenario or live."""

from __future__ import annotations

import json
import time

import pytest
import tweepy

from sfm_archiver.simulator import ScenarioError
from tests.simulator.helpers import raw_client


@pytest.mark.parametrize("simulator", [{"faults": {"error_rate": 1.0}}], indirect=True)
def test_error_rate_answers_503_with_a_body(simulator):
    with pytest.raises(tweepy.TwitterServerError) as caught:
        raw_client(simulator.base_url).get_user(id="100001")
    response = caught.value.response
    assert response.status_code == 503
    assert response.json() == {"title": "Service Unavailable", "detail": "Service Unavailable", "type": "about:blank",
                                "status": 503}
    assert "x-rate-limit-remaining" in response.headers
    assert simulator.counters()["faults"]["error"] == 1


@pytest.mark.parametrize("fault", ["truncate_rate", "malformed_rate"])
def test_damaged_bodies_keep_a_valid_content_length(make_simulator, fault):
    clean = make_simulator()
    damaged = make_simulator(faults={fault: 1.0})
    good = raw_client(clean.base_url).get_users_tweets("100001").content
    response = raw_client(damaged.base_url).get_users_tweets("100001")
    assert response.status_code == 200 and int(response.headers["Content-Length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    if fault == "truncate_rate":
        assert good.startswith(response.content) and len(response.content) < len(good)
    with pytest.raises(json.JSONDecodeError):  # what a harvester using tweepy sees
        tweepy_client = raw_client(damaged.base_url)
        tweepy_client.return_type = dict
        tweepy_client.get_users_tweets("100001")


def test_faults_are_seeded(make_simulator):
    runs = []
    for _ in range(2):
        simulator = make_simulator(seed=5, faults={"error_rate": 0.5})
        client = raw_client(simulator.base_url)
        statuses = []
        for _ in range(20):
            try:
                statuses.append(client.get_user(id="100001").status_code)
            except tweepy.TwitterServerError:
                statuses.append(503)
        runs.append(statuses)
    assert runs[0] == runs[1] and 200 in runs[0] and 503 in runs[0]


@pytest.mark.parametrize("simulator", [{"faults": {"endpoint_latency_ms": {"user_tweets": 300}}}], indirect=True)
def test_latency_per_endpoint(simulator):
    client = raw_client(simulator.base_url)
    started = time.monotonic()
    client.get_user(id="100001")
    lookup = time.monotonic() - started
    client.get_users_tweets("100001")
    timeline = time.monotonic() - started - lookup
    assert timeline >= 0.3 and lookup < timeline - 0.2


def test_faults_change_live_and_can_target_endpoints(simulator):
    client = raw_client(simulator.base_url)
    simulator.set_faults({"error_rate": 1.0, "error_status": 500, "endpoints": ["user_tweets"]})
    assert client.get_user(id="100001").status_code == 200
    with pytest.raises(tweepy.TwitterServerError) as caught:
        client.get_users_tweets("100001")
    assert caught.value.response.status_code == 500
    simulator.apply_event({"action": "faults", "error_rate": 0.0})
    assert client.get_users_tweets("100001").status_code == 200
    with pytest.raises(ScenarioError, match="nonsense"):
        simulator.set_faults({"nonsense": 1})
