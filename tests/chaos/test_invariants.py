"""The invariant checker finds each kind of broken promise, and stays quiet on a sound archive."""

from __future__ import annotations

import gzip
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sfm_archiver.simulator import AccountSpec
from tests.chaos.helpers import make_bag, write_capture
from tests.invariants import check_storage, expected_ledger_events, final_account_states

HOUR = datetime(2026, 11, 27, 13, 5, tzinfo=timezone.utc)
LATER = datetime(2026, 11, 27, 15, 10, tzinfo=timezone.utc)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    archive, outbox = tmp_path / "archive", tmp_path / "outbox"
    archive.mkdir()
    outbox.mkdir()
    return archive, outbox


def checks(report) -> set[str]:
    return {violation.check for violation in report.violations}


def test_sound_archive_and_bags_pass_with_counts(dirs):
    archive, outbox = dirs
    write_capture(archive, "gw", HOUR, [1, 2, 3])
    write_capture(archive, "gw", HOUR.replace(hour=14), [4])
    make_bag(outbox, archive, "gw", HOUR)
    make_bag(outbox, archive, "gw", HOUR.replace(hour=14), serialize=True)
    write_capture(archive, "gw", LATER, [5, 6])
    report = check_storage(archive, outbox)
    assert report.ok, report.summary()
    assert report.counts["bags"] == 2 and report.counts["bags_validated"] == 2
    assert report.counts["capture_files_archive"] == 1 and report.counts["capture_files_bagged"] == 2
    assert report.counts["capture_lines"] == 3


def test_a_file_in_the_archive_and_in_a_bag_is_in_two_places(dirs):
    archive, outbox = dirs
    path = write_capture(archive, "gw", HOUR, [1, 2])
    kept = path.read_bytes()
    bag = make_bag(outbox, archive, "gw", HOUR)
    path.parent.mkdir(parents=True)
    path.write_bytes(kept)
    report = check_storage(archive, outbox)
    assert {"capture.two_places", "period.reopened"} <= checks(report), report.summary()
    assert bag.exists()


def test_a_file_in_two_bags_is_in_two_places(dirs):
    archive, outbox = dirs
    write_capture(archive, "gw", HOUR, [1])
    bag = make_bag(outbox, archive, "gw", HOUR)
    shutil.copytree(bag, outbox / "gw_2026-11-27T14")
    report = check_storage(archive, outbox)
    assert "capture.two_places" in checks(report)


def test_torn_and_garbled_capture_files_are_reported(dirs):
    archive, outbox = dirs
    torn = write_capture(archive, "gw", HOUR, list(range(1, 200)))
    torn.write_bytes(torn.read_bytes()[:-20])
    garbled = write_capture(archive, "gw", LATER, [7])
    garbled.write_bytes(gzip.compress(b'{"data": [}\n'))
    report = check_storage(archive, outbox)
    assert {"capture.damaged", "capture.bad_line"} <= checks(report), report.summary()


def test_a_changed_payload_fails_bag_validation(dirs):
    archive, outbox = dirs
    write_capture(archive, "gw", HOUR, [1, 2])
    bag = make_bag(outbox, archive, "gw", HOUR)
    payload = next((bag / "data" / "2026").rglob("*.jsonl.gz"))
    payload.write_bytes(gzip.compress(b'{"data": [], "__sfm": {}}\n'))
    report = check_storage(archive, outbox)
    assert "bag.invalid" in checks(report)
    assert report.counts["bags_validated"] == 0


def test_partial_bags_strays_and_symlinks_in_the_outbox(dirs, tmp_path):
    archive, outbox = dirs
    (outbox / ".staging" / "gw_2026-11-27T13").mkdir(parents=True)
    (outbox / "gw_2026-11-27T12").mkdir()                      # no bagit.txt: not complete
    (outbox / "notes.txt").write_text("hello")
    (outbox / "gw_2026-11-27T11").symlink_to(tmp_path)
    report = check_storage(archive, outbox)
    assert {"outbox.partial_bag", "outbox.not_a_bag", "outbox.symlink"} <= checks(report), report.summary()
    young = check_storage(archive, outbox, staging_cutoff=os.stat(outbox / ".staging" / "gw_2026-11-27T13").st_mtime - 60)
    assert "outbox.partial_bag" not in checks(young)


def test_tar_bag_with_an_escaping_member_is_refused(dirs, tmp_path):
    import tarfile

    archive, outbox = dirs
    evil = tmp_path / "evil.txt"
    evil.write_text("x")
    with tarfile.open(outbox / "gw_2026-11-27T13.tar", "w") as handle:
        handle.add(evil, arcname="../evil.txt")
    report = check_storage(archive, outbox)
    assert "bag.tar" in checks(report)
    assert not (outbox.parent / "evil.txt").exists() or (outbox.parent / "evil.txt") == evil


def test_symlinks_in_the_archive_are_reported_and_not_read(dirs, tmp_path):
    archive, outbox = dirs
    outside = tmp_path / "outside"
    outside.mkdir()
    write_capture(outside, "gw", HOUR, [1])
    (archive / "gw").symlink_to(outside / "gw")
    report = check_storage(archive, outbox)
    assert "archive.symlink" in checks(report)
    assert report.counts["capture_files_archive"] == 0


def test_expected_ledger_events_follow_visible_changes_only():
    accounts = [AccountSpec("1", "alpha"), AccountSpec("2", "beta", suspended=True)]
    events = [
        {"action": "protect", "result": {"account": "1"}, "time": 5.0},       # before tracking: not expected
        {"action": "unprotect", "result": {"account": "1"}, "time": 20.0},
        {"action": "suspend", "result": {"account": "1"}, "time": 21.0},
        {"action": "protect", "result": {"account": "1"}, "time": 22.0},      # hidden by the suspension
        {"action": "unsuspend", "result": {"account": "1"}, "time": 23.0},
        {"action": "rename", "result": {"account": "1", "username": "alpha2"}, "time": 24.0},
        {"action": "reassign_username", "result": {"account": "3", "username": "beta"}, "time": 25.0},
        {"action": "suspend", "error": "no such account", "result": {"account": "9"}, "time": 26.0},
    ]
    expected = expected_ledger_events(accounts, events, {"1": 10.0, "2": 10.0}, __import__("collections").Counter(beta=2))
    assert dict(expected["changes"]) == {("1", "unprotected"): 1, ("1", "suspended"): 1, ("1", "unsuspended"): 1,
                                         ("1", "renamed"): 1}
    assert expected["reassigned"] == 2
    states = final_account_states(accounts, events)
    assert states["1"].status == "protected" and states["1"].username == "alpha2"
    assert states["3"].collectable and states["2"].status == "suspended"


def test_a_secret_in_a_capture_or_a_bag_is_a_leak(dirs):
    archive, outbox = dirs
    write_capture(archive, "gw", HOUR, [1])
    bag = make_bag(outbox, archive, "gw", HOUR)
    write_capture(archive, "gw", LATER, [2])
    assert check_storage(archive, outbox, secrets=["s3cr3t-token"]).ok
    (bag / "data" / "provenance" / "config.json").write_text('{"bearer_token": "s3cr3t-token"}')
    leaked = check_storage(archive, outbox, secrets=["s3cr3t-token"])
    assert [v.check for v in leaked.violations if v.check == "secret.leak"] == ["secret.leak"], leaked.summary()
    path = write_capture(archive, "gw", LATER.replace(minute=40), [3], account="s3cr3t-token")
    assert sum(v.check == "secret.leak" for v in check_storage(archive, outbox, secrets=["s3cr3t-token"]).violations) == 2
    assert path.exists()
