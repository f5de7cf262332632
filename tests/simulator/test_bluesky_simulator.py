"""The Bluesky simulator over real HTTP and real WebSockets on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from sfm_archiver.errors import ScenarioError
from sfm_archiver.simulator.bluesky import BlueskyScenario, BlueskySimulator, EventError
from tests.polling import wait_for

FEED = "app.bsky.feed.getAuthorFeed"
PROFILE = "app.bsky.actor.getProfile"
PROFILES = "app.bsky.actor.getProfiles"
RESOLVE = "com.atproto.identity.resolveHandle"
POST_URI = re.compile(r"^at://did:plc:[a-z2-7]{24}/app\.bsky\.feed\.(post|repost)/[2-7a-z]{13}$")

SMALL = {"seed": 7, "accounts": [{"handle": "alice.bsky.test", "posts": 120, "links": 0.3, "reposts": 0.1, "replies": 0.2},
                                 {"handle": "bob.bsky.test", "posts": 0},
                                 {"handle": "carol.bsky.test", "posts": 5}]}


class FakeClock:
    """A clock the test moves by hand (rate windows, Date headers, shared time_us)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def make_sim() -> Iterator[Callable[..., BlueskySimulator]]:
    started: list[BlueskySimulator] = []

    def make(data: dict[str, Any] | None = None, clock: Callable[[], float] | None = None) -> BlueskySimulator:
        scenario = BlueskyScenario.from_dict(SMALL if data is None else data)
        sim = BlueskySimulator(scenario, **({"clock": clock} if clock else {})).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


def xrpc(sim: BlueskySimulator, nsid: str, **params: Any) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    return session.get(f"{sim.appview_url}/xrpc/{nsid}", params=params, timeout=30)


def all_pages(sim: BlueskySimulator, actor: str, limit: int, between: Callable[[], None] = lambda: None) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"actor": actor, "limit": limit, **({"cursor": cursor} if cursor else {})}
        answer = xrpc(sim, FEED, **params)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["feed"]) <= limit
        items += page["feed"]
        cursor = page.get("cursor")
        if cursor is None:
            return items
        between()


def sort_time(item: dict) -> str:
    return item["reason"]["indexedAt"] if "reason" in item else item["post"]["record"]["createdAt"]


def item_uri(item: dict) -> str:
    return item["reason"]["uri"] if "reason" in item else item["post"]["uri"]


def error_of(answer: requests.Response) -> tuple[int, str, str]:
    body = answer.json()
    return answer.status_code, body["error"], body.get("message", "")


# AppView ---------------------------------------------------------------------------------------


def test_paging_a_feed_to_the_end_yields_every_post_once_newest_first(make_sim):
    sim = make_sim()
    did = sim.did_of("alice.bsky.test")
    items = all_pages(sim, "alice.bsky.test", limit=17)
    uris = [item_uri(item) for item in items]
    assert uris == sim.feed_uris(did)
    assert len(uris) == len(set(uris)) == 120
    times = [sort_time(item) for item in items]
    assert times == sorted(times, reverse=True)
    assert all(POST_URI.match(uri) for uri in uris)
    assert len(xrpc(sim, FEED, actor=did).json()["feed"]) == 50  # the default limit, by DID too


def test_a_cursor_stays_valid_while_new_posts_arrive(make_sim):
    sim = make_sim()
    did = sim.did_of("alice.bsky.test")
    before = sim.feed_uris(did)
    new = []
    items = all_pages(sim, "alice.bsky.test", limit=30, between=lambda: new.append(sim.post(did, text="new one")))
    assert [item_uri(item) for item in items] == before
    assert len(new) == 3 and sim.feed_uris(did)[:3] == new[::-1]


