"""`verify` on sound and damaged bags: each damage is caught and the file is named."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tarfile
from datetime import timedelta
from pathlib import Path

import bagit
import pytest

from sfm_archiver.bagging import bag_completed_periods, verify_paths
from tests.bagging.conftest import DAY1

LATER = DAY1 + timedelta(days=30)
CAPTURE = "data/2024/03/01/14/gw-timeline-20240301T140000Z.jsonl.gz"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """One sound bag folder, built once; each test damages its own copy."""
    from tests.bagging.conftest import BagEnv, write_config

    root = tmp_path_factory.mktemp("pristine")
    env = BagEnv(root, write_config(root))
    env.fill("gw", days=1, hours=(3, 14), lines=40)
    [result] = bag_completed_periods(env.context(now=LATER))
    return Path(result["path"])


@pytest.fixture
def bag(pristine, tmp_path) -> Path:
    copy = tmp_path / pristine.name
    shutil.copytree(pristine, copy)
    return copy


def flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def only_about(problems: list[str], path: Path) -> bool:
    return bool(problems) and all(str(path) in p for p in problems if "Payload-Oxum" not in p)


def test_sound_bag_passes_bagit_and_verify(bag):
    assert bagit.Bag(str(bag)).is_valid()
    assert verify_paths([bag]) == []


def test_flipped_byte_is_named(bag):
    target = bag / CAPTURE
    flip_byte(target, target.stat().st_size // 2)
    assert not bagit.Bag(str(bag)).is_valid()
    problems = verify_paths([bag])
    assert any(str(target) in p and "sha256 checksum mismatch" in p for p in problems)
    assert only_about(problems, target), problems


def test_truncated_file_is_named(bag):
    target = bag / CAPTURE
    data = target.read_bytes()
    target.write_bytes(data[: len(data) - 40])
    assert not bagit.Bag(str(bag)).is_valid()
    problems = verify_paths([bag])
    assert any(str(target) in p and "checksum mismatch" in p for p in problems), problems
    assert any(str(target) in p and "decompress" in p for p in problems), problems
    assert any("Payload-Oxum" in p for p in problems)


def test_missing_file_is_named(bag):
    target = bag / CAPTURE
    target.unlink()
    assert not bagit.Bag(str(bag)).is_valid()
    problems = verify_paths([bag])
    assert any(str(target) in p and "missing" in p for p in problems), problems


def test_extra_file_is_named(bag):
    extra = bag / "data/2024/03/01/14/intruder.jsonl.gz"
    extra.write_bytes(gzip.compress(b'{"x": 1}\n'))
    assert not bagit.Bag(str(bag)).is_valid()
    problems = verify_paths([bag])
    assert any(str(extra) in p and "no manifest" in p for p in problems), problems


def test_edited_tag_file_and_missing_field_are_named(bag):
    info = bag / "bag-info.txt"
    info.write_text("\n".join(line for line in info.read_text().splitlines() if not line.startswith("Bag-Group-Identifier")) + "\n")
    problems = verify_paths([bag])
    assert any(str(info) in p and "Bag-Group-Identifier" in p for p in problems), problems
    assert any(str(info) in p and "checksum mismatch" in p for p in problems), problems


def test_capture_that_does_not_parse_is_named(make_env):
    env = make_env()
    folder = env.archive / "gw/2024/03/01/05"
    folder.mkdir(parents=True)
    broken = folder / "gw-timeline-20240301T050000Z.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"data": []}\n{"data": [\n'))
    damaged = folder / "gw-timeline-20240301T051000Z.jsonl.gz"
    damaged.write_bytes(gzip.compress(b'{"data": []}\n')[:-6])
    [result] = bag_completed_periods(env.context(now=LATER))
    assert bagit.Bag(result["path"]).is_valid(), "fixity holds: the damage is in the content"
    problems = verify_paths([result["path"]])
    assert any("gw-timeline-20240301T050000Z.jsonl.gz:2: not valid JSON" in p for p in problems), problems
    assert any("gw-timeline-20240301T051000Z.jsonl.gz" in p and "decompress" in p for p in problems), problems


def make_tar(bag: Path) -> Path:
    tar_path = bag.with_name(bag.name + ".tar")
    with tarfile.open(tar_path, "w") as tar:
        tar.add(bag, arcname=bag.name)
    return tar_path


def test_tar_bags_are_verified_and_damage_named(bag):
    good = make_tar(bag)
    assert verify_paths([good]) == []
    flip_byte(bag / CAPTURE, 100)
    good.unlink()
    bad = make_tar(bag)
    problems = verify_paths([bad])
    assert any(f"{bad}:{bag.name}/{CAPTURE}" in p and "checksum mismatch" in p for p in problems), problems
    truncated = bag.parent / "cut" / bad.name
    truncated.parent.mkdir()
    truncated.write_bytes(bad.read_bytes()[:5000])
    assert any(str(truncated) in p for p in verify_paths([truncated]))


def test_verify_command_exits_1_naming_the_file(bag, tmp_path):
    command = [sys.executable, "-m", "sfm_archiver", "verify", str(bag)]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "valid" in ok.stdout
    target = bag / CAPTURE
    flip_byte(target, 10)
    failed = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert str(target) in failed.stderr
    missing = subprocess.run([sys.executable, "-m", "sfm_archiver", "verify", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "does not exist" in missing.stderr


@pytest.mark.parametrize("profile", ["none", "archivematica"])
def test_a_tar_cut_inside_its_last_header_is_reported(make_env, tmp_path, profile):
    """tarfile lists such a tar without its last member; the bag left would look sound."""
    env = make_env(bagging={"serialization": "tar", "profile": profile})
    env.fill("gw", days=1)
    [result] = bag_completed_periods(env.context(now=LATER))
    path = Path(result["path"])
    raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    with tarfile.open(path) as tar:
        last = tar.getmembers()[-1]
    cut = raw[: last.offset + 100]
    damaged = tmp_path / path.name
    damaged.write_bytes(gzip.compress(cut) if path.name.endswith(".gz") else cut)
    with tarfile.open(damaged) as tar:
        assert len(tar.getmembers()) < len(tarfile.open(path).getmembers())  # no error from tarfile itself
    [problem] = verify_paths([damaged])
    assert str(damaged) in problem and "truncated" in problem
