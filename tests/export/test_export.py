"""`sfm-archiver export` on captures made by real harvests from the simulator.

The oracle is always a plain gzip + `json.loads` reading of the raw captures (tests/export/helpers.py),
never the exporter's own flattening.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import json
import os
import pty
import select
import subprocess
import sys
import tarfile
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
import pytest

from .helpers import add_capture, harvest, raw_captures, raw_posts, read_csv_rows, rename_pass, run_cli, unguard, write_config

TOKEN = "timeline-test-token"
ACCOUNTS = [{"id": "301", "username": "alice", "tweets": 120}, {"id": "302", "username": "bruno", "tweets": 90}]


@pytest.fixture
def harvested(tmp_path, make_simulator, wire_style):
    """A timeline collection `tl` harvested once from the simulator (both wire styles)."""
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS, wire=wire_style)
    config = write_config(tmp_path, sim.base_url, {"tl": ["alice", "bruno"]})
    assert harvest(config, "tl")["result"] == "ok"
    return sim, config, tmp_path / "archive"


def export(config: Path, out: Path, *args: str):
    return run_cli("export", "tl", "--config", str(config), "--out", str(out), *args)


def exported_posts(folder: Path, fmt: str) -> dict[str, dict]:
    """id -> (text, author id, author username) read back with the format's own reader."""
    rows: list[dict] = []
    if fmt in ("csv", "tsv"):
        rows = [{**row, "text": unguard(row["text"])} for row in read_csv_rows(folder, fmt)]
    elif fmt == "xlsx":
        for path in sorted(folder.glob("*.xlsx")):
            book = openpyxl.load_workbook(path, read_only=True)
            for sheet in book.worksheets:
                header, *body = list(sheet.iter_rows(values_only=True))
                rows += [dict(zip(header, values, strict=True)) for values in body]
    elif fmt == "parquet":
        for path in sorted(folder.glob("*.parquet")):
            rows += pq.read_table(path).to_pylist()
    elif fmt == "jsonl":
        for path in sorted(folder.glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                post = json.loads(line)
                rows.append({"id": post["id"], "text": post.get("note_tweet", {}).get("text", post["text"]),
                             "author_id": post["author_id"], "author.username": post["author"]["username"]})
    elif fmt == "ids":
        rows = [{"id": line} for path in sorted(folder.glob("*_[0-9][0-9][0-9].txt")) for line in path.read_text().splitlines()]
    return {row["id"]: row for row in rows}


@pytest.mark.parametrize("fmt", ["csv", "tsv", "xlsx", "jsonl", "parquet", "ids"])
def test_every_format_round_trips_the_raw_posts(harvested, tmp_path, fmt):
    _sim, config, archive = harvested
    done = export(config, tmp_path / "out", "--format", fmt)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # quiet when not on a terminal
    expected = {post["id"]: post for post in raw_posts(archive, "tl")}
    got = exported_posts(tmp_path / "out", fmt)
    assert set(got) == set(expected) and len(expected) == 210
    assert all(isinstance(post_id, str) and len(post_id) == 19 for post_id in got)  # 19-digit ids survive
    if fmt != "ids":
        for post_id, post in expected.items():
            row = got[post_id]
            assert (row["text"], row["author_id"], row["author.username"]) == (
                post["text"], post["author_id"], post["author.username"]), post_id


def test_long_post_keeps_its_full_note_tweet_text(harvested, tmp_path):
    _sim, config, archive = harvested
    page = copy.deepcopy(raw_captures(archive, "tl")[0])
    long_text = "A long post. " + "word " * 1200 + "=end"
    page["data"] = page["data"][:1]
    page["data"][0]["id"] = "1999999999999999999"
    page["data"][0]["note_tweet"] = {"text": long_text, "entities": {"hashtags": [{"start": 0, "end": 2, "tag": "x"}]}}
    page["__sfm"]["captured_at"] = "2026-11-27T13:00:00.000Z"
    add_capture(archive, "tl", "timeline", [page])
    for fmt in ("csv", "xlsx", "parquet", "jsonl"):
        out = tmp_path / f"out-{fmt}"
        assert export(config, out, "--format", fmt).returncode == 0
        assert exported_posts(out, fmt)["1999999999999999999"]["text"] == long_text, fmt


def test_renamed_account_is_found_by_its_old_name(harvested, tmp_path):
    sim, config, archive = harvested
    sim.apply_event({"action": "rename", "account": "301", "username": "alice_new"})
    assert rename_pass(config, "tl")["result"] in ("ok", "warning")
    sim.apply_event({"action": "post", "account": "301", "count": 4})
    assert harvest(config, "tl")["result"] == "ok"
    by_alice = {post["id"] for post in raw_posts(archive, "tl") if post["author_id"] == "301"}
    assert len(by_alice) == 124
    for name in ("alice", "@Alice", "alice_new", "301"):
        out = tmp_path / f"out-{name}"
        done = export(config, out, "--account", name)
        assert done.returncode == 0, done.stderr
        assert set(exported_posts(out, "csv")) == by_alice, name
    readme = (tmp_path / "out-alice" / "README.txt").read_text()
    assert "alice = ids 301" in readme
    assert export(config, tmp_path / "none", "--account", "nobody_known").returncode == 0
    assert exported_posts(tmp_path / "none", "csv") == {}


def test_a_post_captured_by_two_collections_and_two_runs(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS[:1])
    config = write_config(tmp_path, sim.base_url, {"one": ["alice"], "two": ["alice"]})
    archive = tmp_path / "archive"
    assert harvest(config, "one")["result"] == "ok"
    assert harvest(config, "two")["result"] == "ok"
    captures: dict[str, list[tuple[str, str]]] = {}
    for collection in ("one", "two"):
        for post in raw_posts(archive, collection):
            captures.setdefault(post["id"], []).append((post["captured_at"], collection))
    assert len(captures) == 120 and all(len(seen) == 2 for seen in captures.values())
    for dedupe, pick in (("latest", max), ("first", min)):
        out = tmp_path / dedupe
        done = run_cli("export", "one", "two", "--config", str(config), "--out", str(out), "--dedupe", dedupe)
        assert done.returncode == 0, done.stderr
        rows = read_csv_rows(out)
        assert len(rows) == 120 and {row["id"] for row in rows} == set(captures)
        for row in rows:
            assert (row["captured_at"], row["collection"]) == pick(captures[row["id"]])
        assert "duplicate captures left out: 120" in (out / "README.txt").read_text()
    out = tmp_path / "none"
    assert run_cli("export", "one", "two", "--config", str(config), "--out", str(out), "--dedupe", "none").returncode == 0
    rows = read_csv_rows(out)
    assert sorted((row["id"], row["captured_at"], row["collection"]) for row in rows) == sorted(
        (post_id, *seen) for post_id, both in captures.items() for seen in both)


@pytest.mark.parametrize("serialization", ["none", "tar"])
def test_export_from_bags_equals_the_export_from_the_archive(tmp_path, make_simulator, serialization):
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS)
    config = write_config(tmp_path, sim.base_url, {"tl": ["alice", "bruno"]})
    config.write_text(config.read_text().replace("grace: 0s", f"grace: 0s\n  serialization: {serialization}"))
    assert harvest(config, "tl", hours_ago=3)["result"] == "ok"
    for fmt in ("csv", "parquet"):
        assert export(config, tmp_path / f"archive-{fmt}", "--format", fmt).returncode == 0
    bagged = run_cli("bag", "tl", "--config", str(config))
    assert bagged.returncode == 0, bagged.stdout + bagged.stderr
    outbox = tmp_path / "outbox"
    bags = sorted(path for path in outbox.iterdir() if not path.name.startswith("."))
    assert bags and all(path.name.endswith(".tar") == (serialization == "tar") for path in bags)
    assert raw_posts(tmp_path / "archive", "tl") == []  # the periods left the archive
    before = {path: path.stat().st_mtime_ns for path in outbox.rglob("*")}
    for fmt in ("csv", "parquet"):
        for label, source in (("outbox", outbox), ("bag", bags[0])):
            out = tmp_path / f"{label}-{fmt}"
            done = run_cli("export", "tl", "--source", str(source), "--out", str(out), "--format", fmt)
            assert done.returncode == 0, done.stderr
            assert (out / f"tl_001.{fmt}").read_bytes() == (tmp_path / f"archive-{fmt}" / f"tl_001.{fmt}").read_bytes() \
                or label == "bag" and len(bags) > 1
        readme = (tmp_path / f"outbox-{fmt}" / "README.txt").read_text()
        assert bags[0].name.removesuffix(".tar") in readme and "sha256 of" in readme
    assert {path: path.stat().st_mtime_ns for path in outbox.rglob("*")} == before  # read-only


