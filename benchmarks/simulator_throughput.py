"""How fast the simulator serves streams and shortener hops (python benchmarks/simulator_throughput.py [--quick]).

1. Filtered stream over loopback, read by a bare socket client and by tweepy, against the
   baseline of rendering every message with json.dumps (what a naive generator would do).
2. The shortener with 100 ms per hop: URLs x 2 redirects at concurrency 64, against the time the
   same hops would take one after another.
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
import tweepy

from sfm_archiver.platforms.transport import make_streaming_client, redirect_session
from sfm_archiver.platforms.x_fields import post_params, tweepy_arguments
from sfm_archiver.platforms.x_stream import stream_url
from sfm_archiver.simulator import Scenario, Simulator
from sfm_archiver.simulator.tweets import EXTERNAL_USER_BASE, STREAM_LOW, TweetFactory, full_fields, make_id

TOKEN = "bench"


def stream_socket_rate(base_url: str, port: int, seconds: float) -> tuple[float, float]:
    """Messages and megabytes per second read by a bare socket client."""
    make_streaming_client(TOKEN, base_url).add_rules([tweepy.StreamRule("cats", tag="c"), tweepy.StreamRule("dogs")])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        target = stream_url("filter_stream").split("://", 1)[1].split("/", 1)[1]  # the daemon's fields
        sock.sendall(f"GET /{target} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
        sock.recv(65536)  # headers and the first bytes
        lines = received = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            data = sock.recv(1 << 20)
            lines += data.count(b"}\r\n")
            received += len(data)
        elapsed = time.monotonic() - started
    return lines / elapsed, received / elapsed / 1e6


def stream_tweepy_rate(base_url: str, seconds: float) -> float:
    """Messages per second delivered to an unmodified tweepy StreamingClient's on_data."""
    counted = [0]

    class Counting(tweepy.StreamingClient):
        def on_data(self, raw_data: bytes) -> None:
            counted[0] += 1

    client = Counting(TOKEN, chunk_size=65536, daemon=True)
    redirect_session(client.session, base_url)
    thread = client.filter(threaded=True, **tweepy_arguments(post_params()))
    time.sleep(0.5)
    first, started = counted[0], time.monotonic()
    time.sleep(seconds)
    rate = (counted[0] - first) / (time.monotonic() - started)
    client.disconnect()
    thread.join(5)
    return rate


def naive_render_rate(count: int) -> float:
    """Baseline: a full tweet + includes rendered and json.dumps'ed per message."""
    factory = TweetFactory(1, Scenario.default().links)
    fields = full_fields()
    started = time.monotonic()
    for number in range(count):
        tweet_id = make_id(1_795_000_000_000 + number, STREAM_LOW)
        author = factory.external_user(EXTERNAL_USER_BASE + number % 10_000)
        message = {"data": factory.tweet(tweet_id, author.id, 0, fields["tweet"], "http://127.0.0.1:1"),
                   "includes": {"users": [factory.user(author, fields["user"], "http://127.0.0.1:1")]},
                   "matching_rules": [{"id": "1", "tag": "c"}]}
        (json.dumps(message, separators=(",", ":")) + "\r\n").encode()
    return count / (time.monotonic() - started)


def shortener_run(base_url: str, urls: int, concurrency: int) -> float:
    """Seconds to resolve `urls` two-hop chains with `concurrency` workers (keep-alive per worker)."""
    local = threading.local()

    def resolve(number: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.trust_env = False
        response = local.session.get(f"{base_url}/s/chain/2/301/b{number}", timeout=30)
        assert response.status_code == 200 and len(response.history) == 2
        return len(response.history) + 1

    started = time.monotonic()
    with ThreadPoolExecutor(concurrency) as pool:
        hops = sum(pool.map(resolve, range(urls)))
    assert hops == 3 * urls
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 5.0
    urls = 500 if args.quick else 5000

    scenario = Scenario.from_dict({"streams": {"messages_per_second": 10_000_000, "keepalive_seconds": 1}})
    with Simulator(scenario) as simulator:
        socket_rate, megabytes = stream_socket_rate(simulator.base_url, simulator.port, seconds)
    with Simulator(Scenario.from_dict({"streams": {"messages_per_second": 10_000_000}})) as simulator:
        make_streaming_client(TOKEN, simulator.base_url).add_rules(tweepy.StreamRule("cats"))
        tweepy_rate = stream_tweepy_rate(simulator.base_url, seconds)
    baseline = naive_render_rate(2000 if args.quick else 10_000)
    print(f"stream, bare socket reader : {socket_rate:10,.0f} msg/s ({megabytes:.0f} MB/s)")
    print(f"stream, tweepy on_data     : {tweepy_rate:10,.0f} msg/s")
    print(f"baseline json.dumps/message: {baseline:10,.0f} msg/s (render only, no network)")
    print(f"ratio socket/baseline      : {socket_rate / baseline:10.1f}x")

    with Simulator(Scenario.from_dict({"shortener": {"latency_ms": 100}})) as simulator:
        elapsed = shortener_run(simulator.base_url, urls, 64)
    serial = urls * 3 * 0.1
    ideal = serial / 64
    print(f"shortener {urls} URLs x 2 hops, 100 ms/hop, 64 workers: {elapsed:.1f} s "
          f"(ideal {ideal:.1f} s, serial {serial:.0f} s; {serial / elapsed:.0f}x faster than serial, "
          f"{ideal / elapsed:.0%} of ideal)")


if __name__ == "__main__":
    main()
