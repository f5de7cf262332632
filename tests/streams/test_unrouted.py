"""Nothing read from a stream is dropped: messages of no collection being captured go to `_unrouted`.

The one-shot `stream <collection>` installs the rules of every filter collection (the server
holds one rule set) but captures only the named one: the messages matched only by the others
are kept in `<archive>/_unrouted/`, counted in the run and in the state store, and bagged like
a collection. Each stream line names its connection; the request URL is recorded once.
"""

from __future__ import annotations

import gzip
import json
import time
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

from sfm_archiver.storage.layout import parse_capture_name
from sfm_archiver.streams.gaps import connection_url
from sfm_archiver.streams.supervisor import StreamSupervisor
from tests.daemon.helpers import cli
from tests.streams.conftest import make_context, wait_for
from tests.streams.test_session import FAST, SCENARIO

COLLECTIONS = [
    {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}, {"value": "#cop30", "tag": "cop"}]},
    {"name": "weather", "type": "filter_stream", "rules": [{"value": "storm", "tag": "st"}, {"value": "#cop30", "tag": "cop"}]},
]


def _lines(archive, name: str) -> list[dict]:
    found = []
    for path in sorted((archive / name).rglob("*.jsonl.gz")):
        assert parse_capture_name(path.name)["collection"] == name
        found += [json.loads(raw) for raw in gzip.decompress(path.read_bytes()).splitlines()]
    return found


def _safe_ids(archive, name: str) -> set[str] | None:
    try:
        return {line["data"]["id"] for line in _lines(archive, name) if "data" in line}
    except (OSError, EOFError, ValueError):
        return None


def _collections(message: dict) -> set[str]:
    """The collections a message matched, read independently from its tags."""
    return {piece.split(":")[0] for rule in message["matching_rules"] for piece in rule["tag"].split("|")}


def test_one_shot_stream_keeps_the_other_collections_messages_in_unrouted(make_simulator, wire_style, tmp_path):
    sim = make_simulator(**SCENARIO, wire=wire_style)
    ctx = make_context(tmp_path, sim.base_url, COLLECTIONS)
    archive = ctx.config.paths.archive
    supervisor = StreamSupervisor(ctx, collections=["climate"], backoff=FAST)  # what `stream climate` runs
    supervisor.start()
    run_id = supervisor.run_id("climate")
    try:
        wait_for(lambda: len(list(sim.stream_messages())) > 200, what="messages")
        snapshot = time.time()
        due = {m["tweet_id"] for m in sim.stream_messages() if m["sent_at"] < snapshot}

        def everything_kept() -> bool:
            climate, unrouted = _safe_ids(archive, "climate"), _safe_ids(archive, "_unrouted")
            return climate is not None and unrouted is not None and climate | unrouted >= due

        wait_for(everything_kept, what="every message sent kept in climate or _unrouted")
        assert supervisor.status()["climate"]["unrouted"] > 0
    finally:
        supervisor.stop()

    climate, unrouted = _lines(archive, "climate"), _lines(archive, "_unrouted")
    assert not (archive / "weather").exists(), "weather is not being captured by this command"
    for line in climate:
        assert "climate" in _collections(line)
    for line in unrouted:
        assert "weather" in _collections(line) and line["__sfm"]["collection"] == "_unrouted"
    for name, lines in (("climate", climate), ("_unrouted", unrouted)):
        counts = Counter(line["data"]["id"] for line in lines)
        assert max(counts.values()) == 1, f"{name}: a message kept twice"
    shared = [line for line in climate if _collections(line) == {"climate", "weather"}]
    assert shared and {line["data"]["id"] for line in shared} <= {line["data"]["id"] for line in unrouted}, \
        "a message both collections matched is in climate and, for weather, in _unrouted"

    run = ctx.store.run(run_id)
    assert run["counts"]["unrouted"] == len(unrouted) > 0
    assert any("_unrouted" in warning for warning in run["warnings"])
    recorded = ctx.store.stream_totals("_unrouted", datetime(1970, 1, 1, tzinfo=timezone.utc))
    assert recorded["messages"] == len(unrouted)

    source = str(ctx.config.source)
    shown = json.loads(cli("status", "--json", "--config", source).stdout)
    assert shown["unrouted"]["messages_total"] == shown["unrouted"]["messages_last_24h"] == len(unrouted)
    assert any("_unrouted" in problem["message"] for problem in shown["problems"])
    text = cli("status", "--config", source).stdout
    assert f"unrouted  {len(unrouted)} stream messages kept in _unrouted/" in text


