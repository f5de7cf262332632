"""The README's first command: `sfm-archiver demo` ends with a valid bag in the outbox."""

from __future__ import annotations

import gzip
import json

from sfm_archiver.bagging import verify_paths
from sfm_archiver.demo import MARKER
from sfm_archiver.ledger import Ledger
from tests.daemon.helpers import cli


def test_demo_shows_every_step_and_ends_with_a_valid_bag(tmp_path):
    folder = tmp_path / "demo"
    result = cli("demo", "--dir", str(folder), "--minutes", "1.5", timeout=200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "demo: every step seen" in result.stdout
    assert "sfm-archiver status:" in result.stdout and "Where everything is:" in result.stdout
    bags = [p for p in (folder / "outbox").iterdir() if not p.name.startswith(".")]
    assert bags and verify_paths(bags) == []
    records = list(Ledger(folder / "state").records())
    events = {(r["account_id"], r["event"]) for r in records}
    assert {("200004", "renamed"), ("200003", "suspended")} <= events
    bluesky_renames = [r for r in records if r["event"] == "renamed" and r["account_id"].startswith("did:")]
    assert [(r["from"], r["to"], r.get("platform")) for r in bluesky_renames] == [
        ("oldname.bsky.demo", "newname.bsky.demo", "bluesky")]
    for collection, kind in (("demo-bluesky", "timeline"), ("demo-jetstream", "stream")):
        lines = [json.loads(line) for path in (folder / "archive" / collection).rglob(f"*-{kind}-*.jsonl.gz")
                 for line in gzip.open(path, "rt")]
        assert lines and all(line["__sfm"]["platform"] == "bluesky" for line in lines), collection
    url_files = list((folder / "archive").rglob("*-urls-*.jsonl.gz"))
    results = [json.loads(line) for path in url_files for line in gzip.open(path, "rt")]
    assert any(r["final_status"] == 200 for r in results)
    assert (folder / MARKER).exists()


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    result = cli("demo", "--dir", str(tmp_path), "--minutes", "1")
    assert result.returncode == 2
    assert "not empty" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
