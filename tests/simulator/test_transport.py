"""The transport seam: every request of a redirected session lands on the configured base URL."""

from __future__ import annotations

import pytest
import requests
import tweepy

from sfm_archiver.errors import UsageError
from sfm_archiver.platforms.transport import RedirectAdapter, make_client, make_streaming_client, redirect_session
from tests.simulator.helpers import TOKEN


def test_rewrite_keeps_path_and_query_and_honours_a_base_path():
    adapter = RedirectAdapter("http://127.0.0.1:8123")
    assert adapter.rewrite("https://api.twitter.com/2/users?ids=1,2") == "http://127.0.0.1:8123/2/users?ids=1,2"
    prefixed = RedirectAdapter("http://127.0.0.1:8123/x/")
    assert prefixed.rewrite("https://api.x.com:443/2/users/by") == "http://127.0.0.1:8123/x/2/users/by"


@pytest.mark.parametrize("base_url", ["127.0.0.1:80", "ftp://127.0.0.1", "http://", "http://h/?q=1"])
def test_unusable_base_urls_are_refused(base_url):
    with pytest.raises(UsageError):
        RedirectAdapter(base_url)


def test_any_host_and_scheme_reach_the_simulator_only(simulator, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://192.0.2.1:9")  # must be ignored
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:9")
    session = redirect_session(requests.Session(), simulator.base_url)
    assert set(session.adapters) == {"https://", "http://"}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for url in ("https://api.twitter.com/2/users/100001", "https://api.x.com/2/users/100001",
                "http://example.invalid:8080/2/users/100001"):
        response = session.get(url, headers=headers, timeout=5)
        assert response.status_code == 200 and response.json()["data"]["id"] == "100001"
    assert simulator.counters()["calls"]["users_id"] == 3


def test_tweepy_clients_use_the_redirected_session(simulator):
    client = make_client(TOKEN, simulator.base_url)
    assert isinstance(client, tweepy.Client) and client.get_user(id="100001").data.username == "sfm_alpha"
    streaming = make_streaming_client(TOKEN, simulator.base_url)
    assert isinstance(streaming, tweepy.StreamingClient)
    assert streaming.add_rules(tweepy.StreamRule("cats")).meta["summary"]["created"] == 1
    assert [rule.value for rule in streaming.get_rules().data] == ["cats"]
