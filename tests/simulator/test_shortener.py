"""The URL shortener: redirect chains, loops, errors, HEAD 405, slow and hung hops, concurrency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.simulator.helpers import plain_session, wait_for


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_chain_follows_n_hops_to_a_landing_page(simulator, status):
    session = plain_session()
    url = f"{simulator.base_url}/s/chain/2/{status}/tok{status}"
    hops = []
    while True:
        response = session.get(url, allow_redirects=False)
        hops.append(response.status_code)
        if response.status_code != status:
            break
        url = response.headers["Location"]
    assert hops == [status, status, 200]
    assert url == f"{simulator.base_url}/s/chain/0/{status}/tok{status}"
    assert response.headers["Content-Type"].startswith("text/html")
    assert f"<title>Landing page tok{status}</title>" in response.text


def test_loop_never_ends(simulator):
    session = plain_session()
    session.max_redirects = 6
    with pytest.raises(requests.TooManyRedirects):
        session.get(f"{simulator.base_url}/s/loop/abc")
    hits = simulator.counters()["shortener"]["hits"]
    assert hits["/s/loop/abc"] >= 3 and hits["/s/loop/abc/again"] >= 3


@pytest.mark.parametrize("status", [404, 410, 500])
def test_end_answers_its_status(simulator, status):
    assert plain_session().get(f"{simulator.base_url}/s/end/{status}/x").status_code == status


def test_unknown_behaviour_is_404(simulator):
    assert plain_session().get(f"{simulator.base_url}/s/chain/1/299/x").status_code == 404
    assert plain_session().get(f"{simulator.base_url}/s/whatever").status_code == 404


def test_head405_refuses_head_and_redirects_get(simulator):
    session = plain_session()
    head = session.head(f"{simulator.base_url}/s/head405/h1")
    assert head.status_code == 405 and head.headers["Allow"] == "GET"
    got = session.get(f"{simulator.base_url}/s/head405/h1")
    assert [hop.status_code for hop in got.history] == [301] and got.status_code == 200


def test_head_of_a_landing_page_has_length_but_no_body(simulator):
    session = plain_session()
    head = session.head(f"{simulator.base_url}/s/chain/0/301/z")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0 and head.content == b""
    assert session.get(f"{simulator.base_url}/s/chain/0/301/z").status_code == 200  # connection still usable


def test_slow_hop_takes_its_time(simulator):
    started = time.monotonic()
    response = plain_session().get(f"{simulator.base_url}/s/slow/250/s1")
    assert response.status_code == 200 and time.monotonic() - started >= 0.25


def test_hang_times_out_the_client_and_does_not_block_stop(simulator):
    with pytest.raises(requests.ReadTimeout):
        plain_session().get(f"{simulator.base_url}/s/hang/h", timeout=0.3)
    pending = threading.Thread(target=_ignore_errors, args=(f"{simulator.base_url}/s/hang/h2",), daemon=True)
    pending.start()
    wait_for(lambda: simulator.counters()["shortener"]["hits"].get("/s/hang/h2"))
    started = time.monotonic()
    simulator.stop()
    assert time.monotonic() - started < 2
    pending.join(2)
    assert not pending.is_alive()


def _ignore_errors(url: str) -> None:
    try:
        plain_session().get(url, timeout=10)
    except requests.RequestException:
        pass


@pytest.mark.parametrize("simulator", [{"shortener": {"latency_ms": 100}}], indirect=True)
def test_latency_per_hop_and_64_concurrent_resolutions(simulator):
    urls = [f"{simulator.base_url}/s/chain/2/301/c{number}" for number in range(128)]
    started = time.monotonic()
    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(lambda url: requests.get(url, timeout=10), urls))
    elapsed = time.monotonic() - started
    assert all(result.status_code == 200 and len(result.history) == 2 for result in results)
    assert 0.6 <= elapsed < 10, elapsed  # two rounds of three 100 ms hops; serially it would be 38 s
    counters = simulator.counters()["shortener"]
    assert counters["hits_total"] == 3 * 128 and counters["hits"]["/s/chain/1/301/c7"] == 1
