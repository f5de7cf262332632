"""Reading captures back: files of a period, and damaged input reported with file and line."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone

from sfm_archiver.storage.reader import capture_files, read_records
from sfm_archiver.storage.writer import compress_member

UTC = timezone.utc


def put(root, relative: str, data: bytes = b'{"a":1}\n'):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data))
    return path


def test_capture_files_by_kind_and_hour_range(tmp_path):
    early = put(tmp_path, "news/2026/11/27/12/news-timeline-20261127T120000Z.jsonl.gz")
    stream = put(tmp_path, "news/2026/11/27/13/news-stream-20261127T130000Z.jsonl.gz")
    late = put(tmp_path, "news/2026/11/27/13/news-timeline-20261127T135900Z-1.jsonl.gz")
    put(tmp_path, "news/2026/11/27/13/notes.txt")
    put(tmp_path, "news/2026/11/27/13/news-timeline-20261127T130000Z.warc.gz")
    put(tmp_path, "other/2026/11/27/13/other-timeline-20261127T130000Z.jsonl.gz")
    assert capture_files(tmp_path, "news") == [early, stream, late]
    assert capture_files(tmp_path, "news", kinds=["timeline"]) == [early, late]
    assert capture_files(tmp_path, "news", start=datetime(2026, 11, 27, 13, 30, tzinfo=UTC)) == [stream, late]
    assert capture_files(tmp_path, "news", end=datetime(2026, 11, 27, 13, tzinfo=UTC)) == [early]
    assert capture_files(tmp_path, "missing") == []


def test_damaged_input_is_reported_and_skipped(tmp_path):
    good = compress_member(b'{"n":1}\n[1]\n\nnot json\n{"n":2}\n', 6)
    path = tmp_path / "f.jsonl.gz"
    path.write_bytes(good + compress_member(b'{"n":3}\n', 6)[:12])
    problems = []
    records = list(read_records(path, problems.append))
    assert records == [(1, {"n": 1}), (5, {"n": 2})]
    assert [str(p).split(": ", 1)[0] for p in problems] == [f"{path}:2", f"{path}:4", f"{path}:6"]
    assert "not a JSON object" in problems[0].message
    assert "not valid JSON" in problems[1].message
    assert "cannot decompress" in problems[2].message
