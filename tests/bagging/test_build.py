"""Bags built from a real capture tree: layout, tag files, provenance, validation, options."""

from __future__ import annotations

import json
import os
import tarfile
from datetime import datetime, timedelta

import bagit
import pytest

from sfm_archiver.bagging import bag_completed_periods, pending_periods, verify_paths
from sfm_archiver.bagging.tagfiles import REQUIRED_INFO, read_bag_info
from sfm_archiver.errors import BagError
from sfm_archiver.jobs.organize import organize
from tests.bagging.conftest import DAY1, UTC, assert_each_capture_once, staging_entries

LATER = DAY1 + timedelta(days=30)


def test_day_bags_validate_with_bagit_and_verify(env):
    env.fill("gw", days=2, hours=(3, 14), per_hour=2)
    ctx = env.context(now=LATER)
    store = ctx.store
    store.upsert_account("14615871", username="gwtweets")
    store.link_account("gw", "14615871", "id:14615871")
    ctx.ledger.append(account_id="14615871", event="added", observed_by={"job": "test"}, at=DAY1 - timedelta(days=1))
    ctx.ledger.append(account_id="14615871", event="renamed", observed_by={"job": "test"}, from_="a", to="b", at=DAY1 + timedelta(days=1, hours=5))
    ctx.ledger.append(account_id="999", event="added", observed_by={"job": "test"}, at=DAY1 - timedelta(days=1))

    results = bag_completed_periods(ctx)

    assert [r["name"] for r in results] == ["gw_2024-03-01", "gw_2024-03-02"]
    assert all(r["status"] == "bagged" and r["files"] == 4 for r in results)
    for result in results:
        bag = bagit.Bag(result["path"])
        assert bag.validate(processes=1)
        assert set(bag.algorithms) == {"sha256", "sha512"}
    assert verify_paths([r["path"] for r in results]) == []
    first = env.outbox / "gw_2024-03-01"
    info = read_bag_info(first)
    assert set(REQUIRED_INFO) <= set(info)
    assert info["External-Identifier"] == ["gw_2024-03-01"]
    assert info["Bag-Group-Identifier"] == ["gw"]
    assert info["SFM-Period-Start"] == ["2024-03-01T00:00:00.000Z"]
    assert info["SFM-Period-End"] == ["2024-03-02T00:00:00.000Z"]
    assert info["Contact-Email"] == ["archives@example.edu"]
    assert "BagIt-Profile-Identifier" not in info
    assert (first / "bagit.txt").read_text().startswith("BagIt-Version: 1.0\n")
    assert sorted(p.name for p in (first / "data/2024/03/01").iterdir()) == ["03", "14"]
    ledger_day1 = (first / "data/provenance/ledger.jsonl").read_text().splitlines()
    ledger_day2 = (env.outbox / "gw_2024-03-02/data/provenance/ledger.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in ledger_day1] == ["added"]
    assert [json.loads(line)["event"] for line in ledger_day2] == ["added", "renamed"]
    collection = json.loads((first / "data/provenance/collection.json").read_text())
    assert collection["name"] == "gw" and "test-token-123" not in (first / "data/provenance/collection.json").read_text()
    assert json.loads((first / "data/provenance/accounts.json").read_text())[0]["account_id"] == "14615871"
    assert_each_capture_once(env)
    assert not (env.archive / "gw/2024/03/01").exists(), "emptied day folders are removed"
    assert staging_entries(env) == []
    recorded = {b["name"]: b for b in ctx.store.bags(collection="gw")}
    assert recorded["gw_2024-03-01"]["state"] == "done"
    assert recorded["gw_2024-03-01"]["files"] == 4
    assert recorded["gw_2024-03-01"]["oxum"] == info["Payload-Oxum"][0]
    assert recorded["gw_2024-03-01"]["duration"] > 0


def test_hour_and_month_labels(make_env):
    hourly = make_env("hourly", bagging={"period": "hour", "grace": "0s"})
    hourly.fill("gw", days=1, hours=(13,))
    names = [r["name"] for r in bag_completed_periods(hourly.context(now=LATER))]
    assert names == ["gw_2024-03-01T13"]
    monthly = make_env("monthly", bagging={"period": "month"})
    monthly.fill("gw", days=2, hours=(0, 23))
    results = bag_completed_periods(monthly.context(now=datetime(2024, 4, 1, 1, 30, tzinfo=UTC)))
    assert [(r["name"], r["files"]) for r in results] == [("gw_2024-03", 4)]
    assert not (monthly.archive / "gw/2024/03").exists()


def test_never_bag_a_period_twice_nor_overwrite_the_outbox(env):
    env.fill("gw", days=2)
    ctx = env.context(now=LATER)
    (env.outbox / "gw_2024-03-02").mkdir(parents=True)
    (env.outbox / "gw_2024-03-02" / "someone-elses.txt").write_text("keep me")
    results = {r["name"]: r for r in bag_completed_periods(ctx)}
    assert results["gw_2024-03-01"]["status"] == "bagged"
    assert results["gw_2024-03-02"]["status"] == "exists"
    assert (env.outbox / "gw_2024-03-02" / "someone-elses.txt").read_text() == "keep me"
    assert bag_completed_periods(ctx) == [results["gw_2024-03-02"]]
    late = env.capture("gw", DAY1 + timedelta(hours=20))
    again = {r["name"]: r for r in bag_completed_periods(ctx)}
    assert again["gw_2024-03-01"]["status"] == "conflict"
    assert late.exists(), "a file that appears in an already bagged period stays in the archive"
    assert_each_capture_once(env)


def test_tar_serialization_and_ready_marker(make_env):
    env = make_env(bagging={"serialization": "tar", "ready_marker": True, "profile_identifier": "https://example.edu/profile.json"})
    env.fill("gw", days=1)
    [result] = bag_completed_periods(env.context(now=LATER))
    tar_path = env.outbox / "gw_2024-03-01.tar"
    assert result["path"] == str(tar_path)
    assert (env.outbox / "gw_2024-03-01.ready").read_text().startswith("gw_2024-03-01.tar\n")
    with tarfile.open(tar_path) as tar:
        assert {m.name.split("/")[0] for m in tar.getmembers()} == {"gw_2024-03-01"}
        info = tar.extractfile("gw_2024-03-01/bag-info.txt").read().decode()
    assert "BagIt-Profile-Identifier: https://example.edu/profile.json" in info
    assert verify_paths([tar_path]) == []
    assert sorted(os.listdir(env.outbox)) == [".staging", "gw_2024-03-01.ready", "gw_2024-03-01.tar"]
    assert staging_entries(env) == []
    assert_each_capture_once(env)


def test_empty_period_yields_a_provenance_only_bag(make_env):
    env = make_env(bagging={"period": "hour", "grace": "0s"})
    ctx = env.context()
    run_id = ctx.store.start_run("filter_stream", "climate")
    ctx.store.finish_run(run_id, "ok", {"messages": 0})
    ctx.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    [result] = bag_completed_periods(ctx, ["climate"])
    assert result["status"] == "bagged" and result["files"] == 0 and result["empty"]
    bag = env.outbox / result["name"]
    assert bagit.Bag(str(bag)).validate()
    assert sorted(p.name for p in (bag / "data").iterdir()) == ["provenance"]
    runs = json.loads((bag / "data/provenance/runs.json").read_text())
    assert [r["run_id"] for r in runs] == [run_id]
    assert "captured nothing" in read_bag_info(bag)["Internal-Sender-Description"][0]
    assert bag_completed_periods(ctx, ["climate"]) == []


def test_empty_periods_can_be_turned_off(make_env):
    env = make_env(bagging={"period": "hour", "grace": "0s", "empty_periods": False})
    ctx = env.context()
    ctx.store.finish_run(ctx.store.start_run("filter_stream", "climate"), "ok")
    ctx.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    assert bag_completed_periods(ctx, ["climate"]) == []


def test_files_placed_by_organize_are_bagged(env, tmp_path):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    import gzip

    payload = b'{"id": "1", "text": "old"}\n{"id": "2", "text": "older"}\n'
    (legacy / "climate-2016-03-04T05-06-07Z.gz").write_bytes(gzip.compress(payload))
    (legacy / "climate-2016-03-04T05-36-07Z.gz").write_bytes(gzip.compress(payload))
    report = organize(legacy, env.archive, include_recent=True)
    assert len(report.moved) == 2
    [result] = bag_completed_periods(env.context(now=LATER))
    assert result["name"] == "climate_2016-03-04" and result["files"] == 2
    assert verify_paths([result["path"]]) == []


def test_dry_run_changes_nothing_and_pending_lists_the_same(env):
    env.fill("gw", days=2)
    ctx = env.context(now=LATER)
    planned = bag_completed_periods(ctx, dry_run=True)
    assert [(r["name"], r["status"]) for r in planned] == [("gw_2024-03-01", "would_bag"), ("gw_2024-03-02", "would_bag")]
    assert [p["name"] for p in pending_periods(ctx)] == ["gw_2024-03-01", "gw_2024-03-02"]
    assert not env.outbox.exists() or staging_entries(env) == [] and len(os.listdir(env.outbox)) <= 1
    bag_completed_periods(ctx)
    assert pending_periods(ctx) == []


def test_outbox_on_another_filesystem_is_refused_without_copy(tmp_path, make_env):
    shm = "/dev/shm"
    if os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.fail("this test needs /dev/shm to be another filesystem than the temporary folder")
    import tempfile

    with tempfile.TemporaryDirectory(dir=shm) as other:
        env = make_env(outbox=os.path.join(other, "outbox"))
        env.fill("gw", days=1)
        with pytest.raises(BagError, match="another filesystem.*copy: true"):
            bag_completed_periods(env.context(now=LATER))
        assert_each_capture_once(env)
        assert env.archive.joinpath("gw/2024/03/01").exists()


def test_copy_mode_copies_verifies_and_deletes(tmp_path, make_env):
    import tempfile

    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        env = make_env(outbox=os.path.join(other, "outbox"), bagging={"copy": True, "serialization": "tar"})
        env.fill("gw", days=2)
        results = bag_completed_periods(env.context(now=LATER))
        assert [r["status"] for r in results] == ["bagged", "bagged"]
        assert verify_paths([r["path"] for r in results]) == []
        assert_each_capture_once(env)
        assert staging_entries(env) == []
        assert list(env.archive.rglob("*.gz")) == []


def test_worker_processes_build_and_validate(env):
    """The process-pool path (used for bags over the inline threshold), forced on a small bag."""
    env.fill("gw", days=1, hours=(1, 2, 3, 4), lines=50, noise=256)
    results = bag_completed_periods(env.context(now=LATER), workers=2, inline_below=0)
    assert [r["status"] for r in results] == ["bagged"]
    assert bagit.Bag(results[0]["path"]).validate(processes=2)
    assert verify_paths([results[0]["path"]], workers=2, inline_below=0) == []
    assert_each_capture_once(env)