def test_stream_lines_name_their_connection_and_the_url_is_recorded_once(make_simulator, wire_style, tmp_path):
    sim = make_simulator(**SCENARIO, wire=wire_style)
    ctx = make_context(tmp_path, sim.base_url, [{**COLLECTIONS[0], "warc": True}])
    archive = ctx.config.paths.archive
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        wait_for(lambda: len(_safe_ids(archive, "climate") or ()) > 20, what="messages on disk")
        sim.apply_event({"action": "stream_drop", "kind": "search"})
        wait_for(lambda: len({m["connection_id"] for m in sim.stream_messages()}) >= 2, what="a second connection")
        second = max(m["sent_at"] for m in sim.stream_messages()) + 0.001
        wait_for(lambda: any(m["sent_at"] > second for m in sim.stream_messages()), what="more messages")
        due = {m["tweet_id"] for m in sim.stream_messages() if m["sent_at"] <= second}
        wait_for(lambda: (_safe_ids(archive, "climate") or set()) >= due, what="both connections on disk")
    finally:
        supervisor.stop()
    lines = _lines(archive, "climate")
    assert all("url" not in line["__sfm"] for line in lines)
    connections = list(dict.fromkeys(line["__sfm"]["connection"] for line in lines))
    assert len(connections) >= 2
    for connection in connections:
        url = urlsplit(connection_url(ctx.store, connection))
        assert url.path == "/2/tweets/search/stream" and "tweet.fields" in parse_qs(url.query)
    assert connection_url(ctx.store, "no-such-connection") is None
    connects = [e["reason"] for e in ctx.store.stream_events("climate") if e["event"] == "connect"]
    assert len(connects) == len(sim.hub.connections()), "one connect event (with the URL) per connection"
    assert all(sum(f" {connection}: " in reason for reason in connects) == 1 for connection in connections)

    # ... and in the collection's WARC: one request (and its headers-only response) per connection
    from warcio.archiveiterator import ArchiveIterator

    requests_seen = []
    for path in sorted(archive.rglob("climate-stream-*.warc.gz")):
        with open(path, "rb") as handle:
            for record in ArchiveIterator(handle):
                if record.rec_type == "request":
                    requests_seen.append(record.rec_headers.get_header("WARC-Target-URI"))
                    assert record.http_headers.get_header("Authorization") is None
    assert len(requests_seen) == len(connects)
    assert all("tweet.fields=" in uri and "/2/tweets/search/stream" in uri for uri in requests_seen)


def test_unrouted_captures_are_bagged_verified_and_checked_like_a_collection(tmp_path):
    from sfm_archiver.bagging.job import bag_completed_periods
    from sfm_archiver.bagging.verify import verify_paths
    from sfm_archiver.streams.sink import CollectionSink, capture_parts
    from tests.invariants import check_storage

    ctx = make_context(tmp_path, "http://127.0.0.1:9", COLLECTIONS)
    moment = datetime(2026, 11, 27, 10, 15, tzinfo=timezone.utc)
    sink = CollectionSink(ctx.config.paths.archive, "_unrouted", "stream", stream="stream", store=ctx.store,
                          rotation=ctx.config.storage.rotation, compresslevel=6, flush_seconds=0.1, buffer_messages=10,
                          disk_ok=lambda: True, clock=lambda: moment)
    frame = b'{"data":{"id":"7"},"matching_rules":[{"id":"1","tag":"gone:x"}]}\r'
    sink.accept(list(capture_parts(frame, sink.template.suffix(moment, "filter_stream-x-1-1"))), 1, moment)
    sink.close()
    results = bag_completed_periods(ctx, ["_unrouted"])
    bagged = [result for result in results if result.get("status") == "bagged"]
    assert [result["name"] for result in bagged] == ["_unrouted_2026-11-27"], results
    bag = ctx.config.paths.outbox / "_unrouted_2026-11-27"
    assert verify_paths([bag]) == []
    report = check_storage(ctx.config.paths.archive, ctx.config.paths.outbox)
    assert report.ok, report.summary()
    assert report.counts["capture_files_bagged"] == 1