def test_a_bag_that_fails_verification_is_skipped_and_reported(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS)
    config = write_config(tmp_path, sim.base_url, {"tl": ["alice", "bruno"]})
    assert harvest(config, "tl", hours_ago=3)["result"] == "ok"
    assert run_cli("bag", "tl", "--config", str(config)).returncode == 0
    [bag] = [path for path in (tmp_path / "outbox").iterdir() if not path.name.startswith(".")]
    [capture] = list((bag / "data").rglob("*-timeline-*.jsonl.gz"))
    capture.write_bytes(capture.read_bytes()[:-20])
    done = run_cli("export", "tl", "--source", str(bag), "--out", str(tmp_path / "out"))
    assert done.returncode == 1
    assert f"skipped {bag}" in done.stderr and "checksum" in done.stderr
    readme = (tmp_path / "out" / "README.txt").read_text()
    assert "SKIPPED, not read" in readme and str(capture.name) in readme and "checksum" in readme


def test_damaged_capture_is_reported_with_file_and_line_not_fatal(harvested, tmp_path):
    _sim, config, archive = harvested
    page = raw_captures(archive, "tl")[0]
    first, second = copy.deepcopy(page), copy.deepcopy(page)
    first["data"], second["data"] = page["data"][:1], page["data"][1:2]
    for post, new_id in ((first["data"][0], "1000000000000000001"), (second["data"][0], "1000000000000000002")):
        post["id"] = new_id
    damaged = add_capture(archive, "tl", "timeline", [first, b'{"data": [{"id": "1", "te\n', second])
    truncated = add_capture(archive, "tl", "timeline", [first] * 50, n=1)
    truncated.write_bytes(truncated.read_bytes()[:-30])
    done = export(config, tmp_path / "out")
    assert done.returncode == 1
    assert f"{damaged}:2: not valid JSON" in done.stderr and f"{truncated}:" in done.stderr
    assert "cannot decompress" in done.stderr
    readme = (tmp_path / "out" / "README.txt").read_text()
    assert f"{damaged}:2: not valid JSON" in readme and "cannot decompress" in readme
    ids = set(exported_posts(tmp_path / "out", "csv"))
    assert {"1000000000000000001", "1000000000000000002"} <= ids
    assert len(ids) == 212


