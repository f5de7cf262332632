"""`organize` on a tree of legacy SFM stream files (real files, real gzip, real subprocess)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sfm_archiver.jobs.organize import is_safe_prefix, organize, parse_legacy_name

OLD = time.time() - 3 * 3600


def _write(path: Path, payload: bytes, mtime: float = OLD, members: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = b"".join(gzip.compress(payload + str(i).encode()) for i in range(members))
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))
    return path


@pytest.fixture()
def legacy_tree(tmp_path: Path) -> dict[str, Path]:
    src = tmp_path / "src"
    files = {
        "dashes": _write(src / "climate-2016-03-04T05-06-07Z.gz", b'{"id":"1"}\n', members=3),
        "colons": _write(src / "sub" / "climate-2015-12-31T23:59:59Z.gz", b'{"id":"2"}\n'),
        "other_prefix": _write(src / "c3f0a1b2-2017-01-02T03-04-05Z.json.gz", b'{"id":"3"}\n'),
        "recent": _write(src / "climate-2016-03-04T05-16-07Z.gz", b'{"id":"4"}\n', mtime=time.time()),
        "readme": src / "README.txt",
        "bad_prefix": _write(src / "..-2016-03-04T05-06-07Z.gz", b"{}\n"),
    }
    files["readme"].write_text("notes")
    truncated = gzip.compress(b'{"id":"5"}\n' * 1000)
    files["truncated"] = src / "climate-2016-03-04T06-00-00Z.gz"
    files["truncated"].write_bytes(truncated[: len(truncated) // 2])
    os.utime(files["truncated"], (OLD, OLD))
    files["garbage"] = _write(src / "climate-2016-03-04T07-00-00Z.gz", b"x")
    files["garbage"].write_bytes(b"this is not gzip at all")
    os.utime(files["garbage"], (OLD, OLD))
    (src / "link-2016-03-04T05-06-07Z.gz").symlink_to(files["dashes"])
    return files


def test_names_with_dashes_and_colons_are_recognised():
    dashed = parse_legacy_name("gw-official-2016-03-04T05-06-07Z.gz")
    assert dashed.prefix == "gw-official" and dashed.hour.hour == 5
    assert str(dashed.relative_folder) == "gw-official/2016/03/04/05"
    colons = parse_legacy_name("abc-2015-12-31T23:59:59Z.gz")
    assert colons.prefix == "abc" and str(colons.relative_folder) == "abc/2015/12/31/23"
    assert parse_legacy_name("abc-2015-12-31T23:59-59Z.gz") is None  # mixed separators
    assert parse_legacy_name("abc-2015-13-31T23-59-59Z.gz") is None  # no 13th month
    assert parse_legacy_name("abc-2015-12-31T23-59-59Z.txt") is None
    assert not is_safe_prefix("..") and not is_safe_prefix("a/b") and not is_safe_prefix(".hidden")
    assert not is_safe_prefix("a..b") and is_safe_prefix("gw_official.v2")


def test_organize_moves_verifies_and_reports(legacy_tree, tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    report = organize(src, dest)

    moved = {Path(s).name: t for s, t in report.moved}
    assert moved["climate-2016-03-04T05-06-07Z.gz"] == dest / "climate/2016/03/04/05/climate-2016-03-04T05-06-07Z.gz"
    assert moved["climate-2015-12-31T23:59:59Z.gz"] == dest / "climate/2015/12/31/23/climate-2015-12-31T23:59:59Z.gz"
    assert moved["c3f0a1b2-2017-01-02T03-04-05Z.json.gz"].parent == dest / "c3f0a1b2/2017/01/02/03"
    for target in moved.values():
        gzip.decompress(target.read_bytes())
    assert not legacy_tree["dashes"].exists() and not legacy_tree["colons"].exists()

    assert report.recent == [legacy_tree["recent"]] and legacy_tree["recent"].exists()
    corrupt = dict(report.corrupt)
    assert "truncated" in corrupt[legacy_tree["truncated"]]
    assert "not a valid gzip" in corrupt[legacy_tree["garbage"]]
    assert legacy_tree["truncated"].exists() and legacy_tree["garbage"].exists()
    unrecognised = {p.name for p in report.unrecognised}
    assert unrecognised == {"README.txt", "..-2016-03-04T05-06-07Z.gz", "link-2016-03-04T05-06-07Z.gz"}
    assert not report.ok


def test_rerun_deduplicates_identical_and_keeps_different(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    name = "climate-2016-03-04T05-06-07Z.gz"
    first = _write(src / name, b'{"id":"1"}\n')
    copy_bytes = first.read_bytes()
    report = organize(src, dest)
    assert len(report.moved) == 1
    # the same file again (a second copy of the SFM folder): removed from the source as a duplicate
    again = src / "again" / name
    again.parent.mkdir()
    again.write_bytes(copy_bytes)
    os.utime(again, (OLD, OLD))
    # a different file under the same name: kept with a suffix
    _write(src / "other" / name, b'{"id":"different"}\n')
    report = organize(src, dest)
    assert [t.name for _, t in report.duplicates] == [name]
    assert [t.name for _, t in report.renamed] == ["climate-2016-03-04T05-06-07Z-1.gz"]
    assert not (src / "again" / name).exists() and not (src / "other" / name).exists()
    assert report.ok
    # an interrupted move (linked into place, source not yet removed) resumes as a duplicate
    _write(src / name, b'{"id":"different"}\n')
    report = organize(src, dest)
    assert [t.name for _, t in report.duplicates] == ["climate-2016-03-04T05-06-07Z-1.gz"]


def test_include_recent_and_symlinked_destination_folder(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    recent = _write(src / "climate-2016-03-04T05-06-07Z.gz", b"{}\n", mtime=time.time())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dest.mkdir()
    (dest / "evil").symlink_to(elsewhere)
    evil = _write(src / "evil-2016-03-04T05-06-07Z.gz", b"{}\n")
    report = organize(src, dest, include_recent=True)
    assert [s for s, _ in report.moved] == [recent]
    assert [p for p, _ in report.errors] == [evil] and evil.exists()
    assert not any(elsewhere.iterdir())


def test_cli_organize_exit_codes(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    _write(src / "climate-2016-03-04T05-06-07Z.gz", b"{}\n")
    command = [sys.executable, "-m", "sfm_archiver", "organize", str(src), str(dest)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "moved 1" in done.stdout
    (src / "climate-2016-03-04T06-06-07Z.gz").write_bytes(b"\x1f\x8b broken")
    os.utime(src / "climate-2016-03-04T06-06-07Z.gz", (OLD, OLD))
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "climate-2016-03-04T06-06-07Z.gz" in done.stderr
