"""Pure parts of the stream job: reconnect delays, rule plans, tag routing, gap arithmetic."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sfm_archiver.config import Collection, StreamRule
from sfm_archiver.platforms.x_stream import AUTH, CLOSED, HTTP, NETWORK, TOO_MANY, BackoffPolicy, reconnect_delay
from sfm_archiver.streams.connection import FilterRouter, collections_of_tag
from sfm_archiver.streams.gaps import disconnected_intervals, disconnected_seconds
from sfm_archiver.streams.rules import desired_rules, plan

T0 = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)


def test_network_errors_back_off_linearly_to_16_seconds():
    assert [reconnect_delay(NETWORK, n) for n in (1, 2, 3, 4)] == [0.25, 0.5, 0.75, 1.0]
    assert reconnect_delay(NETWORK, 64) == 16.0 and reconnect_delay(NETWORK, 1000) == 16.0


def test_http_errors_back_off_exponentially_from_5_to_320_seconds():
    assert [reconnect_delay(HTTP, n) for n in range(1, 8)] == [5, 10, 20, 40, 80, 160, 320]
    assert reconnect_delay(HTTP, 50) == 320


def test_too_many_connections_start_at_a_minute_and_double():
    assert [reconnect_delay(TOO_MANY, n) for n in (1, 2, 3)] == [60, 120, 240]
    assert reconnect_delay(TOO_MANY, 40) == 960


def test_clean_close_reconnects_at_once_then_like_network_errors_and_auth_never():
    assert reconnect_delay(CLOSED, 1) == 0.0
    assert reconnect_delay(CLOSED, 2) == 0.25
    assert reconnect_delay(AUTH, 1) is None


def test_policy_scales_for_tests():
    fast = BackoffPolicy().scaled(0.01)
    assert reconnect_delay(HTTP, 1, fast) == 0.05 and reconnect_delay(TOO_MANY, 2, fast) == 1.2


def _filter(name: str, *rules: tuple[str, str]) -> Collection:
    return Collection(name=name, type="filter_stream", rules=tuple(StreamRule(v, t) for v, t in rules))


def test_rules_are_tagged_by_collection_and_shared_values_name_every_collection():
    desired = desired_rules([
        _filter("climate", ("climate change", "cc"), ("#cop30", "cop")),
        _filter("weather", ("storm", "s"), ("#cop30", "cop")),
        Collection(name="sample", type="sample_stream"),
    ])
    assert desired == {"climate change": "climate:cc", "#cop30": "climate:cop|weather:cop", "storm": "weather:s"}
    assert collections_of_tag("climate:cop|weather:cop") == ["climate", "weather"]
    assert collections_of_tag("") == [] and collections_of_tag("no-colon") == []


def test_plan_deletes_stale_and_foreign_rules_and_adds_missing_ones():
    current = [
        {"id": "1", "value": "climate change", "tag": "climate:cc"},  # kept
        {"id": "2", "value": "storm", "tag": "old:s"},  # same value, other tag: replaced
        {"id": "3", "value": "gone", "tag": "climate:g"},  # no longer configured
        {"id": "4", "value": "climate change", "tag": "climate:cc"},  # a second copy
    ]
    delete, add = plan(current, {"climate change": "climate:cc", "storm": "weather:s", "new": "weather:n"})
    assert [rule["id"] for rule in delete] == ["2", "3", "4"]
    assert add == [{"value": "storm", "tag": "weather:s"}, {"value": "new", "tag": "weather:n"}]


class _Sink:
    def __init__(self) -> None:
        self.template = None


def test_filter_router_reads_matching_rules_from_the_raw_bytes():
    router = FilterRouter()
    sinks = {"climate": _Sink(), "weather": _Sink()}
    line = (b'{"data":{"id":"1","text":"\\"matching_rules\\":[{\\"tag\\":\\"weather:x\\"}]"},'
            b'"matching_rules":[{"id":"9","tag":"climate:cc"},{"id":"8","tag":"other:z"}]}\r')
    assert router.targets(line, sinks) == ["climate"]
    both = b'{"data":{"id":"2"},"matching_rules":[{"id":"9","tag":"climate:cc|weather:cc"}]}'
    assert router.targets(both, sinks) == ["climate", "weather"]
    disconnect = b'{"errors":[{"title":"operational-disconnect","disconnect_type":"OperationalDisconnect","detail":"x"}]}'
    assert list(router.targets(disconnect, sinks)) == ["climate", "weather"]
    assert router.last_error_message == "OperationalDisconnect: x"


def _event(event: str, seconds: float) -> dict:
    return {"event": event, "at": (T0 + timedelta(seconds=seconds)).isoformat()}


def test_disconnected_intervals_from_events():
    events = [
        _event("start", 0), _event("connect", 1), _event("disconnect", 10), _event("reconnect", 10.5),
        _event("connect_failed", 11), _event("reconnect", 15), _event("connect", 16), _event("stop", 20),
        _event("start", 30), _event("connect", 32),
    ]
    end = T0 + timedelta(seconds=40)
    gaps = disconnected_intervals(events, T0, end)
    assert [((a - T0).total_seconds(), (b - T0).total_seconds()) for a, b in gaps] == [(0, 1), (10, 16), (30, 32)]
    assert disconnected_seconds(events, T0, end) == 9
    # a window starting while disconnected, and one ending before the reconnect
    later = T0 + timedelta(seconds=12)
    assert disconnected_seconds(events[5:], later, end, before=events[4]) == 4 + 2
    assert disconnected_seconds(events[:3], T0, T0 + timedelta(seconds=12)) == 1 + 2


def test_backfill_is_asked_for_only_when_configured():
    from urllib.parse import parse_qs, urlsplit

    from sfm_archiver.platforms.x_stream import stream_url

    plain = urlsplit(stream_url("filter_stream"))
    assert plain.path == "/2/tweets/search/stream" and "backfill_minutes" not in parse_qs(plain.query)
    assert "author_id" in parse_qs(plain.query)["expansions"][0]
    assert parse_qs(urlsplit(stream_url("sample_stream", 3)).query)["backfill_minutes"] == ["3"]


class _Collecting:
    def __init__(self, template) -> None:
        self.template = template
        self.data = b""
        self.messages = 0

    def accept(self, parts, messages, captured_at) -> int:
        self.data += b"".join(parts)
        self.messages += messages
        return 0


BLOCKS = [
    b'{"data":{"id":"1"},"matching_rules":[{"id":"9","tag":"c:x"}]}\r\n',
    b'\r\n{"data":{"id":"1"}}\r\n\r\n\r\n{"data":{"id":"2","t":"} \\r\\n"}}\r\n\r\n',
    b'{"data":{"id":"1"}}\r\n{"errors":[{"title":"operational-disconnect","detail":"x"}]}\r\n',  # not all data: per frame
    b'{"data":{"id":"1"} }\r\n',  # whitespace before the brace: per frame, through records.envelope
    b'{"data":{"id":"1"}}\n{"data":{"id":"2"}}\r\n',  # a bare LF frame: per frame
    b"\r\n\r\n",
]


def test_whole_block_fast_path_writes_exactly_what_frame_by_frame_routing_writes():
    from sfm_archiver.streams.connection import Router
    from sfm_archiver.streams.sink import MetaTemplate

    template = MetaTemplate("c", "sample_stream")
    for block in BLOCKS:
        fast, slow = _Collecting(template), _Collecting(template)
        fast_router, slow_router = Router(), Router()
        fast_router.set_sinks({"c": fast}, exclusive="c")
        slow_router.set_sinks({"c": slow})
        assert fast_router.route_block(block, T0) == slow_router.route_block(block, T0)
        assert fast.data == slow.data, block
        assert fast.messages == slow.messages == fast.data.count(b"\n")


def test_a_frame_that_is_not_an_object_is_reported_and_skipped():
    from sfm_archiver.streams.connection import Router
    from sfm_archiver.streams.sink import MetaTemplate

    sink = _Collecting(MetaTemplate("c", "sample_stream"))
    router = Router()
    router.set_sinks({"c": sink})
    assert router.route_block(b'<html>busy</html>\r\n{"data":{"id":"1"}}\r\n', T0) == 2
    assert sink.messages == 1 and router.malformed == 1