def test_formula_guard_in_spreadsheet_formats(harvested, tmp_path):
    _sim, config, archive = harvested
    page = copy.deepcopy(raw_captures(archive, "tl")[0])
    texts = {"1000000000000000011": "=HYPERLINK(\"http://x\")", "1000000000000000012": "+1", "1000000000000000013": "-2",
             "1000000000000000014": "@here hello", "1000000000000000015": "plain = text"}
    page["data"] = [{**page["data"][0], "id": post_id, "text": text} for post_id, text in texts.items()]
    add_capture(archive, "tl", "timeline", [page])
    for fmt in ("csv", "tsv", "xlsx", "parquet"):
        assert export(config, tmp_path / fmt, "--format", fmt).returncode == 0
    csv_rows = {row["id"]: row["text"] for row in read_csv_rows(tmp_path / "csv")}
    tsv_rows = {row["id"]: row["text"] for row in read_csv_rows(tmp_path / "tsv", "tsv")}
    book = openpyxl.load_workbook(next((tmp_path / "xlsx").glob("*.xlsx")))
    sheet = book["posts"]
    header = [cell.value for cell in sheet[1]]
    cells = {row[0].value: row[header.index("text")] for row in sheet.iter_rows(min_row=2)}
    parquet = {row["id"]: row["text"] for row in pq.read_table(next((tmp_path / "parquet").glob("*.parquet"))).to_pylist()}
    for post_id, text in texts.items():
        guarded = text[0] in "=+-@"
        assert csv_rows[post_id] == tsv_rows[post_id] == ("'" + text if guarded else text)
        assert cells[post_id].value == text and cells[post_id].data_type == "s"  # text, never a formula
        assert parquet[post_id] == text


