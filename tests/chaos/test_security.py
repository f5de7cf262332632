"""Security: the bearer token stays secret, names cannot escape their folders, symlinks are not
followed into (or out of) the archive, the outbox never receives a symlink, loose secret files warn.
"""

from __future__ import annotations

import gzip
import os
import signal
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from sfm_archiver.config import load_config, load_config_text
from sfm_archiver.errors import ConfigError, StorageError
from sfm_archiver.jobs.organize import organize
from sfm_archiver.simulator import Scenario, Simulator
from sfm_archiver.storage import layout
from sfm_archiver.timeutil import utcnow
from tests.chaos.helpers import cli, daemon_process, old_capture, wait_for_every_kind
from tests.invariants import check_storage

SECRET = "AAAAAAAAAAAAAAAAAAAAAsecretBearer0123456789xyz"


def base_config(root: Path, api: str, **sections) -> dict:
    return {
        "organization": {"name": "Secure Library", "contact_email": "archives@example.edu"},
        "paths": {"archive": str(root / "archive"), "state": str(root / "state"), "outbox": str(root / "outbox")},
        "x": {"api_base_url": api, "bearer_token_file": str(root / "token")},
        "collections": [
            {"name": "tl", "type": "timeline", "schedule": "every 1s", "backfill": 50, "accounts": ["sfm_alpha", "sfm_beta"]},
            {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}]},
        ],
        "jobs": {"update_usernames": "every 2s", "fetch_urls": "every 3s", "bag": "every 2s"},
        "bagging": {"period": "hour", "grace": "0s", "checksums": ["sha256"]},
        "disk": {"warning_free": "10MB", "min_free": "5MB"},
        **sections,
    }


def every_file(root: Path):
    for folder, _dirs, names in os.walk(root):
        for name in names:
            yield Path(folder) / name


def holds_secret(path: Path) -> bool:
    if path.is_symlink():
        return False
    data = path.read_bytes()
    if SECRET.encode() in data:
        return True
    if path.name.endswith(".gz"):
        try:
            return SECRET.encode() in gzip.decompress(data)
        except (OSError, EOFError):
            return False
    if path.name.endswith(".tar"):
        with tarfile.open(path) as archive:
            for member in archive.getmembers():
                handle = archive.extractfile(member)
                if handle is not None:
                    content = handle.read()
                    if SECRET.encode() in content or (member.name.endswith(".gz") and SECRET.encode() in gzip.decompress(content)):
                        return True
    return False


@pytest.mark.parametrize("serialization", ["none", "tar"])
def test_the_token_reaches_no_log_capture_warc_bag_state_or_status(tmp_path, serialization):
    scenario = Scenario.from_dict({"tokens": [SECRET], "streams": {"messages_per_second": 20},
                                   "links": {"probability": 0.5}})
    with Simulator(scenario) as sim:
        (tmp_path / "token").write_text(SECRET + "\n")
        (tmp_path / "token").chmod(0o600)
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(base_config(tmp_path, sim.base_url, log_level="DEBUG",
                                                     bagging={"period": "hour", "grace": "0s", "checksums": ["sha256"],
                                                              "serialization": serialization})))
        old = old_capture(tmp_path / "archive", "tl", 3)
        env = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "NOTIFY_SOCKET")}
        with open(tmp_path / "daemon.log", "wb") as log, daemon_process(config, log, env) as daemon:
            wait_for_every_kind(tmp_path, old, 40)
            outputs = [cli("--config", str(config), *args) for args in
                       (["status"], ["status", "--json"], ["check-config"], ["ledger", "show", "--json"])]
            daemon.send_signal(signal.SIGHUP)
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(60) == 0
    assert sim.counters()["unauthorized"] == 0 and sim.counters()["calls_total"] > 0  # the token was really used
    for result in outputs:
        assert SECRET not in result.stdout + result.stderr
    assert SECRET not in (tmp_path / "daemon.log").read_text(errors="replace")
    report = check_storage(tmp_path / "archive", tmp_path / "outbox", secrets=[SECRET])
    assert report.ok, report.summary()
    assert list((tmp_path / "archive").rglob("*.warc.gz")), "WARCs were written (and checked)"
    leaking = [path for root in ("archive", "outbox", "state") for path in every_file(tmp_path / root) if holds_secret(path)]
    assert leaking == []


@pytest.mark.parametrize("name", ["../evil", "..", "/abs", "a/b", "tl/../../x", ".hidden", "UPPER", "a\\b", "x" * 65, ""])
def test_collection_names_cannot_leave_the_archive(tmp_path, name):
    document = base_config(tmp_path, "http://127.0.0.1:9")
    document["x"] = {"api_base_url": "http://127.0.0.1:9", "bearer_token": "t"}
    document["collections"][0]["name"] = name
    with pytest.raises(ConfigError) as raised:
        load_config_text(yaml.safe_dump(document), tmp_path / "c.yaml", check_paths=False)
    assert any("name" in problem for problem in raised.value.problems)
    with pytest.raises(ValueError):
        layout.hour_folder(tmp_path, name, utcnow())