def test_reposts_and_replies_carry_their_context(make_sim):
    sim = make_sim()
    did = sim.did_of("alice.bsky.test")
    items = all_pages(sim, did, limit=100)
    reposts = [item for item in items if "reason" in item]
    replies = [item for item in items if "reply" in item]
    assert reposts and replies
    for item in reposts:
        assert item["reason"]["$type"] == "app.bsky.feed.defs#reasonRepost"
        assert item["reason"]["by"]["did"] == did
        assert item["post"]["author"]["did"] != did
    for item in replies:
        record_reply = item["post"]["record"]["reply"]
        assert item["reply"]["parent"]["uri"] == record_reply["parent"]["uri"]
        assert item["reply"]["root"]["uri"] == record_reply["root"]["uri"]
        assert item["reply"]["parent"]["cid"] == record_reply["parent"]["cid"]
    filtered = xrpc(sim, FEED, actor=did, limit=100, filter="posts_no_replies").json()["feed"]
    assert filtered and not any("reply" in item for item in filtered)


def test_records_have_link_facets_at_utf8_byte_offsets_and_some_embeds(make_sim):
    sim = make_sim()
    posts = [item["post"] for item in all_pages(sim, "alice.bsky.test", limit=100)]
    links = embeds = 0
    for post in posts:
        record = post["record"]
        assert record["$type"] == "app.bsky.feed.post" and record["langs"] and record["createdAt"].endswith("Z")
        assert post["cid"].startswith("bafyrei") and len(post["cid"]) == 59
        for facet in record.get("facets", []):
            data = record["text"].encode("utf-8")
            span = data[facet["index"]["byteStart"]:facet["index"]["byteEnd"]].decode("utf-8")
            feature = facet["features"][0]
            if feature["$type"] == "app.bsky.richtext.facet#link":
                links += 1
                assert feature["uri"].startswith("https://")
                assert span.rstrip(".").split("://")[-1] in feature["uri"]
            else:
                assert span == "#" + feature["tag"]
        if "embed" in record:
            embeds += 1
            assert post["embed"]["external"]["uri"] == record["embed"]["external"]["uri"]
    assert 15 < links < 60 and embeds  # links: 0.3 of 120 posts
    texts = "".join(post["record"]["text"] for post in posts)
    assert any(ord(char) > 0xFFFF for char in texts) and any(0x7F < ord(char) < 0x3000 for char in texts)


def test_rkeys_increase_with_time_and_the_history_is_deterministic(make_sim):
    one, two = make_sim(), make_sim()
    did = one.did_of("alice.bsky.test")
    assert re.fullmatch(r"did:plc:[a-z2-7]{24}", did) and two.did_of("alice.bsky.test") == did
    own = [uri for uri in one.feed_uris(did) if "/app.bsky.feed.post/" in uri]
    rkeys = [uri.rsplit("/", 1)[1] for uri in own]
    assert rkeys == sorted(rkeys, reverse=True) and len(set(rkeys)) == len(rkeys)
    assert xrpc(one, FEED, actor=did, limit=100).content == xrpc(two, FEED, actor=did, limit=100).content
    other = make_sim({**SMALL, "seed": 8})
    assert other.did_of("alice.bsky.test") != did


def test_profile_errors_follow_the_account_lifecycle(make_sim):
    sim = make_sim()
    did = sim.did_of("carol.bsky.test")
    profile = xrpc(sim, PROFILE, actor="carol.bsky.test").json()
    assert profile["did"] == did and profile["postsCount"] == 5
    sim.takedown(did)
    for nsid in (PROFILE, FEED):
        assert error_of(xrpc(sim, nsid, actor=did)) == (400, "AccountTakedown", "Account has been suspended")
    sim.restore(did)
    assert xrpc(sim, FEED, actor=did).status_code == 200
    sim.deactivate(did)
    assert error_of(xrpc(sim, PROFILE, actor="carol.bsky.test")) == (400, "AccountDeactivated", "Account is deactivated")
    sim.reactivate(did)
    assert xrpc(sim, PROFILE, actor="carol.bsky.test").status_code == 200
    sim.delete_account(did)
    assert error_of(xrpc(sim, PROFILE, actor=did)) == (400, "InvalidRequest", "Profile not found")
    assert error_of(xrpc(sim, RESOLVE, handle="carol.bsky.test")) == (400, "InvalidRequest", "Unable to resolve handle")
    with pytest.raises(EventError):
        sim.restore(did)