def test_readme_and_manifest(harvested, tmp_path):
    _sim, config, archive = harvested
    out = tmp_path / "out"
    done = export(config, out, "--segment", "100", "--start", "2000-01-01", "--end", "2099-12-31")
    assert done.returncode == 0, done.stderr
    names = sorted(path.name for path in out.iterdir())
    assert names == ["README.txt", "manifest-sha256.txt", "tl_001.csv", "tl_002.csv", "tl_003.csv"]
    manifest = dict(reversed(line.split("  ", 1)) for line in (out / "manifest-sha256.txt").read_text().splitlines())
    assert sorted(manifest) == names[:1] + names[2:]
    for name, digest in manifest.items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    readme = (out / "README.txt").read_text()
    captured = sorted(post["captured_at"] for post in raw_posts(archive, "tl"))
    for expected in ("collections: tl", "format: csv", "dedupe: latest", "time range: 2000-01-01 to 2099-12-31",
                     f"archive {archive}", "tl_001.csv: 100 rows", "tl_003.csv: 10 rows", "rows written: 210",
                     "301 alice: 120", "302 bruno: 90", f"capture time range: {captured[0]} to {captured[-1]}",
                     "as of capture time", "Formula guard", "none: every input was read whole",
                     "author.public_metrics.like_count (int)", "sfm-archiver 0."):
        assert expected in readme, expected


