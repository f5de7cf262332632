"""Filtered and sample streams through unmodified tweepy.StreamingClient (on_data)."""

from __future__ import annotations

import json

import tweepy

from sfm_archiver.platforms.transport import redirect_session
from sfm_archiver.platforms.x_fields import post_params
from sfm_archiver.simulator import bodies
from tests.simulator.helpers import TOKEN, CapturingStream, plain_session, wait_for

FAST = {"keepalive_seconds": 0.05, "messages_per_second": 200}
# What these tests ask for (X sends only what is asked for: see test_fields.py).
FIELDS = {"expansions": ["author_id", "referenced_tweets.id"],
          "tweet_fields": ["author_id", "context_annotations", "created_at", "entities"]}


def add_rules(base_url: str, *rules: tuple[str, str | None]) -> list[tweepy.StreamRule]:
    stream = CapturingStream(base_url)
    return stream.add_rules([tweepy.StreamRule(value, tag=tag) for value, tag in rules]).data


def start(base_url: str, kind: str = "filter", **kwargs) -> tuple[CapturingStream, object]:
    stream = CapturingStream(base_url, **kwargs)
    thread = getattr(stream, kind)(threaded=True, **FIELDS) if kind == "filter" else stream.sample(threaded=True, **FIELDS)
    return stream, thread


