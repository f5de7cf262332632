"""The per-collection sink: exact capture lines, clock rotation of an idle stream, disk guard."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sfm_archiver.state import StateStore
from sfm_archiver.storage import records
from sfm_archiver.streams.sink import CollectionSink, MetaTemplate, capture_parts

T0 = datetime(2026, 11, 27, 10, 59, 58, 500000, tzinfo=timezone.utc)
CONNECTION = "filter_stream-20261127T130000.000000Z-1-1"


class FakeClock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _message(tweet_id: int) -> bytes:
    return b'{"data":{"id":"%d","text":"caf\xc3\xa9 \\u00e9"},"matching_rules":[{"id":"1","tag":"c:t"}]}\r' % tweet_id


def _sink(tmp_path: Path, clock: FakeClock, disk=lambda: True, **kwargs) -> CollectionSink:
    options = dict(rotation=timedelta(hours=1), compresslevel=6, flush_seconds=1.0, buffer_messages=5)
    options.update(kwargs)
    return CollectionSink(
        tmp_path / "archive", "climate", "filter_stream", stream="filter_stream",
        store=StateStore(tmp_path / "state"), disk_ok=disk, clock=clock, **options,
    )


def _feed(sink: CollectionSink, ids: range, at: datetime) -> int:
    parts = []
    for tweet_id in ids:
        parts.extend(capture_parts(_message(tweet_id), sink.template.suffix(at, CONNECTION)))
    return sink.accept(parts, len(ids), at)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


@pytest.mark.parametrize("raw", [
    b'{"data":{"id":"1"}}', b'{"data":{"id":"1"}}\r', b' {"data":{"id":"1"} }\r', b'{}', b'{ }\r',
    b'\t{ "data" : { "id" : "1" } ,"matching_rules" : [ ] }  \r', b'{"a":"\\u00e9\\/"}',
])
def test_capture_line_keeps_the_frame_bytes_exactly_with_only_sfm_spliced_in(raw):
    template = MetaTemplate("climate", "filter_stream")
    moment = datetime(2026, 11, 27, 13, 0, 0, 123456, tzinfo=timezone.utc)
    line = b"".join(capture_parts(raw, template.suffix(moment, CONNECTION)))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    record = json.loads(line)
    meta = record.pop("__sfm")
    assert record == json.loads(raw)
    assert meta == records.sfm_metadata(captured_at=moment, collection="climate", job="filter_stream",
                                        connection=CONNECTION)
    assert meta["captured_at"] == "2026-11-27T13:00:00.123Z" and "url" not in meta
    spliced = json.dumps({"__sfm": meta}, separators=(",", ":")).encode()[1:-1]
    frame = raw[:-1] if raw.endswith(b"\r") else raw
    assert line[:-1].replace(b"," + spliced, b"").replace(spliced, b"") == frame


@pytest.mark.parametrize("raw", [b"<html>busy</html>", b"[1]", b"", b"  \r", b'{"a":1} x'])
def test_a_frame_that_is_not_an_object_gives_no_capture_line(raw):
    assert capture_parts(raw, MetaTemplate("c", "sample_stream").suffix(T0, CONNECTION)) == ()


def test_idle_stream_file_is_closed_by_the_clock_and_late_batches_keep_their_hour(tmp_path):
    clock = FakeClock(T0)
    sink = _sink(tmp_path, clock)
    _feed(sink, range(1, 4), clock.now)
    sink.tick(clock.advance(0.5))  # 10:59:59.0: written, the file stays open
    first = sink.writer.path
    assert first is not None and first.parent.parts[-4:] == ("2026", "11", "27", "10")
    assert [row["path"] for row in sink.store.open_files("climate")] == [str(first)]
    _feed(sink, range(4, 6), clock.advance(0.9))  # captured at 10:59:59.9 ...
    sink.tick(clock.advance(0.4))  # ... written at 11:00:00.3, into the 10 o'clock file
    assert sink.writer.path is None, "the hour ended: the file must be closed without any new message"
    assert sink.store.open_files("climate") == []
    assert [line["data"]["id"] for line in _lines(first)] == ["1", "2", "3", "4", "5"]
    for _ in range(5):  # nothing arrives: nothing is opened
        sink.tick(clock.advance(1.0))
    assert sink.writer.path is None
    _feed(sink, range(6, 7), clock.now)
    sink.tick(clock.advance(1.0))
    assert sink.writer.path.parent.parts[-1] == "11"
    sink.close()
    assert _lines(tmp_path / "archive/climate/2026/11/27/11" / _only(tmp_path, "11"))[0]["data"]["id"] == "6"


def _only(tmp_path: Path, hour: str) -> str:
    names = [p.name for p in (tmp_path / "archive/climate/2026/11/27" / hour).iterdir()]
    assert len(names) == 1
    return names[0]


def test_flush_waits_for_the_interval_unless_the_buffer_is_large(tmp_path):
    clock = FakeClock(T0.replace(minute=10))
    sink = _sink(tmp_path, clock, large_buffer_bytes=10_000)
    _feed(sink, range(1, 3), clock.now)
    sink.tick(clock.advance(0.1))  # the first tick writes at once
    assert sink.writer.lines_written == 2  # both messages
    _feed(sink, range(3, 5), clock.now)
    sink.tick(clock.advance(0.1))
    assert sink.pending_messages == 2, "not yet due"
    sink.tick(clock.advance(1.0))
    assert sink.pending_messages == 0
    _feed(sink, range(10, 200), clock.now)
    assert sink.wake.is_set(), "a large buffer wakes the writer"
    sink.tick(clock.advance(0.01))
    assert sink.pending_messages == 0
    sink.close()


def test_low_disk_holds_then_drops_with_an_exact_count(tmp_path):
    clock = FakeClock(T0.replace(minute=10))
    disk = {"ok": True}
    sink = _sink(tmp_path, clock, disk=lambda: disk["ok"], buffer_messages=5)
    disk["ok"] = False
    assert _feed(sink, range(1, 4), clock.now) == 0
    sink.tick(clock.advance(1.0))  # finds the disk low: pauses
    assert sink.paused and sink.pending_messages == 3
    assert _feed(sink, range(4, 8), clock.now) == 2  # room for two more
    assert _feed(sink, range(8, 9), clock.now) == 1
    sink.tick(clock.advance(1.0))
    assert sink.writer.path is None, "nothing written while the disk is low"
    disk["ok"] = True
    sink.tick(clock.advance(1.0))
    path = sink.writer.path
    assert [line["data"]["id"] for line in _lines(path)] == ["1", "2", "3", "4", "5"]
    assert _feed(sink, range(9, 30), clock.now) == 0, "writing again: no limit"
    sink.close()
    totals = sink.store.stream_totals("climate", T0 - timedelta(hours=1))
    assert (totals["messages"], totals["dropped"]) == (5 + 21, 3) == (sink.messages_total, sink.dropped_total)


def test_close_with_the_disk_still_low_counts_what_is_lost(tmp_path):
    clock = FakeClock(T0.replace(minute=10))
    sink = _sink(tmp_path, clock, disk=lambda: False)
    _feed(sink, range(1, 4), clock.now)
    sink.close()
    assert (sink.dropped_total, sink.messages_total) == (3, 0)
    totals = sink.store.stream_totals("climate", T0 - timedelta(hours=1))
    assert (totals["messages"], totals["dropped"]) == (0, 3)


def test_a_writer_behind_holds_the_reader_instead_of_growing_memory(tmp_path):
    import threading

    clock = FakeClock(T0.replace(minute=10))
    sink = _sink(tmp_path, clock, large_buffer_bytes=1 << 30, max_pending_bytes=500)
    _feed(sink, range(1, 3), clock.now)  # over the limit now
    fed = threading.Event()
    reader = threading.Thread(target=lambda: (_feed(sink, range(3, 4), clock.now), fed.set()))
    reader.start()
    assert not fed.wait(0.3), "the reader must wait while the buffer is full"
    assert sink.wake.is_set()
    sink.tick(clock.advance(1.0))  # the writer catches up: the reader goes on
    assert fed.wait(60)
    reader.join()
    sink.close()
    assert sink.messages_total == 3 and sink.dropped_total == 0


def test_low_disk_cuts_a_whole_block_at_the_line_that_fills_the_buffer(tmp_path):
    clock = FakeClock(T0.replace(minute=10))
    disk = {"ok": False}
    sink = _sink(tmp_path, clock, disk=lambda: disk["ok"], buffer_messages=3)
    _feed(sink, range(1, 2), clock.now)
    sink.tick(clock.advance(1.0))
    assert sink.paused
    block = b"".join(b'{"data":{"id":"%d"}' % i + sink.template.suffix(clock.now, CONNECTION) for i in range(2, 7))
    assert sink.accept([block], 5, clock.now) == 3
    disk["ok"] = True
    sink.close()
    assert [line["data"]["id"] for line in _lines(next((tmp_path / "archive").rglob("*.gz")))] == ["1", "2", "3"]


def test_large_batches_are_gzipped_in_parallel_members_in_order(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from sfm_archiver.streams.sink import join_in_pieces

    parts = [b"block\n" * 50] * 4 + [memoryview(b'{"a":1'), b"}\n"] * 100
    pieces = join_in_pieces(parts, sum(len(p) for p in parts), 3)
    assert b"".join(pieces) == b"".join(bytes(p) for p in parts)
    assert len(pieces) == 3 and all(p.endswith(b"\n") for p in pieces)
    clock = FakeClock(T0.replace(minute=10))
    with ThreadPoolExecutor(2) as pool:
        sink = _sink(tmp_path, clock, compressors=pool, compress_workers=3, large_buffer_bytes=1 << 30)
        _feed(sink, range(1, 6001), clock.now)  # about 2.5 MB
        sink.tick(clock.advance(1.0))
        sink.close()
    path = next((tmp_path / "archive").rglob("*.gz"))
    assert path.read_bytes().count(b"\x1f\x8b\x08") >= 3, "several members"
    assert [int(line["data"]["id"]) for line in _lines(path)] == list(range(1, 6001))