def test_filters_by_posting_and_capture_time_and_kind(harvested, tmp_path):
    _sim, config, archive = harvested
    posts = raw_posts(archive, "tl")
    pages = raw_captures(archive, "tl")
    created = sorted(post["created_at"] for page in pages for post in page["data"])
    middle = created[len(created) // 2]
    out = tmp_path / "posted"
    assert export(config, out, "--start", middle).returncode == 0
    assert len(exported_posts(out, "csv")) == sum(1 for stamp in created if stamp >= middle)
    out = tmp_path / "captured"
    assert export(config, out, "--by", "captured", "--end", "2000-01-01").returncode == 0
    assert exported_posts(out, "csv") == {}
    out = tmp_path / "stream"
    assert export(config, out, "--kind", "stream").returncode == 0
    assert exported_posts(out, "csv") == {} and len(posts) == 210


def test_include_referenced_adds_the_referenced_posts(harvested, tmp_path):
    _sim, config, archive = harvested
    referenced = {post["id"] for page in raw_captures(archive, "tl") for post in page.get("includes", {}).get("tweets", [])}
    assert referenced
    out = tmp_path / "out"
    assert export(config, out, "--include-referenced").returncode == 0
    rows = read_csv_rows(out)
    assert {row["id"] for row in rows if row["row_type"] == "referenced"} == referenced - {
        row["id"] for row in rows if row["row_type"] == "post"}


def test_unrouted_is_a_collection_like_any_other(harvested, tmp_path):
    _sim, config, archive = harvested
    page = raw_captures(archive, "tl")[0]
    messages = [{"data": post, "includes": page["includes"], "matching_rules": [],
                 "__sfm": {"captured_at": "2026-11-27T13:00:00.000Z", "collection": "_unrouted", "connection": "c1"}}
                for post in page["data"][:5]]
    add_capture(archive, "_unrouted", "stream", messages)
    out = tmp_path / "out"
    done = run_cli("export", "_unrouted", "--config", str(config), "--out", str(out), "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    assert list(exported_posts(out, "jsonl")) == [post["id"] for post in page["data"][:5]]


def test_exit_codes_and_usage_errors(harvested, tmp_path):
    _sim, config, _archive = harvested
    assert export(config, tmp_path / "ok").returncode == 0
    for args in (("--format", "pdf"), ("--start", "yesterday"), ("--columns", "id,nope"), ("--segment", "0"),
                 ("--start", "2026-01-02", "--end", "2026-01-01")):
        done = export(config, tmp_path / "bad", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert not (tmp_path / "bad").exists()
    done = export(config, tmp_path / "ok")  # an export never mixes with other files
    assert done.returncode == 2 and "not empty" in done.stderr
    done = run_cli("export", "tl", "--source", str(tmp_path / "missing"), "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "does not exist" in done.stderr
    done = export(config, tmp_path / "archive" / "tl" / "export")
    assert done.returncode == 2 and "inside the source" in done.stderr
    assert not (tmp_path / "archive" / "tl" / "export").exists()


def test_columns_all_keeps_unknown_fields_in_extra(harvested, tmp_path):
    _sim, config, archive = harvested
    page = copy.deepcopy(raw_captures(archive, "tl")[0])
    page["data"] = page["data"][:1]
    page["data"][0]["id"] = "1000000000000000021"
    page["data"][0]["brand_new"] = {"x": 1}
    add_capture(archive, "tl", "timeline", [page])
    out = tmp_path / "out"
    assert export(config, out, "--columns", "id,text,extra").returncode == 0
    rows = {row["id"]: row for row in read_csv_rows(out)}
    assert list(rows["1000000000000000021"]) == ["id", "text", "extra"]
    assert json.loads(rows["1000000000000000021"]["extra"]) == {"brand_new": {"x": 1}}
    assert "brand_new: 1 rows" in (out / "README.txt").read_text()


def test_ledger_show_finds_an_account_by_the_name_it_was_added_with(harvested):
    _sim, config, _archive = harvested
    shown = run_cli("ledger", "show", "--account", "alice", "--config", str(config))
    assert shown.returncode == 0 and " added " in shown.stdout and "301" in shown.stdout


def test_expanded_links_are_joined_from_fetch_urls_captures(harvested, tmp_path):
    _sim, config, archive = harvested
    today = raw_posts(archive, "tl")[0]["captured_at"][:10]
    fetched = run_cli("fetch-urls", "tl", "--start", today, "--config", str(config))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    finals = {}
    for path in sorted((archive / "tl").rglob("*-urls-*.jsonl.gz")):
        for line in gzip.open(path, "rt"):
            record = json.loads(line)
            finals[record["url"]] = record["final_url"]
    assert finals
    out = tmp_path / "out"
    assert export(config, out).returncode == 0
    rows = {row["id"]: row for row in read_csv_rows(out)}
    checked = 0
    for page in raw_captures(archive, "tl"):
        for post in page["data"]:
            # X's URL entities of the post and of its long-form note_tweet: the link as expanded
            # (or the t.co link) and where X unwound it, as fetch-urls checks them
            entities = [entity for holder in (post, post.get("note_tweet", {}))
                        for entity in holder.get("entities", {}).get("urls", [])]
            links = [url for entity in entities
                     for url in (entity.get("expanded_url") or entity.get("url"), entity.get("unwound_url")) if url]
            expected = [finals[url] for url in dict.fromkeys(links) if finals.get(url)]
            got = json.loads(rows[post["id"]]["urls.final"]) if rows[post["id"]]["urls.final"] else []
            assert got == expected, post["id"]
            checked += bool(expected)
    assert checked > 10


def test_progress_on_a_terminal(harvested, tmp_path):
    _sim, config, _archive = harvested
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "export", "tl", "--config", str(config),
                                "--out", str(tmp_path / "out")], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=slave)
    os.close(slave)
    output = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=30) == 0
    os.close(master)
    text = output.decode(errors="replace")
    assert "writing: 210 posts" in text and "/s" in text and "elapsed" in text


def test_xlsx_sheets_split_at_the_row_limit(harvested, tmp_path, monkeypatch):
    from sfm_archiver.export import ExportRequest, run_export, writers

    _sim, _config, archive = harvested
    assert writers.XLSX_MAX_ROWS == 1_048_576  # Excel's documented limit of rows per sheet
    monkeypatch.setattr(writers, "XLSX_MAX_ROWS", 101)
    result = run_export(ExportRequest(collections=("tl",), sources=(archive,), out=tmp_path / "out", format="xlsx"))
    assert result.exit_code == 0
    book = openpyxl.load_workbook(tmp_path / "out" / "tl_001.xlsx", read_only=True)
    sizes = [(sheet.title, sum(1 for _ in sheet.iter_rows())) for sheet in book.worksheets]
    assert sizes == [("posts", 101), ("posts_2", 101), ("posts_3", 11)]
    assert set(exported_posts(tmp_path / "out", "xlsx")) == {post["id"] for post in raw_posts(archive, "tl")}


def test_export_changes_nothing_in_the_archive_or_the_state(harvested, tmp_path):
    _sim, config, archive = harvested
    state = tmp_path / "state"
    with open(state / "ledger.jsonl", "ab") as ledger:  # a torn tail a crashed writer may leave
        ledger.write(b'{"seq": 99, "at": "2026-')

    def snapshot():
        return {path: (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
                for root in (archive, state) for path in sorted(root.rglob("*")) if path.is_file()}

    before = snapshot()
    done = export(config, tmp_path / "out", "--account", "alice")
    assert done.returncode == 0, done.stderr
    assert snapshot() == before


def test_a_compressed_bag_is_listed_as_skipped_never_passed_over(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS)
    config = write_config(tmp_path, sim.base_url, {"tl": ["alice", "bruno"]})
    assert harvest(config, "tl", hours_ago=3)["result"] == "ok"
    assert run_cli("bag", "tl", "--config", str(config)).returncode == 0
    outbox = tmp_path / "outbox"
    [bag] = [path for path in outbox.iterdir() if not path.name.startswith(".")]
    with tarfile.open(outbox / f"{bag.name}.tar.gz", "w:gz") as tar:
        tar.add(bag, arcname=bag.name)
    done = run_cli("export", "tl", "--source", str(outbox), "--out", str(tmp_path / "out"))
    assert done.returncode == 1 and f"{bag.name}.tar.gz: a compressed bag is not read" in done.stderr
    assert len(read_csv_rows(tmp_path / "out")) == 210  # the folder bag was read
    assert "SKIPPED" in (tmp_path / "out" / "README.txt").read_text()


def test_parquet_batches_split_where_segments_end(harvested, tmp_path, monkeypatch):
    """Parquet rows travel in batches (several per capture file here); segments still hold
    `--segment` rows each, every row once, in the order the CSV export has them."""
    from sfm_archiver.export import ExportRequest, run_export
    from sfm_archiver.export.writers import ParquetWriter

    _sim, _config, archive = harvested
    monkeypatch.setattr(ParquetWriter, "batch_rows", 7)
    runs = {}
    for fmt in ("csv", "parquet"):
        result = run_export(ExportRequest(collections=("tl",), sources=(archive,), out=tmp_path / fmt, format=fmt,
                                          segment=30, jobs=1))
        runs[fmt] = result
    sizes = [pq.read_metadata(tmp_path / "parquet" / name).num_rows for name, _rows in runs["parquet"].files]
    assert sizes[:-1] == [30] * (len(sizes) - 1) and 0 < sizes[-1] <= 30 and sum(sizes) == runs["csv"].rows
    ids = [post_id for name, _rows in runs["parquet"].files
           for post_id in pq.read_table(tmp_path / "parquet" / name).column("id").to_pylist()]
    assert ids == [row["id"] for row in read_csv_rows(tmp_path / "csv")]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_capture_without_a_capture_time_is_outside_any_capture_time_range(tmp_path, fmt):
    """`--by captured` with only `--end`: a capture whose `__sfm` has no `captured_at` has no
    capture time, so it is not in the range (as a post without `created_at` is not under
    `--by posted`); the dedupe index pass and the writing pass agree on it."""
    from sfm_archiver.export import ExportRequest, run_export

    archive = tmp_path / "archive"
    timed = {"data": [{"id": "1", "text": "kept"}], "__sfm": {"captured_at": "2026-11-27T13:00:00.000Z"}}
    untimed = {"data": [{"id": "2", "text": "no capture time"}], "__sfm": {}}
    add_capture(archive, "tl", "timeline", [timed, untimed])
    result = run_export(ExportRequest(collections=("tl",), sources=(archive,), out=tmp_path / "out", format=fmt,
                                      by="captured", end="2026-12-01"))
    assert result.rows == 1 and result.exit_code == 0