def test_without_rules_only_keepalives_arrive(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    stream, thread = start(simulator.base_url)
    wait_for(lambda: len(stream.keepalive_times) >= 5)
    stream.stop(thread)
    assert stream.lines == [] and stream.connects == 1
    assert simulator.counters()["streams"]["keepalives_sent"] >= 5


def test_messages_carry_matching_rules_and_match_the_send_record(make_simulator, wire_style):
    simulator = make_simulator(streams={**FAST, "multi_match_probability": 0.5}, wire=wire_style)
    rules = add_rules(simulator.base_url, ("cats", "pets"), ("dogs", None), ("#archives", "glam"))
    stream, thread = start(simulator.base_url)
    wait_for(lambda: len(stream.lines) >= 60)
    stream.stop(thread)
    messages = [json.loads(line) for line in stream.lines]
    by_id = {rule.id: rule.tag or "" for rule in rules}
    for message in messages:
        assert set(message) == {"data", "includes", "matching_rules"}
        assert message["matching_rules"] and all(by_id[rule["id"]] == rule["tag"] for rule in message["matching_rules"])
        assert len({rule["id"] for rule in message["matching_rules"]}) == len(message["matching_rules"])
        assert message["data"]["author_id"] in {user["id"] for user in message["includes"]["users"]}
    assert any(len(message["matching_rules"]) > 1 for message in messages)
    assert any(len(message["matching_rules"]) == 1 for message in messages)
    assert 2000 < min(len(line) for line in stream.lines) and max(len(line) for line in stream.lines) < 4500
    sent = [record["tweet_id"] for record in simulator.published()["stream_messages"]]
    captured = [message["data"]["id"] for message in messages]
    assert sent[:len(captured)] == captured and len(set(sent)) == len(sent)
    assert [int(tweet_id) for tweet_id in sent] == sorted(int(tweet_id) for tweet_id in sent)


def test_sample_stream_needs_no_rules_and_has_no_matching_rules(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    stream, thread = start(simulator.base_url, kind="sample")
    wait_for(lambda: len(stream.lines) >= 10)
    stream.stop(thread)
    message = json.loads(stream.lines[0])
    assert set(message) == {"data", "includes"} and message["data"]["created_at"].endswith("Z")
    assert simulator.published()["connections"][0]["kind"] == "sample"


def test_operational_disconnect_sends_the_message_then_closes(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    add_rules(simulator.base_url, ("cats", "pets"))
    stream, thread = start(simulator.base_url)
    wait_for(lambda: len(stream.lines) >= 5)
    assert simulator.apply_event({"action": "stream_disconnect"})["result"] == {"connections": 1}
    wait_for(lambda: stream.connects >= 2)  # tweepy reconnects at once after a clean close
    stream.stop(thread)
    disconnects = [line for line in stream.lines if b"operational-disconnect" in line]
    assert [json.loads(line) for line in disconnects] == [bodies.OPERATIONAL_DISCONNECT]
    assert stream.closed >= 1 and stream.connection_errors == 0
    assert simulator.published()["connections"][0]["reason"] == "operational-disconnect"


def test_drop_closes_without_a_message(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    add_rules(simulator.base_url, ("cats", "pets"))
    stream, thread = start(simulator.base_url)
    wait_for(lambda: len(stream.lines) >= 5)
    simulator.apply_event({"action": "stream_drop", "kind": "search"})
    wait_for(lambda: stream.connects >= 2)
    stream.stop(thread)
    assert stream.connection_errors >= 1
    assert not any(b"errors" in line for line in stream.lines)
    connections = simulator.published()["connections"]
    assert connections[0]["reason"] == "drop" and connections[0]["closed_at"] is not None


def test_stall_sends_nothing_at_all_for_the_given_time(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    add_rules(simulator.base_url, ("cats", "pets"))
    stream, thread = start(simulator.base_url)
    wait_for(lambda: len(stream.lines) >= 5)
    simulator.apply_event({"action": "stream_stall", "seconds": 0.6})
    wait_for(lambda: _largest_gap(stream) >= 0.5, what="a stall of 0.5 s")
    count = len(stream.lines)
    wait_for(lambda: len(stream.lines) > count + 5)  # messages flow again
    stream.stop(thread)
    assert stream.connects == 1  # the connection stayed open and resumed


def _largest_gap(stream: CapturingStream) -> float:
    moments = sorted(stream.line_times + stream.keepalive_times)
    return max((later - earlier for earlier, later in zip(moments, moments[1:], strict=False)), default=0.0)


def test_second_filtered_connection_gets_429_too_many_connections(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    first, thread = start(simulator.base_url)
    wait_for(lambda: first.connects == 1)
    session = redirect_session(plain_session(), simulator.base_url)
    response = session.get("https://api.twitter.com/2/tweets/search/stream", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 429 and response.json() == bodies.TOO_MANY_CONNECTIONS
    second, second_thread = start(simulator.base_url)
    wait_for(lambda: second.request_errors == [429])
    second_thread.join(5)
    first.stop(thread)
    sample, sample_thread = start(simulator.base_url, kind="sample")  # another kind has its own slot
    wait_for(lambda: sample.connects == 1)
    sample.stop(sample_thread)
    assert simulator.counters()["streams"]["rejected_too_many_connections"] == 2


def test_script_triggers_stream_faults_at_their_time(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, script=[{"at": 0.4, "action": "stream_disconnect"}], wire=wire_style)
    add_rules(simulator.base_url, ("cats", "pets"))
    stream, thread = start(simulator.base_url)
    wait_for(lambda: stream.connects >= 2)
    stream.stop(thread)
    events = simulator.published()["events"]
    assert [(event["action"], event["source"], event["result"]) for event in events] == [
        ("stream_disconnect", "script", {"connections": 1})]
    assert events[0]["at"] >= 0.4


def test_connection_log_and_counters(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    stream, thread = start(simulator.base_url)
    wait_for(lambda: simulator.counters()["streams"]["connections_active"] == 1)
    stream.stop(thread)
    wait_for(lambda: simulator.counters()["streams"]["connections_active"] == 0)
    log = simulator.published()["connections"]
    assert len(log) == 1 and log[0]["reason"] == "client-closed" and log[0]["closed_at"] >= log[0]["opened_at"]
    assert simulator.counters()["calls"]["search_stream"] == 1


def test_stop_ends_open_streams(make_simulator, wire_style):
    simulator = make_simulator(streams=FAST, wire=wire_style)
    add_rules(simulator.base_url, ("cats", "pets"))
    stream, thread = start(simulator.base_url)
    wait_for(lambda: len(stream.lines) >= 3)
    simulator.stop()
    wait_for(lambda: stream.closed >= 1)  # a clean end of the chunked body, not a broken one
    stream.stop(thread)
    assert simulator.published()["connections"][0]["reason"] == "shutdown"


def _raw_frames(simulator, connections: int, messages: int = 20) -> list[tuple[bytes, bytes]]:
    """(frame, its framing) for the first `messages` messages of each of `connections` connections."""
    session = redirect_session(plain_session(), simulator.base_url)
    found = []
    for _ in range(connections):
        with session.get("https://api.twitter.com/2/tweets/search/stream", stream=True, params=post_params(),
                         headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            body = b""
            for chunk in response.iter_content(chunk_size=None):
                body += chunk
                if body.count(b"\n") > messages:
                    break
        frames = body.split(b"\n")[:-1]
        found += [(frame[:-1], b"\r\n") if frame.endswith(b"\r") else (frame, b"\n") for frame in frames]
        wait_for(lambda: simulator.counters()["streams"]["connections_active"] == 0)
    return [(frame, ending) for frame, ending in found if frame.strip()]


def test_variant_wire_streams_legal_json_unlike_x_bytes(make_simulator):
    simulator = make_simulator(streams={**FAST, "messages_per_second": 2000}, wire="variant")
    add_rules(simulator.base_url, ("cats", "pets:a"), ("dogs", "shared:b|pets:c"))
    frames = _raw_frames(simulator, connections=6)
    messages = [json.loads(frame) for frame, _ in frames]
    assert all(set(message) == {"data", "includes", "matching_rules"} for message in messages)
    raw = [frame for frame, _ in frames]
    assert {ending for _, ending in frames} == {b"\r\n", b"\n"}, "some connections frame with a bare LF"
    assert any(frame.index(b'"matching_rules"') < frame.index(b'"data"') for frame in raw)
    assert any(b'": ' in frame or b'" :' in frame for frame in raw) and any(b"\\/" in frame for frame in raw)
    assert any(b"\\u" in frame for frame in raw) and any(frame[:1] == b" " for frame in raw)
    tags = {rule["tag"] for message in messages for rule in message["matching_rules"]}
    assert tags <= {"pets:a", "shared:b|pets:c"}


def test_compact_wire_streams_x_bytes(make_simulator):
    simulator = make_simulator(streams=FAST)
    add_rules(simulator.base_url, ("cats", "pets"))
    frames = _raw_frames(simulator, connections=1, messages=5)
    for frame, ending in frames:
        assert ending == b"\r\n" and frame == json.dumps(json.loads(frame), separators=(",", ":"),
                                                          ensure_ascii=False).encode()
