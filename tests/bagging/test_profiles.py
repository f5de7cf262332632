"""Bag profiles checked the way each service checks them, from rules written down here.

BTR: bagit_profile against the published BTR 1.0 document. APTrust: its published rules (user
guide "Bagging (SIP) Requirements" and the 2.2 profile): an uncompressed tar untarring to one
folder named like the tar, `<institution>.` prefix, md5 manifest, aptrust-info.txt values.
Archivematica: unpacked with `tar zxvf --directory=<parent>` as its zipped-transfer step does.
The identifiers, digests and allowed values below are copied from the published documents, not
from the code under test.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import xml.etree.ElementTree as ET
from datetime import timedelta
from importlib import resources
from pathlib import Path

import bagit
import bagit_profile
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.bagging import bag_completed_periods, verify_paths
from sfm_archiver.bagging.tagfiles import read_bag_info
from sfm_archiver.jobs.context import JobContext
from tests.bagging.conftest import ADDRESS, DAY1, archive_captures, assert_each_capture_once, staging_entries

LATER = DAY1 + timedelta(days=30)
BTR_ID = "https://github.com/dpscollaborative/btr_bagit_profile/releases/download/1.0/btr-bagit-profile.json"
APTRUST_ID = "https://raw.githubusercontent.com/APTrust/preservation-services/master/profiles/aptrust-v2.2.json"
PUBLISHED_SHA256 = {
    "btr-bagit-profile.json": "b24d8d4567885ea8daa779c47dae32e7e60803ceb5ac1c339a3014451c029ad1",
    "aptrust-v2.2.json": "b5f48cce51e9e5a17f59338ef796158865d504205ba160cefef4041f61db33fe",
}
BTR_RECOMMENDED = (
    "Organization-Address", "Contact-Email", "Bag-Group-Identifier", "Bag-Count", "Internal-Sender-Identifier",
    "Internal-Sender-Description", "Bag-Producing-Organization",
)
BTR_MANIFESTS = {"md5", "sha1", "sha256", "sha512"}
APTRUST_ACCESS = {"Consortia", "Institution", "Restricted"}
APTRUST_STORAGE = {
    "Standard", "Glacier-OH", "Glacier-OR", "Glacier-VA", "Glacier-Deep-OH", "Glacier-Deep-OR", "Glacier-Deep-VA",
    "Wasabi-OR", "Wasabi-VA",
}
APTRUST = {"profile": "aptrust", "aptrust": {"institution": "example.edu", "access": "Restricted", "storage_option": "Glacier-Deep-OR"}}


def shipped(name: str) -> Path:
    return Path(str(resources.files("sfm_archiver.bagging.profiles").joinpath("published", name)))


def tag_lines(path: Path) -> dict[str, str]:
    """A tag file as a plain mapping (every label once in our bags)."""
    pairs = [line.split(": ", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return dict(pairs)


def bag_one_day(make_env, bagging: dict, **kwargs) -> tuple[object, Path]:
    env = make_env(bagging=bagging, **kwargs)
    env.fill("gw", days=1, hours=(3, 14), per_hour=2)
    [result] = bag_completed_periods(env.context(now=LATER))
    assert result["status"] == "bagged", result
    return env, Path(result["path"])


def extract(tar_path: Path, into: Path) -> list[str]:
    with tarfile.open(tar_path) as tar:
        names = tar.getnames()
        tar.extractall(into, filter="data")
    return names


def rewrite_tag_manifests(bag: Path) -> None:
    """After editing a tag file on purpose: recompute tag manifests so only the edit is wrong."""
    for manifest in bag.glob("tagmanifest-*.txt"):
        algorithm = manifest.name[len("tagmanifest-"):-len(".txt")]
        lines = []
        for line in manifest.read_text().splitlines():
            name = line.split(None, 1)[1]
            lines.append(f"{hashlib.new(algorithm, (bag / name).read_bytes()).hexdigest()}  {name}\n")
        manifest.write_text("".join(lines))


def test_shipped_documents_are_the_published_ones():
    for name, digest in PUBLISHED_SHA256.items():
        assert hashlib.sha256(shipped(name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("serialization", ["none", "tar"])
def test_btr_bags_pass_bagit_profile_against_the_btr_document(make_env, tmp_path, serialization):
    env, path = bag_one_day(make_env, {"profile": "btr", "serialization": serialization})
    profile = bagit_profile.Profile(BTR_ID, profile=shipped("btr-bagit-profile.json").read_text())
    assert profile.validate_serialization(str(path))
    bag_dir = path
    if serialization == "tar":
        assert path.name == "gw_2024-03-01.tar"
        extract(path, tmp_path / "x")
        bag_dir = tmp_path / "x" / "gw_2024-03-01"
    bag = bagit.Bag(str(bag_dir))
    assert bag.validate(processes=1)
    assert profile.validate(bag), profile.report
    info = tag_lines(bag_dir / "bag-info.txt")
    assert info["BagIt-Profile-Identifier"] == BTR_ID
    assert all(info.get(field) for field in BTR_RECOMMENDED), [f for f in BTR_RECOMMENDED if not info.get(f)]
    assert info["Bag-Count"] == "1 of 1"
    assert info["Internal-Sender-Identifier"] == "gw_2024-03-01"
    assert info["Bag-Producing-Organization"] == info["Source-Organization"] == "Test University Libraries"
    assert info["Organization-Address"] == ADDRESS
    assert set(bag.algorithms) <= BTR_MANIFESTS and not (bag_dir / "fetch.txt").exists()
    assert verify_paths([path]) == []
    assert_each_capture_once(env)


def test_aptrust_bag_follows_aptrust_published_rules(make_env, tmp_path):
    env, path = bag_one_day(make_env, APTRUST)
    stem = "example.edu.gw_2024-03-01"
    assert sorted(p.name for p in env.outbox.iterdir() if not p.name.startswith(".")) == [f"{stem}.tar"]
    assert path.read_bytes()[:2] != b"\x1f\x8b", "APTrust takes an uncompressed tar"
    assert not re.search(r"\.b\d+\.of\d+$", stem), "one bag per period: no multi-part name"
    names = extract(path, tmp_path / "x")
    assert {n.split("/")[0] for n in names} == {stem}, "untars to one folder named like the tar"
    bag_dir = tmp_path / "x" / stem
    assert bagit.Bag(str(bag_dir)).validate(processes=1)

    manifest = {}
    for line in (bag_dir / "manifest-md5.txt").read_text().splitlines():
        digest, name = line.split(None, 1)
        manifest[name] = digest
    payload = sorted(p.relative_to(bag_dir).as_posix() for p in (bag_dir / "data").rglob("*") if p.is_file())
    assert sorted(manifest) == payload
    for name in payload:
        assert hashlib.md5((bag_dir / name).read_bytes()).hexdigest() == manifest[name], name
    assert (bag_dir / "manifest-sha256.txt").is_file()
    assert {"tagmanifest-md5.txt", "tagmanifest-sha256.txt"} <= set(os.listdir(bag_dir))
    assert "aptrust-info.txt" in (bag_dir / "tagmanifest-md5.txt").read_text()
    assert not (bag_dir / "fetch.txt").exists()

    info = tag_lines(bag_dir / "aptrust-info.txt")
    assert "gw" in info["Title"] and "2024-03-01" in info["Title"]
    assert info["Access"] == "Restricted" and info["Access"] in APTRUST_ACCESS
    assert info["Storage-Option"] == "Glacier-Deep-OR" and info["Storage-Option"] in APTRUST_STORAGE
    assert info["Description"]
    assert tag_lines(bag_dir / "bag-info.txt")["BagIt-Profile-Identifier"] == APTRUST_ID
    assert verify_paths([path]) == []
    assert_each_capture_once(env)


def test_archivematica_tar_gz_unpacks_as_archivematicas_zipped_bag_transfer(make_env, tmp_path):
    env, path = bag_one_day(make_env, {"profile": "archivematica"})
    assert path.name == "gw_2024-03-01.tar.gz"
    with gzip.open(path) as stream:  # a gzip stream around a tar
        assert tarfile.open(fileobj=stream).getmembers()
    processing = tmp_path / "processing"
    processing.mkdir()
    package = processing / path.name
    shutil.copy(path, package)
    # extract_zipped_transfer.py: `tar zxvf <package> --directory=<parent of the destination>`,
    # destination = the name without .gz, then without .tar (fileOperations.get_extract_dir_name)
    subprocess.run(["tar", "zxvf", str(package), f"--directory={processing}"], check=True, capture_output=True)
    destination = processing / Path(Path(path.name).stem).stem
    assert sorted(os.listdir(processing)) == sorted([package.name, destination.name])
    bag = bagit.Bag(str(destination))
    assert bag.validate(processes=1)
    for label in read_bag_info(destination):
        ET.fromstring(f"<{label}/>")  # create_mets_v2 makes each label an XML element
    assert bag.info["External-Identifier"] == "gw_2024-03-01"
    assert verify_paths([path]) == []
    assert_each_capture_once(env)


def test_a_collection_overrides_the_profile(make_env):
    collections = [
        {"name": "gw", "type": "timeline", "accounts": ["gwtweets"], "bagging": {"profile": "aptrust"}},
        {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "c"}]},
    ]
    env = make_env(bagging={**APTRUST, "profile": "archivematica"}, collections=collections)
    env.fill("gw", days=1)
    env.fill("climate", days=1)
    results = bag_completed_periods(env.context(now=LATER))
    assert sorted(Path(r["path"]).name for r in results) == ["climate_2024-03-01.tar.gz", "example.edu.gw_2024-03-01.tar"]
    assert verify_paths([r["path"] for r in results]) == []
    assert_each_capture_once(env)


def test_verify_reports_a_bad_aptrust_access_value(make_env, tmp_path):
    _env, path = bag_one_day(make_env, APTRUST)
    extract(path, tmp_path / "x")
    bag_dir = tmp_path / "x" / path.name[: -len(".tar")]
    info = bag_dir / "aptrust-info.txt"
    info.write_text(info.read_text().replace("Access: Restricted", "Access: Public"))
    rewrite_tag_manifests(bag_dir)
    damaged = tmp_path / path.name
    with tarfile.open(damaged, "w") as tar:
        tar.add(bag_dir, arcname=bag_dir.name)
    [problem] = verify_paths([damaged])
    assert "aptrust-info.txt" in problem and "Access" in problem and "'Public'" in problem


def test_verify_reports_a_missing_btr_recommended_field(make_env):
    _env, path = bag_one_day(make_env, {"profile": "btr"})
    info = path / "bag-info.txt"
    info.write_text("".join(line for line in info.read_text().splitlines(True) if not line.startswith("Bag-Count:")))
    rewrite_tag_manifests(path)
    assert bagit.Bag(str(path)).is_valid()
    [problem] = verify_paths([path])
    assert "bag-info.txt" in problem and "Bag-Count" in problem and "BTR" in problem


def test_verify_reports_an_aptrust_bag_that_is_not_a_tar(make_env, tmp_path):
    _env, path = bag_one_day(make_env, APTRUST)
    extract(path, tmp_path)
    problems = verify_paths([tmp_path / path.name[: -len(".tar")]])
    assert len(problems) == 1 and "serialized" in problems[0]


def test_verify_reports_a_tar_gz_whose_folder_is_not_its_name(make_env, tmp_path):
    _env, path = bag_one_day(make_env, {"profile": "archivematica"})
    renamed = tmp_path / "other_2024-03-01.tar.gz"
    shutil.copy(path, renamed)
    [problem] = verify_paths([renamed])
    assert "top folder" in problem and "other_2024-03-01" in problem


def test_a_bag_violating_its_profile_is_rolled_back_not_handed_off(make_env):
    """Configuration checks keep this from happening; if a rule still fails, nothing is handed off."""
    env = make_env(bagging={"profile": "btr"})
    env.fill("gw", days=1)
    before = archive_captures(env.archive)
    config = env.config()
    config = dataclasses.replace(config, organization=dataclasses.replace(config.organization, address=""))
    ctx = JobContext.open(config)
    ctx.clock = lambda: LATER
    [result] = bag_completed_periods(ctx)
    assert result["status"] == "failed" and "Organization-Address" in result["error"], result
    assert archive_captures(env.archive) == before
    assert [p.name for p in env.outbox.iterdir()] == [".staging"] and staging_entries(env) == []


def test_profile_documents_are_never_fetched(make_env, monkeypatch):
    """bagit_profile fetches a profile by URL unless handed one: any attempt fails this test."""
    import urllib.request

    def refuse(*args, **kwargs):
        raise AssertionError(f"network fetch attempted: {args}")

    monkeypatch.setattr(bagit_profile, "urlopen", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    for bagging in ({"profile": "btr"}, APTRUST):
        _env, path = bag_one_day(make_env, bagging, name=bagging["profile"])
        assert verify_paths([path]) == []


def test_btr_document_is_what_bagit_profile_reads(tmp_path):
    """The shipped file is a BagIt Profiles document bagit_profile accepts as it is."""
    document = json.loads(shipped("btr-bagit-profile.json").read_text())
    assert document["BagIt-Profile-Info"]["BagIt-Profile-Identifier"] == BTR_ID
    bagit_profile.Profile(BTR_ID, profile=document)


def test_verify_of_a_damaged_profiled_bag_reports_instead_of_raising(make_env):
    _env, path = bag_one_day(make_env, {"profile": "btr"})
    info = path / "bag-info.txt"
    info.write_bytes(info.read_bytes().replace(b"Bag-Count", b"Bag-\xff\xfeCount"))
    problems = verify_paths([path])
    assert problems and any("bag-info.txt" in p for p in problems)


@pytest.fixture(scope="module")
def aptrust_folder(tmp_path_factory) -> Path:
    """One APTrust bag, unpacked: property tests edit copies of its aptrust-info.txt."""
    from tests.bagging.conftest import BagEnv, write_config

    root = tmp_path_factory.mktemp("aptrust")
    env = BagEnv(root, write_config(root, bagging=APTRUST))
    env.fill("gw", days=1)
    [result] = bag_completed_periods(env.context(now=LATER))
    extract(Path(result["path"]), root / "x")
    return root / "x" / "example.edu.gw_2024-03-01"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    access=st.one_of(st.sampled_from(sorted(APTRUST_ACCESS)), st.sampled_from(sorted(APTRUST_ACCESS)).map(str.upper),
                     st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)),
    storage=st.one_of(st.sampled_from(sorted(APTRUST_STORAGE)),
                      st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)),
)
def test_aptrust_values_are_judged_as_aptrust_judges_them(aptrust_folder, tmp_path_factory, access, storage):
    """Allowed: the published values, compared case-insensitively (as APTrust's ingest does)."""
    from sfm_archiver.bagging import profiles

    bag = tmp_path_factory.mktemp("v") / aptrust_folder.name
    shutil.copytree(aptrust_folder, bag)
    info = bag / "aptrust-info.txt"
    lines = [line for line in info.read_text().splitlines() if not line.startswith(("Access:", "Storage-Option:"))]
    info.write_text("\n".join(lines + [f"Access: {access}", f"Storage-Option: {storage}"]) + "\n")
    rewrite_tag_manifests(bag)
    problems = profiles.get("aptrust").problems(bag, f"{bag.name}.tar")
    expected = set()
    if access.lower() not in {v.lower() for v in APTRUST_ACCESS}:
        expected.add("Access")
    if storage.lower() not in {v.lower() for v in APTRUST_STORAGE}:
        expected.add("Storage-Option")
    assert {tag for tag in ("Access", "Storage-Option") for p in problems if f"{tag} " in p} == expected, problems
    assert len(problems) == len(expected)


def test_a_simulator_harvest_bagged_with_each_profile_holds_what_was_published(make_env, make_simulator, tmp_path):
    """Real captures (`user-timeline` against the simulator), one collection per profile: every bag
    verifies, and each holds exactly the posts the simulator published (a differential check too)."""
    import subprocess
    import sys
    from datetime import datetime, timezone

    import yaml

    accounts = [{"id": "501", "username": "prof_a", "tweets": 40}, {"id": "502", "username": "prof_b", "tweets": 25}]
    sim = make_simulator(tokens=["profile-token"], accounts=accounts)
    profiles = ("none", "btr", "aptrust", "archivematica")
    collections = [{"name": f"tl-{p}", "type": "timeline", "accounts": ["prof_a", "prof_b"], "bagging": {"profile": p}}
                   for p in profiles]
    env = make_env(bagging={"period": "hour", "grace": "0s", "aptrust": {"institution": "example.edu"}}, collections=collections)
    document = yaml.safe_load(env.config_path.read_text())
    document["x"] = {"bearer_token": "profile-token", "api_base_url": sim.base_url}
    env.config_path.write_text(yaml.safe_dump(document))
    harvest = subprocess.run([sys.executable, "-m", "sfm_archiver", "--config", str(env.config_path), "user-timeline"],
                             capture_output=True, text=True, timeout=120)
    assert harvest.returncode == 0, harvest.stderr

    results = bag_completed_periods(env.context(now=datetime.now(timezone.utc) + timedelta(hours=2)))
    assert results and all(r["status"] == "bagged" for r in results), results
    assert verify_paths([r["path"] for r in results]) == []
    published = {a["id"]: {post["id"] for post in sim.published()["posts"][a["id"]]} for a in accounts}
    for profile in profiles:
        held: dict[str, set[str]] = {}
        for result in (r for r in results if r["collection"] == f"tl-{profile}"):
            unpacked = tmp_path / "unpacked" / Path(result["path"]).name
            folder = Path(result["path"])
            if folder.is_file():
                extract(folder, unpacked)
                [folder] = unpacked.iterdir()
            for capture in (folder / "data").rglob("*-timeline-*.jsonl.gz"):
                for line in gzip.decompress(capture.read_bytes()).splitlines():
                    page = json.loads(line)
                    held.setdefault(page["__sfm"]["account"]["id"], set()).update(p["id"] for p in page.get("data", []))
        assert held == published, profile