def test_legacy_names_and_symlinked_destinations_cannot_escape(tmp_path):
    src, dest, outside = tmp_path / "src", tmp_path / "dest", tmp_path / "outside"
    for folder in (src, dest, outside):
        folder.mkdir()
    body = gzip.compress(b'{"data":{"id":"1"}}\n')
    for name in ("..-2026-11-27T13-00-00Z.gz", ".-2026-11-27T13-00-00Z.gz", "...-2026-11-27T13:00:00Z.gz",
                 "ok-2026-11-27T13-00-00Z.gz", "victim-2026-11-27T13-00-00Z.gz"):
        (src / name).write_bytes(body)
    (dest / "victim").symlink_to(outside, target_is_directory=True)  # a planted link in DEST
    (src / "linked-2026-11-27T14-00-00Z.gz").symlink_to(outside / "x.gz")
    (outside / "x.gz").write_bytes(body)
    report = organize(src, dest, include_recent=True)
    assert [target.relative_to(dest).as_posix() for _, target in report.moved] == \
        ["ok/2026/11/27/13/ok-2026-11-27T13-00-00Z.gz"]
    assert sorted(path.name for path in outside.rglob("*")) == ["x.gz"], "nothing was written through the link"
    assert (src / "victim-2026-11-27T13-00-00Z.gz").exists() and report.errors
    assert {p.name for p in report.unrecognised} >= {"..-2026-11-27T13-00-00Z.gz", ".-2026-11-27T13-00-00Z.gz",
                                                     "linked-2026-11-27T14-00-00Z.gz"}
    with pytest.raises(StorageError):
        organize(src, outside / "x.gz")


def test_symlinks_in_the_archive_are_not_followed_and_never_reach_the_outbox(tmp_path):
    archive, outbox, outside = tmp_path / "archive", tmp_path / "outbox", tmp_path / "outside"
    outside.mkdir()
    secret_file = outside / "private.jsonl.gz"
    secret_file.write_bytes(gzip.compress(b'{"private": true, "__sfm": {}}\n'))
    real = old_capture(archive, "tl", 3)
    hour = real.parent
    (hour / f"tl-timeline-{real.name.split('-')[2].split('.')[0]}-7.jsonl.gz").symlink_to(secret_file)
    linked_hour = layout.hour_folder(archive, "tl", utcnow() - timedelta(hours=4))
    linked_hour.parent.mkdir(parents=True, exist_ok=True)
    foreign = outside / "hour"
    foreign.mkdir()
    (foreign / "tl-timeline-20200101T000000Z.jsonl.gz").write_bytes(secret_file.read_bytes())
    linked_hour.symlink_to(foreign, target_is_directory=True)
    (tmp_path / "token").write_text("t")
    (tmp_path / "token").chmod(0o600)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(tmp_path, "http://127.0.0.1:9")))

    result = cli("--config", str(config), "bag", "tl")

    assert secret_file.read_bytes() and (foreign / "tl-timeline-20200101T000000Z.jsonl.gz").exists(), \
        "files behind links stay where they are"
    real_bag = f"tl_{layout.period_of(utcnow() - timedelta(hours=3), 'hour').label}"
    assert [p.name for p in outbox.glob("tl_*")] == [real_bag], result.stdout + result.stderr
    assert not real.exists(), "the real capture was bagged"
    links = [path for path in every_file(outbox) if path.is_symlink()]
    links += [Path(folder) for folder, _, _ in os.walk(outbox) if Path(folder).is_symlink()]
    assert links == [], result.stdout + result.stderr
    for bag in outbox.glob("tl_*"):
        contents = [p.name for p in bag.rglob("*")] if bag.is_dir() else tarfile.open(bag).getnames()
        assert not any("private" in name or "20200101" in name for name in contents)
        assert all(not p.is_symlink() for p in bag.rglob("*")) if bag.is_dir() else True
    report = check_storage(archive, outbox)
    assert {v.check for v in report.violations} <= {"archive.symlink"}


def test_a_secret_file_readable_by_others_warns(tmp_path):
    token = tmp_path / "token"
    token.write_text("secret-token-value\n")
    token.chmod(0o644)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(base_config(tmp_path, "http://127.0.0.1:9")))
    assert any("readable by group or others" in w for w in load_config(config).warnings)
    result = cli("--config", str(config), "check-config")
    assert result.returncode == 0
    assert "readable by group or others" in result.stderr and "secret-token-value" not in result.stdout + result.stderr
    token.chmod(0o600)
    assert not load_config(config).warnings
