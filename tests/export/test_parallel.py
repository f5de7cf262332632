"""An export made by worker processes is the export one process makes: the same files, the same
README, the same problems reported, the same exit code (differential: `--jobs 2` vs `--jobs 1`)."""

from __future__ import annotations

import copy
import re

import openpyxl
import pytest

from .helpers import add_capture, raw_captures, raw_posts, run_cli
from .test_export import harvested  # noqa: F401 (the fixture)

MADE_LINE = re.compile(r"^Made \S+ by sfm-archiver .*$", re.M)


def _archive_of_several_files(archive) -> None:
    """More capture files beside the harvest's: re-captures of its pages (dedupe has work), a page
    of new posts, and a damaged file whose good lines must still be exported."""
    pages = raw_captures(archive, "tl")
    again = copy.deepcopy(pages[:2])
    for page in again:
        page["__sfm"]["captured_at"] = "2099-01-01T00:00:00.000Z"  # the later capture wins under latest
        page["data"][0]["public_metrics"] = {"like_count": 123456}
    add_capture(archive, "tl", "timeline", again, stamp="20261127T130000Z")
    fresh = copy.deepcopy(pages[0])
    for number, post in enumerate(fresh["data"]):
        post["id"] = str(1_900_000_000_000_000_000 + number)
    add_capture(archive, "tl", "timeline", [fresh, b'{"data": [{"id": "7", "te\n', fresh], stamp="20261127T140000Z")


def _files(folder) -> dict[str, object]:
    found = {}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".xlsx":
            book = openpyxl.load_workbook(path, read_only=True)
            found[path.name] = [list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets]
        elif path.name == "README.txt":
            found[path.name] = MADE_LINE.sub("", path.read_text())
        elif path.name != "manifest-sha256.txt":  # it lists the xlsx files, whose zip stamps differ
            found[path.name] = path.read_bytes()
    return found


@pytest.mark.parametrize("options", [(), ("--dedupe", "none", "--include-referenced", "--account", "alice")])
def test_workers_write_what_one_process_writes(harvested, tmp_path, options):  # noqa: F811
    _sim, config, archive = harvested
    today = raw_posts(archive, "tl")[0]["captured_at"][:10]
    _archive_of_several_files(archive)
    assert run_cli("fetch-urls", "tl", "--start", today, "--config", str(config)).returncode == 0
    for fmt in ("csv", "tsv", "jsonl", "parquet", "ids", "xlsx"):
        runs = {}
        for jobs in ("1", "2"):
            out = tmp_path / f"out-{fmt}-{jobs}"
            done = run_cli("export", "tl", "--config", str(config), "--out", str(out), "--format", fmt,
                           "--jobs", jobs, "--segment", "150", *options)
            runs[jobs] = (done.returncode, done.stderr, _files(out))
        assert runs["1"][0] == 1 and "not valid JSON" in runs["1"][1], fmt  # the damaged line, reported
        assert runs["2"] == runs["1"], fmt
        assert len(runs["1"][2]) > 2, fmt  # several segments besides the README


def test_jobs_must_not_be_negative(harvested, tmp_path):  # noqa: F811
    _sim, config, _archive = harvested
    done = run_cli("export", "tl", "--config", str(config), "--out", str(tmp_path / "out"), "--jobs", "-1")
    assert done.returncode == 2 and "--jobs -1" in done.stderr


def _emit_three(emit) -> str:
    for item in ("a", "b", "c"):
        emit(item)
    return "done"


@pytest.mark.parametrize("per_pickle, pickles", [(1, 3), (2, 2), (2000, 1)])
def test_a_spill_is_written_as_items_come(tmp_path, per_pickle, pickles):
    """Batches of rows are spilled one by one, as soon as they are made (a worker never holds a
    whole file's batches); other items `per_pickle` at a time. Read back, they are the items."""
    import pickle

    from sfm_archiver.export.parallel import _read_spill, _spilled

    spill = tmp_path / "part.pickle"
    assert _spilled(_emit_three, (), spill, per_pickle) == "done"
    with open(spill, "rb") as handle:
        found = []
        while True:
            try:
                found.append(pickle.load(handle))
            except EOFError:
                break
    assert len(found) == pickles and list(_read_spill(spill)) == ["a", "b", "c"]
