"""The resume protocol (`streams.resume`): the cursor follows durable batches only, and a restart
finds what a dead process made durable past its stored cursor."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sfm_archiver.state import StateStore
from sfm_archiver.storage.writer import seal_abandoned_files
from sfm_archiver.streams import resume
from sfm_archiver.streams.sink import CollectionSink, capture_parts

DID = "did:plc:abcdefghijklmnopqrstuvwx"
BASE_US = 1_800_000_000_000_000


def event(number: int) -> bytes:
    return json.dumps({"did": DID, "time_us": BASE_US + number * 1000, "kind": "commit",
                       "commit": {"rev": f"r{number}", "operation": "create", "collection": "app.bsky.feed.post",
                                  "rkey": f"k{number}", "record": {"text": f"post {number}"}}}).encode()


def make_sink(tmp_path, store: StateStore, durable: list[int]) -> CollectionSink:
    return CollectionSink(tmp_path / "archive", "live", "jetstream", stream="jetstream", store=store,
                          rotation=timedelta(hours=1), compresslevel=1, flush_seconds=3600, buffer_messages=1000,
                          disk_ok=lambda: True, clock=lambda: datetime.now(timezone.utc),
                          meta={"platform": "bluesky"}, on_durable=durable.append)


def accept(sink: CollectionSink, numbers) -> None:
    now = datetime.now(timezone.utc)
    for number in numbers:
        raw = event(number)
        sink.accept(list(capture_parts(raw, sink.template.suffix(now, "c1"))), 1, now, marker=BASE_US + number * 1000)


def test_the_marker_is_reported_only_once_its_batch_is_on_disk(tmp_path):
    store, durable = StateStore(tmp_path / "state"), []
    sink = make_sink(tmp_path, store, durable)
    accept(sink, range(3))
    assert durable == []  # buffered, not yet written
    sink.tick(force=True)
    assert durable == [BASE_US + 2000]
    accept(sink, [3])
    sink.close()
    assert durable == [BASE_US + 2000, BASE_US + 3000]


def test_a_batch_made_durable_before_the_cursor_was_stored_is_found_on_restart(tmp_path):
    store, durable = StateStore(tmp_path / "state"), []
    sink = make_sink(tmp_path, store, durable)
    accept(sink, range(5))
    sink.tick(force=True)
    store.set_stream_cursor("live", durable[-1])
    accept(sink, range(5, 9))
    sink.tick(force=True)  # durable, but the process "dies" before the cursor write
    accept(sink, range(9, 12))  # and this batch never reached the disk
    del sink  # no close: the file is left open, like after kill -9
    seal_abandoned_files(store, "live")
    stored = store.stream_cursor("live")
    assert stored["cursor"] == BASE_US + 4000
    position = resume.recover(tmp_path / "archive", "live", stored, overlap_us=2500, now=datetime.now(timezone.utc))
    assert position.cursor == BASE_US + 8000 and position.found_on_disk == 4
    assert set(position.seen) == {(DID, "app.bsky.feed.post", f"k{n}", f"r{n}") for n in range(3, 9)}  # twice the overlap
    assert resume.resume_cursor(position.cursor, 2500) == BASE_US + 5500  # events 6.. are asked for again


def test_without_a_stored_cursor_the_newest_event_on_disk_is_the_cursor(tmp_path):
    store, durable = StateStore(tmp_path / "state"), []
    sink = make_sink(tmp_path, store, durable)
    accept(sink, range(3))
    sink.close()
    position = resume.recover(tmp_path / "archive", "live", None, overlap_us=10**9, now=datetime.now(timezone.utc))
    assert position.cursor == BASE_US + 2000 and len(position.seen) == 3
    assert resume.recover(tmp_path / "nothing", "live", None, 1000, datetime.now(timezone.utc)).cursor is None


def test_the_stored_cursor_never_moves_back(tmp_path):
    store = StateStore(tmp_path / "state")
    store.set_stream_cursor("live", 500)
    store.set_stream_cursor("live", 400)
    assert store.stream_cursor("live")["cursor"] == 500
