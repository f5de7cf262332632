"""Stream sessions against the simulator: faults, exact capture, recorded gaps, live reloads."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import time
from collections import Counter

import pytest
import requests

from sfm_archiver.config import load_config
from sfm_archiver.platforms.x_stream import BackoffPolicy
from sfm_archiver.streams.gaps import disconnected_intervals, stream_status
from sfm_archiver.streams.supervisor import StreamSupervisor, run_stream
from sfm_archiver.timeutil import from_epoch, parse_timestamp
from tests.streams.conftest import captured, make_context, wait_for, write_config

FAST = BackoffPolicy(network_step=0.02, network_max=0.2, http_start=1.0, http_max=2.0, too_many_start=0.3, too_many_max=1.0)
SCENARIO = {
    "streams": {"messages_per_second": 150, "keepalive_seconds": 0.1, "multi_match_probability": 0.5},
    "rate_limits": {"search_stream": 1000, "sample_stream": 1000, "rules_get": 1000, "rules_post": 1000},
}


def _ids(lines: list[dict]) -> list[str]:
    return [line["data"]["id"] for line in lines if "data" in line]


def _safe_ids(archive, collection) -> set[str] | None:
    """Captured ids so far (a file being appended to may show a half-written batch: try again)."""
    try:
        return set(_ids(captured(archive, collection)))
    except (OSError, EOFError, ValueError):
        return None


def _ours(sim, exclude: set[int]) -> list[dict]:
    return [c for c in sim.hub.connections() if c["kind"] == "search" and c["id"] not in exclude]


def _wait_open_connections(sim, count: int, exclude: set[int] = frozenset()) -> list[dict]:
    return wait_for(lambda: (lambda conns: conns if len(conns) == count and conns[-1]["closed_at"] is None else None)(
        _ours(sim, exclude)), what=f"connection {count}")


def _wait_messages_on(sim, connection: dict, count: int = 30) -> None:
    wait_for(lambda: sum(1 for m in sim.stream_messages() if m["connection_id"] == connection["id"]) >= count,
             what=f"{count} messages on connection {connection['id']}")


def _events(ctx, name: str, event: str) -> list[dict]:
    return [e for e in ctx.store.stream_events(name) if e["event"] == event]


def test_faults_lose_nothing_duplicate_nothing_and_gaps_match_the_server(make_simulator, wire_style, tmp_path):
    sim = make_simulator(**SCENARIO, wire=wire_style)
    ctx = make_context(tmp_path, sim.base_url, [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}]}],
                       streams={"stall_timeout": "0.8s"}, storage={"stream_flush_seconds": "0.05s"})
    archive = ctx.config.paths.archive
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        _wait_messages_on(sim, _wait_open_connections(sim, 1)[-1])
        sim.apply_event({"action": "stream_disconnect", "kind": "search"})  # operational disconnect
        _wait_messages_on(sim, _wait_open_connections(sim, 2)[-1])
        sim.apply_event({"action": "stream_drop", "kind": "search"})  # the server cuts the connection
        _wait_messages_on(sim, _wait_open_connections(sim, 3)[-1])
        sim.apply_event({"action": "stream_stall", "kind": "search", "seconds": 5})  # silence: we must reconnect
        _wait_messages_on(sim, _wait_open_connections(sim, 4)[-1])
        # an HTTP error at reconnect, and while we back off another client takes the only slot: 429
        sim.set_faults({"error_rate": 1.0, "error_status": 503, "endpoints": ["search_stream"]})
        sim.apply_event({"action": "stream_drop", "kind": "search"})
        wait_for(lambda: any("http" in e["reason"] for e in _events(ctx, "climate", "connect_failed")), what="503")
        sim.set_faults({"error_rate": 0.0})
        other = requests.get(sim.base_url + "/2/tweets/search/stream", headers={"Authorization": "Bearer other"},
                             stream=True, timeout=5)
        assert other.status_code == 200
        intruder = {c["id"] for c in sim.hub.connections() if c["closed_at"] is None and c["kind"] == "search"}
        wait_for(lambda: sim.counters()["streams"]["rejected_too_many_connections"] >= 1, what="429")
        other.close()
        _wait_messages_on(sim, _wait_open_connections(sim, 5, exclude=intruder)[-1])
        snapshot = time.time()
        sent = list(sim.stream_messages())
        due = {m["tweet_id"] for m in sent if m["sent_at"] < snapshot and m["connection_id"] not in intruder}
        wait_for(lambda: (_safe_ids(archive, "climate") or set()) >= due, what="every message sent so far on disk")
    finally:
        supervisor.stop()

    lines = captured(archive, "climate")
    ids = _ids(lines)
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, f"captured more than once: {duplicates[:5]}"
    sent_by_us = {m["tweet_id"] for m in sim.stream_messages() if m["connection_id"] not in intruder}
    assert set(ids) >= due and set(ids) <= sent_by_us
    assert len(due) > 150
    disconnects = [line for line in lines if "errors" in line]
    assert [e["disconnect_type"] for line in disconnects for e in line["errors"]] == ["OperationalDisconnect"]
    assert all(line["__sfm"]["job"] == "filter_stream" and line["__sfm"]["collection"] == "climate" for line in lines)

    # the gaps we recorded are the gaps the server saw between our connections
    ours = _ours(sim, intruder)
    assert [c["reason"] for c in ours[:4]] == ["operational-disconnect", "drop", "client-closed", "drop"]
    server_gaps = [(a["closed_at"], b["opened_at"]) for a, b in zip(ours[:-1], ours[1:], strict=True)]
    events = ctx.store.stream_events("climate")
    connects = [parse_timestamp(e["at"]) for e in events if e["event"] == "connect"]
    stop = parse_timestamp(events[-1]["at"])
    recorded = disconnected_intervals(events, connects[0], stop)
    assert len(recorded) == len(server_gaps) == 4
    for (ours_from, ours_to), (server_from, server_to) in zip(recorded, server_gaps, strict=True):
        assert abs(ours_from.timestamp() - server_from) < 0.3, (ours_from, from_epoch(server_from))
        assert abs(ours_to.timestamp() - server_to) < 0.3, (ours_to, from_epoch(server_to))
    reasons = [e["reason"] for e in events if e["event"] in ("disconnect", "connect_failed")]
    assert "OperationalDisconnect" in reasons[0] and "connection lost" in reasons[1] and "stall" in reasons[2]
    assert any("TooManyConnections" in reason for reason in reasons)
    status = stream_status(ctx.store, "climate", from_epoch(time.time()))
    assert status["state"] == "stopped" and status["messages_last_hour"] == len(lines)
    assert 0 < status["disconnected_seconds_24h"] < 10


def test_overlapping_collections_get_each_matching_message_exactly_once(make_simulator, wire_style, tmp_path):
    sim = make_simulator(**SCENARIO, wire=wire_style)
    ctx = make_context(tmp_path, sim.base_url, [
        {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}, {"value": "#cop30", "tag": "cop"}]},
        {"name": "weather", "type": "filter_stream", "rules": [{"value": "storm", "tag": "st"}, {"value": "#cop30", "tag": "cop"}]},
    ])
    archive = ctx.config.paths.archive
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        wait_for(lambda: len(list(sim.stream_messages())) > 150, what="messages")
        snapshot = time.time()
        due = {m["tweet_id"] for m in sim.stream_messages() if m["sent_at"] < snapshot}

        def everything_on_disk():
            a, b = _safe_ids(archive, "climate"), _safe_ids(archive, "weather")
            return a is not None and b is not None and (a | b) >= due

        wait_for(everything_on_disk, what="every message on disk")
    finally:
        supervisor.stop()
    assert len(sim.hub.connections()) == 1, "both collections share one connection"
    rules = {rule.value: rule.tag for rule in sim.hub.rules_snapshot()[1]}
    assert rules == {"climate": "climate:cc", "storm": "weather:st", "#cop30": "climate:cop|weather:cop"}
    climate, weather = captured(archive, "climate"), captured(archive, "weather")
    for name, lines in (("climate", climate), ("weather", weather)):
        ids = _ids(lines)
        assert len(ids) == len(set(ids)), f"{name}: a message captured twice"
        for line in lines:
            tags = "|".join(rule["tag"] for rule in line["matching_rules"])
            assert f"{name}:" in tags, f"{name} got a message it did not match: {tags}"
    by_id = {line["data"]["id"]: line for line in climate + weather}
    both = {i for i, line in by_id.items()
            if {"climate:", "weather:"} <= {t.split(":")[0] + ":" for r in line["matching_rules"] for t in r["tag"].split("|")}}
    assert both and both <= set(_ids(climate)) and both <= set(_ids(weather))
    assert set(by_id) >= due


def test_live_reload_resyncs_rules_without_reconnecting(make_simulator, wire_style, tmp_path):
    sim = make_simulator(**SCENARIO, wire=wire_style)
    collections = [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}]},
                   {"name": "weather", "type": "filter_stream", "rules": [{"value": "storm", "tag": "st"}]}]
    ctx = make_context(tmp_path, sim.base_url, collections)
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        _wait_open_connections(sim, 1)
        changed = [{**collections[0], "rules": [{"value": "climate", "tag": "cc"}, {"value": "flood", "tag": "fl"}]},
                   {"name": "oceans", "type": "filter_stream", "rules": [{"value": "ocean", "tag": "o"}, {"value": "bad(", "tag": "b"}]},
                   {"name": "sampled", "type": "sample_stream"}]
        supervisor.apply_config(load_config(write_config(tmp_path, sim.base_url, changed)))
        rules = {rule.value: rule.tag for rule in sim.hub.rules_snapshot()[1]}
        assert rules == {"climate": "climate:cc", "flood": "climate:fl", "ocean": "oceans:o"}
        wait_for(lambda: (_safe_ids(ctx.config.paths.archive, "oceans") or None), what="oceans captures")
        wait_for(lambda: (_safe_ids(ctx.config.paths.archive, "sampled") or None), what="sample captures")
        status = supervisor.status()
        assert set(status) == {"climate", "oceans", "sampled"}
        assert status["oceans"]["rule_problems"] == ["rule 'bad(': UnprocessableEntity: Unbalanced parentheses (at position 4)"]
        assert [c["kind"] for c in sim.hub.connections()] == ["search", "sample"], "the filter connection was kept"
        assert sim.hub.connections()[0]["closed_at"] is None
        assert _events(ctx, "weather", "stop") and not ctx.store.open_files("weather")
        joined = _events(ctx, "oceans", "connect")[0]["reason"]
        first = _events(ctx, "climate", "connect")[0]["reason"]
        assert joined == f"joined the open connection: {first}", "the same connection id and request URL"
    finally:
        supervisor.stop()
    assert not ctx.store.open_files()
    runs = {run["collection"]: run for run in ctx.store.runs()}
    assert runs["oceans"]["result"] == "warning" and "bad(" in runs["oceans"]["warnings"][0]
    assert runs["weather"]["result"] == "ok"


def test_refused_credentials_stop_the_stream_without_looping(make_simulator, wire_style, tmp_path):
    sim = make_simulator(tokens=["the-real-token"], **SCENARIO, wire=wire_style)
    ctx = make_context(tmp_path, sim.base_url, [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate"}]}])
    started = time.monotonic()
    run = run_stream(ctx, "climate", duration=20, backoff=FAST)
    assert time.monotonic() - started < 10
    assert run["result"] == "failed" and "401" in run["errors"][0] and "Unauthorized" in run["errors"][0]
    assert sim.counters()["unauthorized"] == 1
    assert [e["event"] for e in ctx.store.stream_events("climate")] == ["start", "connect_failed", "error", "stop"]


def test_low_disk_buffers_then_drops_with_exact_counts(make_simulator, wire_style, tmp_path):
    sim = make_simulator(**SCENARIO, wire=wire_style)
    ctx = make_context(tmp_path, sim.base_url, [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate"}]}],
                       streams={"buffer_messages": 40})
    disk = {"ok": True}
    ctx = dataclasses.replace(ctx, disk_ok=lambda: disk["ok"])
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        wait_for(lambda: supervisor.status()["climate"]["messages"] > 20, what="first messages")
        disk["ok"] = False
        wait_for(lambda: supervisor.status()["climate"]["dropped"] > 50, what="drops")
        assert supervisor.status()["climate"]["buffered"] == 40
        disk["ok"] = True
        wait_for(lambda: not supervisor.status()["climate"]["paused_for_disk"], what="writing again")
        snapshot = time.time()
        due = {m["tweet_id"] for m in sim.stream_messages() if m["sent_at"] < snapshot}
        archive = ctx.config.paths.archive
        wait_for(lambda: len((_safe_ids(archive, "climate") or set()) & due) + supervisor.status()["climate"]["dropped"] >= len(due),
                 what="every message captured or counted as dropped")
    finally:
        supervisor.stop()
    ids = set(_ids(captured(ctx.config.paths.archive, "climate")))
    run = ctx.store.runs()[-1]
    dropped = run["counts"]["dropped"]
    assert len(ids & due) + dropped == len(due)
    assert ctx.store.stream_totals("climate", from_epoch(snapshot - 3600))["dropped"] == dropped
    assert run["result"] == "warning" and "dropped" in run["warnings"][0]


@pytest.mark.parametrize("simulator", [SCENARIO], indirect=True)
def test_real_clock_rotation_closes_idle_files(simulator, tmp_path):
    ctx = make_context(tmp_path, simulator.base_url, [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate"}]}],
                       storage={"rotation": "2s", "stream_flush_seconds": "0.1s"}, streams={"stall_timeout": "20s"})
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        wait_for(lambda: supervisor.status()["climate"]["file"], what="an open file")
        # the server goes silent; the open file must still be closed at the next 2 s boundary
        simulator.apply_event({"action": "stream_stall", "kind": "search", "seconds": 2.5})
        wait_for(lambda: not ctx.store.open_files("climate"), timeout=5, what="the idle file closed by the clock")
        assert supervisor.status()["climate"]["connected"]
        wait_for(lambda: supervisor.status()["climate"]["file"], timeout=10, what="messages again after the stall")
    finally:
        supervisor.stop()
    files = sorted((ctx.config.paths.archive / "climate").rglob("*.jsonl.gz"))
    assert len(files) >= 2
    for path in files:
        lines = captured_file(path)
        stamps = [parse_timestamp(line["__sfm"]["captured_at"]).timestamp() for line in lines]
        period = int(min(stamps) // 2)
        assert all(int(s // 2) == period for s in stamps), f"{path.name} spans two rotation periods"


def captured_file(path):
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def test_a_busy_collection_waits_in_the_daemon_and_is_refused_in_the_foreground(make_simulator, wire_style, tmp_path):
    from sfm_archiver.errors import LockBusyError
    from sfm_archiver.locks import collection_lock

    sim = make_simulator(**SCENARIO, wire=wire_style)
    ctx = make_context(tmp_path, sim.base_url, [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate"}]}])
    held = collection_lock(ctx.config.paths.state, "climate", "stream").acquire()
    with pytest.raises(LockBusyError):
        run_stream(ctx, "climate", duration=1)
    supervisor = StreamSupervisor(ctx, backoff=FAST, lock_retry_seconds=0.1)
    supervisor.start()
    try:
        assert supervisor.status()["climate"]["state"] == "waiting"
        held.release()
        wait_for(lambda: supervisor.status()["climate"].get("messages"), what="capture once the lock is free")
    finally:
        supervisor.stop()
    assert [run["result"] for run in ctx.store.runs(collection="climate")] == ["ok"]


def test_a_new_token_after_a_refused_one_reconnects_and_resyncs_the_rules(make_simulator, wire_style, tmp_path):
    sim = make_simulator(tokens=["first-token", "second-token"], **SCENARIO, wire=wire_style)
    collections = [{"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}]}]
    ctx = make_context(tmp_path, sim.base_url, collections)  # its token is refused
    path = ctx.config.source

    def reload(token: str) -> None:
        path.write_text(re.sub(r"bearer_token: .*", f"bearer_token: {token}", path.read_text()))
        supervisor.apply_config(load_config(path))

    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        wait_for(lambda: supervisor.status()["climate"]["state"] == "failed", what="the refused token")
        assert "401" in supervisor.status()["climate"]["error"]
        reload("first-token")
        _wait_messages_on(sim, _wait_open_connections(sim, 1)[-1])
        assert {rule.tag for rule in sim.hub.rules_snapshot()[1]} == {"climate:cc"}
        reload("second-token")
        _wait_messages_on(sim, _wait_open_connections(sim, 2)[-1])
        assert sim.hub.connections()[0]["closed_at"] is not None
        count = supervisor.status()["climate"]["messages"]
        wait_for(lambda: supervisor.status()["climate"]["messages"] > count, what="capture on the new connection")
        assert supervisor.status()["climate"]["state"] == "connected"
    finally:
        supervisor.stop()
    assert [e["event"] for e in ctx.store.stream_events("climate")].count("connect") == 2
    assert sim.counters()["unauthorized"] == 1
    assert ctx.store.runs(collection="climate")[-1]["result"] == "ok"