@pytest.mark.parametrize("params, message", [
    ({"actor": "nobody.bsky.test"}, "Profile not found"),
    ({"actor": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}, "Profile not found"),
    ({}, 'Error: Params must have the property "actor"'),
    ({"actor": "not a handle"}, "Error: actor must be a valid did or a handle"),
    ({"actor": "alice.bsky.test", "limit": 0}, "Error: limit can not be less than 1"),
    ({"actor": "alice.bsky.test", "limit": 101}, "Error: limit can not be greater than 100"),
    ({"actor": "alice.bsky.test", "limit": "ten"}, "Error: limit must be an integer"),
    ({"actor": "alice.bsky.test", "cursor": "garbage!"}, "Malformed cursor"),
])
def test_bad_feed_requests_get_invalid_request(make_sim, params, message):
    sim = make_sim()
    answer = xrpc(sim, FEED, **params)
    assert error_of(answer) == (400, "InvalidRequest", message)
    assert answer.headers["ratelimit-limit"]


def test_an_unknown_method_is_not_implemented(make_sim):
    assert error_of(xrpc(make_sim(), "app.bsky.feed.getTimeline")) == (501, "MethodNotImplemented", "Method Not Implemented")


def test_get_profiles_omits_missing_taken_down_and_deactivated_actors(make_sim):
    sim = make_sim()
    alice, bob, carol = (sim.did_of(f"{name}.bsky.test") for name in ("alice", "bob", "carol"))
    sim.takedown(bob)
    sim.deactivate(carol)
    actors = ["alice.bsky.test", "ghost.bsky.test", bob, "carol.bsky.test", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"]
    profiles = xrpc(sim, PROFILES, actors=actors).json()["profiles"]
    assert [profile["did"] for profile in profiles] == [alice]
    assert error_of(xrpc(sim, PROFILES, actors=["alice.bsky.test"] * 26))[:2] == (400, "InvalidRequest")
    assert error_of(xrpc(sim, PROFILES))[:2] == (400, "InvalidRequest")


def test_resolve_handle_follows_renames_and_feeds_show_the_new_handle(make_sim):
    sim = make_sim()
    did = sim.did_of("alice.bsky.test")
    assert xrpc(sim, RESOLVE, handle="alice.bsky.test").json() == {"did": did}
    sim.rename(did, "alice2.bsky.test")
    assert error_of(xrpc(sim, RESOLVE, handle="alice.bsky.test")) == (400, "InvalidRequest", "Unable to resolve handle")
    assert xrpc(sim, RESOLVE, handle="alice2.bsky.test").json() == {"did": did}
    feed = xrpc(sim, FEED, actor="alice2.bsky.test", limit=5).json()["feed"]
    assert {item["post"]["author"]["handle"] for item in feed if "reason" not in item} == {"alice2.bsky.test"}
    assert error_of(xrpc(sim, PROFILE, actor="alice.bsky.test"))[2] == "Profile not found"
    with pytest.raises(EventError):
        sim.rename(sim.did_of("bob.bsky.test"), "alice2.bsky.test")  # taken


def test_rate_limit_headers_count_down_then_429_then_recover(make_sim):
    clock = FakeClock()
    sim = make_sim({**SMALL, "rate_limit": {"limit": 5, "window_seconds": 2}}, clock=clock)
    remaining = []
    for _ in range(5):
        answer = xrpc(sim, PROFILE, actor="alice.bsky.test")
        assert answer.status_code == 200
        assert answer.headers["ratelimit-limit"] == "5" and answer.headers["ratelimit-policy"] == "5;w=2"
        assert int(answer.headers["ratelimit-reset"]) == int(clock.now) + 2
        assert parsedate_to_datetime(answer.headers["Date"]).timestamp() == int(clock.now)
        remaining.append(int(answer.headers["ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    refused = xrpc(sim, FEED, actor="alice.bsky.test")
    assert refused.status_code == 429 and refused.json()["error"] == "RateLimitExceeded"
    assert refused.headers["ratelimit-remaining"] == "0"
    clock.advance(2.5)
    recovered = xrpc(sim, FEED, actor="alice.bsky.test")
    assert recovered.status_code == 200 and recovered.headers["ratelimit-remaining"] == "4"
    assert sim.counters["429s"] == 1 and sim.counters["xrpc_calls"] == 7


def test_exhausting_the_window_refuses_the_next_call_until_it_resets(make_sim):
    clock = FakeClock()
    sim = make_sim({**SMALL, "rate_limit": {"limit": 100, "window_seconds": 2}}, clock=clock)
    assert xrpc(sim, RESOLVE, handle="alice.bsky.test").status_code == 200
    sim.exhaust_rate_window()
    assert xrpc(sim, RESOLVE, handle="alice.bsky.test").status_code == 429
    clock.advance(2.1)
    assert xrpc(sim, RESOLVE, handle="alice.bsky.test").status_code == 200


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=10**6))
def test_variant_wire_parses_to_the_same_documents_as_plain(seed):
    data = {**SMALL, "seed": seed}
    with BlueskySimulator(BlueskyScenario.from_dict(data)) as plain, \
            BlueskySimulator(BlueskyScenario.from_dict({**data, "wire": "variant"})) as variant:
        did = plain.did_of("alice.bsky.test")
        spelled_differently = False
        for nsid, params in ((FEED, {"actor": did, "limit": 100}), (PROFILE, {"actor": did}),
                             (PROFILES, {"actors": [did, "bob.bsky.test"]}), (RESOLVE, {"handle": "alice.bsky.test"}),
                             (PROFILE, {"actor": "ghost.bsky.test"})):
            one, two = xrpc(plain, nsid, **params), xrpc(variant, nsid, **params)
            assert one.status_code == two.status_code
            assert json.loads(one.content) == json.loads(two.content)
            spelled_differently |= one.content != two.content
        assert spelled_differently


def test_a_bad_scenario_lists_every_problem():
    with pytest.raises(ScenarioError) as raised:
        BlueskyScenario.from_dict({"wire": "fancy", "colour": 1, "accounts": [{"handle": "x"}],
                                   "script": [{"after_seconds": 1, "event": "explode", "handle": "a.b.c"}]})
    text = str(raised.value)
    assert "wire" in text and "colour" in text and "accounts[0]" in text and "explode" in text


# Jetstream -------------------------------------------------------------------------------------


def subscribe(sim: BlueskySimulator, query: str = "") -> ClientConnection:
    """Connect and wait until the server has placed the subscriber (so no live event can slip past)."""
    before = sim.counters["jetstream_connections"]
    ws = connect(sim.jetstream_url + (f"?{query}" if query else ""), open_timeout=30)
    wait_for(lambda: sim.counters["jetstream_connections"] > before, what="the subscriber to be placed")
    return ws


def receive(ws: ClientConnection, until: Callable[[list[dict]], bool], timeout: float = 30.0) -> list[dict]:
    frames: list[dict] = []
    deadline = threading.Event()
    timer = threading.Timer(timeout, deadline.set)
    timer.start()
    try:
        while not until(frames):
            if deadline.is_set():
                raise AssertionError(f"timed out with {len(frames)} frames: {frames[-3:]}")
            try:
                frames.append(json.loads(ws.recv(timeout=0.5)))
            except TimeoutError:
                pass
    finally:
        timer.cancel()
    return frames


def commits(frames: list[dict], operation: str = "create") -> list[dict]:
    return [frame for frame in frames if frame["kind"] == "commit" and frame["commit"]["operation"] == operation]


def test_jetstream_sends_only_the_wanted_dids(make_sim):
    sim = make_sim({**SMALL, "jetstream": {"events_per_second": 200}})
    alice, bob = sim.did_of("alice.bsky.test"), sim.did_of("bob.bsky.test")
    with subscribe(sim, f"wantedDids={alice}") as only_alice, subscribe(sim, f"wantedDids={alice}&wantedDids={bob}") as both, \
            subscribe(sim) as everyone:
        sim.post(bob, text="from bob")
        sim.post(alice, text="from alice")
        sim.post(bob, text="bob again")
        got = receive(only_alice, lambda frames: len(frames) >= 1)
        assert [frame["commit"]["record"]["text"] for frame in got] == ["from alice"]
        texts = [frame["commit"]["record"]["text"] for frame in receive(both, lambda frames: len(frames) >= 3)]
        assert texts == ["from bob", "from alice", "bob again"]
        seen = receive(everyone, lambda frames: {alice, bob} <= {f["did"] for f in frames} and len(frames) > 20)
        assert {frame["did"] for frame in seen} - {alice, bob}  # background traffic from other DIDs
    assert sim.counters["jetstream_connections"] == 3 and sim.counters["events_sent"] >= 25


def test_background_traffic_carries_keywords_and_other_collections(make_sim):
    sim = make_sim({**SMALL, "jetstream": {"events_per_second": 300}})
    with subscribe(sim) as ws:
        frames = receive(ws, lambda frames: len(frames) >= 200)
    texts = [frame["commit"]["record"]["text"] for frame in commits(frames) if "text" in frame["commit"]["record"]]
    assert any("#climate" in text for text in texts) and any("flood" in text.lower() for text in texts)
    assert {frame["commit"]["collection"] for frame in commits(frames)} == {"app.bsky.feed.post", "app.bsky.feed.like"}
    with subscribe(sim, "wantedCollections=app.bsky.feed.post") as posts_only:
        filtered = receive(posts_only, lambda frames: len(frames) >= 50)
    assert {frame["commit"]["collection"] for frame in filtered if frame["kind"] == "commit"} == {"app.bsky.feed.post"}


def test_a_cursor_replays_buffered_events_then_goes_live(make_sim):
    sim = make_sim()
    alice = sim.did_of("alice.bsky.test")
    with subscribe(sim, f"wantedDids={alice}") as ws:
        for number in range(6):
            sim.post(alice, text=f"post {number}")
        first = receive(ws, lambda frames: len(frames) >= 6)
    cursor = first[2]["time_us"]
    with subscribe(sim, f"wantedDids={alice}&cursor={cursor}") as again:
        replayed = receive(again, lambda frames: len(frames) >= 4)
        assert [frame["commit"]["rkey"] for frame in replayed] == [frame["commit"]["rkey"] for frame in first[2:]]
        sim.post(alice, text="live")
        live = receive(again, lambda frames: len(frames) >= 1)
    assert live[0]["commit"]["record"]["text"] == "live" and live[0]["time_us"] >= replayed[-1]["time_us"]


def test_events_sharing_a_time_us_all_replay(make_sim):
    clock = FakeClock()  # frozen: every event gets the same time_us
    sim = make_sim(clock=clock)
    alice = sim.did_of("alice.bsky.test")
    uris = [sim.post(alice, text=f"same moment {number}") for number in range(3)]
    with subscribe(sim, f"cursor={int(clock.now * 1_000_000)}") as ws:
        frames = receive(ws, lambda frames: len(frames) >= 3)
    assert {frame["time_us"] for frame in frames} == {int(clock.now * 1_000_000)}
    assert [frame["commit"]["rkey"] for frame in frames] == [uri.rsplit("/", 1)[1] for uri in uris]


def test_identity_and_account_events_ignore_wanted_collections(make_sim):
    sim = make_sim()
    carol = sim.did_of("carol.bsky.test")
    with subscribe(sim, f"wantedCollections=app.bsky.feed.post&wantedDids={carol}") as ws:
        sim.rename(carol, "caroline.bsky.test")
        sim.takedown(carol)
        sim.restore(carol)
        sim.deactivate(carol)
        sim.reactivate(carol)
        sim.delete_account(carol)
        frames = receive(ws, lambda frames: len(frames) >= 6)
    assert frames[0]["kind"] == "identity"
    assert frames[0]["identity"]["handle"] == "caroline.bsky.test" and frames[0]["identity"]["did"] == carol
    accounts = [frame["account"] for frame in frames[1:]]
    assert [(a["active"], a.get("status")) for a in accounts] == [
        (False, "takendown"), (True, None), (False, "deactivated"), (True, None), (False, "deleted")]
    seqs = [frames[0]["identity"]["seq"]] + [a["seq"] for a in accounts]
    assert seqs == sorted(seqs) and all(a["did"] == carol and a["time"].endswith("Z") for a in accounts)


def test_a_deleted_post_leaves_the_feed_with_a_commit_delete(make_sim):
    sim = make_sim()
    bob = sim.did_of("bob.bsky.test")
    with subscribe(sim, f"wantedDids={bob}") as ws:
        uri = sim.post(bob, text="soon gone", links=["https://example.org/a"])
        assert [item["post"]["uri"] for item in xrpc(sim, FEED, actor=bob).json()["feed"]] == [uri]
        sim.delete_post(uri)
        frames = receive(ws, lambda frames: len(frames) >= 2)
    assert xrpc(sim, FEED, actor=bob).json() == {"feed": []}
    create, delete = frames
    assert create["commit"]["record"]["facets"][0]["features"][0]["uri"] == "https://example.org/a"
    assert delete["commit"] == {"rev": delete["commit"]["rev"], "operation": "delete",
                                "collection": "app.bsky.feed.post", "rkey": uri.rsplit("/", 1)[1]}
    assert delete["commit"]["rev"] > create["commit"]["rev"]
    with pytest.raises(EventError):
        sim.delete_post(uri)


def test_the_script_runs_from_start(make_sim):
    script = [{"after_seconds": 0.1, "event": "rename", "handle": "alice.bsky.test", "to": "alice2.bsky.test"},
              {"after_seconds": 0.2, "event": "post", "handle": "bob.bsky.test", "text": "scripted"},
              {"after_seconds": 0.3, "event": "takedown", "handle": "carol.bsky.test"}]
    sim = make_sim({**SMALL, "script": script})
    carol = sim.did_of("carol.bsky.test")
    wait_for(lambda: xrpc(sim, PROFILE, actor=carol).status_code == 400, what="carol's takedown")
    assert xrpc(sim, RESOLVE, handle="alice2.bsky.test").status_code == 200
    feed = xrpc(sim, FEED, actor="bob.bsky.test").json()["feed"]
    assert [item["post"]["record"]["text"] for item in feed] == ["scripted"]
    assert [event["event"] for event in sim.events()] == ["rename", "post", "takedown"]
    kinds = [event["kind"] for event in sim.jetstream_events()]
    assert kinds == ["identity", "commit", "account"]


def test_a_reply_carries_its_thread_in_the_feed_and_in_jetstream(make_sim):
    sim = make_sim()
    bob = sim.did_of("bob.bsky.test")
    with subscribe(sim, f"wantedDids={bob}") as ws:
        root = sim.post(bob, text="a thread 🧵")
        reply = sim.post(bob, text="and more", reply_to=root)
        frames = receive(ws, lambda frames: len(frames) >= 2)
    assert frames[1]["commit"]["record"]["reply"]["root"]["uri"] == root
    newest = xrpc(sim, FEED, actor=bob, filter="posts_and_author_threads").json()["feed"][0]
    assert newest["post"]["uri"] == reply and newest["reply"]["parent"]["uri"] == root
    assert "facets" not in newest["post"]["record"]  # given text, no links: exactly that
    assert [item["post"]["uri"] for item in xrpc(sim, FEED, actor=bob, filter="posts_no_replies").json()["feed"]] == [root]


def test_a_scenario_reads_from_yaml(tmp_path):
    path = tmp_path / "bsky.yaml"
    path.write_text("seed: 3\nwire: variant\naccounts:\n  - handle: one.bsky.test\n    posts: 2\n", encoding="utf-8")
    scenario = BlueskyScenario.from_yaml(path)
    assert scenario.seed == 3 and scenario.wire == "variant" and scenario.accounts[0].posts == 2
    with pytest.raises(ScenarioError, match="bsky.yaml:2"):
        path.write_text("seed: 3\nseed: 4\n", encoding="utf-8")
        BlueskyScenario.from_yaml(path)


def test_dropping_jetstream_connections_closes_each_subscriber_and_a_cursor_picks_up(make_sim):
    sim = make_sim()
    did = sim.did_of("alice.bsky.test")
    ws = subscribe(sim, f"wantedDids={did}")
    sim.post(did, text="before the drop")
    first = receive(ws, lambda frames: len(frames) >= 1)
    assert sim.drop_jetstream_connections() == 1
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    sim.post(did, text="while away")
    again = subscribe(sim, f"wantedDids={did}&cursor={first[-1]['time_us']}")
    frames = receive(again, lambda frames: any(f["commit"]["record"]["text"] == "while away" for f in commits(frames)))
    assert [f["commit"]["record"]["text"] for f in commits(frames)] == ["before the drop", "while away"]
    again.close()
