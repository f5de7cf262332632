"""Capture paths, names and bagging periods (DESIGN.md section 4, the file naming contract)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sfm_archiver.storage import layout

UTC = timezone.utc
MOMENT = datetime(2026, 11, 27, 13, 5, 9, 123456, tzinfo=UTC)


def test_hour_folder_is_by_utc_capture_time(tmp_path):
    assert layout.hour_folder(tmp_path, "news", MOMENT) == tmp_path / "news" / "2026" / "11" / "27" / "13"
    tokyo = MOMENT.astimezone(timezone(timedelta(hours=9)))
    assert tokyo.hour == 22
    assert layout.hour_folder(tmp_path, "news", tokyo) == tmp_path / "news/2026/11/27/13"


def test_capture_name_contract():
    assert layout.capture_name("news", "timeline", MOMENT) == "news-timeline-20261127T130509Z.jsonl.gz"
    assert layout.capture_name("news", "stream", MOMENT, n=2) == "news-stream-20261127T130509Z-2.jsonl.gz"
    assert layout.capture_name("news", "urls", MOMENT, ext="warc.gz") == "news-urls-20261127T130509Z.warc.gz"


@pytest.mark.parametrize("kind", layout.KINDS)
@pytest.mark.parametrize("n", [0, 1, 12])
def test_capture_names_parse_back(kind, n):
    name = layout.capture_name("gw-official_2", kind, MOMENT, n)
    parts = layout.parse_capture_name(name)
    assert parts["collection"] == "gw-official_2"
    assert parts["kind"] == kind
    assert parts["n"] == n
    assert parts["ext"] == "jsonl.gz"
    assert parts["opened_at"] == MOMENT.replace(microsecond=0)


@pytest.mark.parametrize(
    "name",
    [
        "news-timeline-20261127T130509Z.jsonl",
        "news-tweets-20261127T130509Z.jsonl.gz",
        "News-timeline-20261127T130509Z.jsonl.gz",
        "news-timeline-2026-11-27T13-05-09Z.jsonl.gz",
        "news-timeline-20261127T130509Z-x.jsonl.gz",
        ".news-timeline-20261127T130509Z.jsonl.gz",
    ],
)
def test_foreign_names_are_not_captures(name):
    assert layout.parse_capture_name(name) is None


def test_unused_capture_path_adds_a_suffix_and_never_reuses(tmp_path):
    first = layout.unused_capture_path(tmp_path, "news", "timeline", MOMENT)
    assert first.name == "news-timeline-20261127T130509Z.jsonl.gz"
    first.touch()
    second = layout.unused_capture_path(tmp_path, "news", "timeline", MOMENT)
    assert second.name == "news-timeline-20261127T130509Z-1.jsonl.gz"
    second.touch()
    assert layout.unused_capture_path(tmp_path, "news", "timeline", MOMENT).name.endswith("-2.jsonl.gz")
    assert layout.unused_capture_path(tmp_path, "news", "users", MOMENT).name == "news-users-20261127T130509Z.jsonl.gz"


@pytest.mark.parametrize("name", ["", "News", "../x", "a/b", "-lead", "_lead", "x" * 65, "sp ace", "dot.ted"])
def test_collection_names_that_could_escape_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="invalid collection name"):
        layout.check_collection_name(name)
    with pytest.raises(ValueError):
        layout.hour_folder(tmp_path, name, MOMENT)


def test_valid_collection_names():
    for name in ("a", "0", "gw-official", "x_2", "a" * 64):
        assert layout.check_collection_name(name) == name


@pytest.mark.parametrize(
    ("unit", "start", "end", "label", "folder"),
    [
        ("hour", datetime(2026, 11, 27, 13, tzinfo=UTC), datetime(2026, 11, 27, 14, tzinfo=UTC), "2026-11-27T13", "2026/11/27/13"),
        ("day", datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC), "2026-11-27", "2026/11/27"),
        ("month", datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), "2026-11", "2026/11"),
    ],
)
def test_periods(unit, start, end, label, folder):
    period = layout.period_of(MOMENT, unit)
    assert (period.start, period.end, period.label, period.relative_folder) == (start, end, label, Path(folder))
    assert period.contains(MOMENT) and period.contains(start) and not period.contains(end)


def test_period_boundaries_roll_over():
    december = layout.period_of(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC), "month")
    assert december.end == datetime(2027, 1, 1, tzinfo=UTC)
    last_day = layout.period_of(datetime(2028, 2, 29, 23, 30, tzinfo=UTC), "day")
    assert last_day.end == datetime(2028, 3, 1, tzinfo=UTC)
    local_evening = datetime(2026, 11, 27, 20, tzinfo=timezone(timedelta(hours=-5)))
    assert layout.period_of(local_evening, "day").label == "2026-11-28"
    with pytest.raises(ValueError, match="unknown period"):
        layout.period_of(MOMENT, "week")


def test_periods_order_by_start():
    hours = [layout.period_of(MOMENT + timedelta(hours=h), "hour") for h in (3, 1, 2)]
    assert [p.label for p in sorted(hours)] == ["2026-11-27T14", "2026-11-27T15", "2026-11-27T16"]


def test_hour_of_folder(tmp_path):
    root = tmp_path / "news"
    assert layout.hour_of_folder(root, root / "2026/11/27/13") == datetime(2026, 11, 27, 13, tzinfo=UTC)
    assert layout.hour_of_folder(root, root / "2026/11/27") is None
    assert layout.hour_of_folder(root, root / "2026/13/27/13") is None
    assert layout.hour_of_folder(root, root / "2026/11/aa/13") is None
    assert layout.hour_of_folder(root, tmp_path / "other/2026/11/27/13") is None


def test_hour_folders_lists_well_formed_folders_oldest_first_without_symlinks(tmp_path):
    root = tmp_path / "news"
    for relative in ("2026/11/27/13", "2026/11/27/02", "2025/12/31/23", "2026/11/27/bad", "2026/11/27/24", "notes"):
        (root / relative).mkdir(parents=True)
    outside = tmp_path / "outside" / "05"
    outside.mkdir(parents=True)
    (root / "2026/11/27/05").symlink_to(outside)
    (root / "2026/11/28").mkdir()
    (root / "2026/11/28/07").write_text("a file, not a folder")
    found = [p.relative_to(root).as_posix() for p in layout.hour_folders(root)]
    assert found == ["2025/12/31/23", "2026/11/27/02", "2026/11/27/13"]
    assert layout.hour_folders(tmp_path / "missing") == []
