"""`verify` on damaged bags: never a traceback, and every damage is found and named.

Real bags (folder and `.tar`) are made once by the bagger from real capture files; each example
copies one and damages it: a byte changed or the file cut short (payload, manifest, bag-info,
bagit.txt), a file removed or added, a payload replaced by one that no longer decompresses with
its manifests rewritten to match, a payload turned into a symlink. An undamaged copy verifies
clean; a damaged one yields at least one problem and raises nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import tarfile
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.bagging import bag_completed_periods, verify_paths
from sfm_archiver.config import load_config
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.writer import CaptureWriter
from sfm_archiver.timeutil import utcnow
from tests.chaos.helpers import write_config


def make_bags(root: Path, serialization: str) -> Path:
    """One bag of an hour long past, made by the real bagger; returns its path."""
    config = load_config(write_config(root / "config.yaml", root, "http://127.0.0.1:9", [
        {"name": "gw", "type": "timeline", "schedule": "every 1h", "accounts": ["sfm_alpha"]}],
        bagging={"period": "hour", "grace": "0s", "checksums": ["sha256", "md5"], "serialization": serialization,
                 "empty_periods": False}))
    old = utcnow() - timedelta(hours=5)
    for kind in ("timeline", "users"):
        writer = CaptureWriter(config.paths.archive, "gw", kind, clock=lambda: old)
        meta = sfm_metadata(captured_at=old, collection="gw", job="user_timeline", url="http://127.0.0.1/x")
        writer.write_batch([envelope(b'{"data":[{"id":"%d","text":"t"}],"meta":{}}' % n, meta) for n in range(40)])
        writer.close()
    ctx = JobContext.open(config)
    try:
        results = bag_completed_periods(ctx, before=utcnow())
    finally:
        ctx.store.close()
    bagged = [r for r in results if r["status"] == "bagged"]
    assert len(bagged) == 1, results
    return Path(bagged[0]["path"])


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    return {kind: make_bags(tmp_path_factory.mktemp(kind), kind) for kind in ("none", "tar")}


DAMAGES = ("flip", "cut", "remove", "add", "undecompressable", "symlink")
TARGETS = ("payload", "manifest-sha256.txt", "manifest-md5.txt", "bag-info.txt", "bagit.txt",
           "tagmanifest-sha256.txt", "provenance")


def _files(bag: Path, target: str) -> list[Path]:
    if target == "payload":
        return sorted(p for p in (bag / "data").rglob("*.gz") if "provenance" not in p.parts)
    if target == "provenance":
        return sorted(p for p in (bag / "data" / "provenance").rglob("*") if p.is_file())
    return [bag / target] if (bag / target).exists() else []


def _rewrite_manifests(bag: Path, changed: Path) -> None:
    """Make every manifest (and the tag manifests) agree with `changed`'s new bytes."""
    relative = changed.relative_to(bag).as_posix()
    for manifest in sorted(bag.glob("manifest-*.txt")):
        algorithm = manifest.name[len("manifest-"):-4]
        digest = hashlib.new(algorithm, changed.read_bytes()).hexdigest()
        lines = [f"{digest}  {relative}" if line.split(None, 1)[1] == relative else line
                 for line in manifest.read_text().splitlines()]
        manifest.write_text("\n".join(lines) + "\n")
    for tagmanifest in sorted(bag.glob("tagmanifest-*.txt")):
        algorithm = tagmanifest.name[len("tagmanifest-"):-4]
        lines = []
        for line in tagmanifest.read_text().splitlines():
            digest, name = line.split(None, 1)
            if name.startswith("manifest-"):
                digest = hashlib.new(algorithm, (bag / name).read_bytes()).hexdigest()
            lines.append(f"{digest}  {name}")
        tagmanifest.write_text("\n".join(lines) + "\n")


def damage(bag: Path, how: str, target: str, where: float, byte: int) -> bool:
    """Damage `bag` in place; False when the plan does not apply to this bag."""
    files = _files(bag, target)
    if how == "remove" and target.startswith("tagmanifest"):
        return False  # tag manifests are optional in BagIt: a bag without one is still valid
    if how == "add":
        (bag / "data" / "stray.jsonl.gz").write_bytes(gzip.compress(b"{}\n"))
        return True
    if not files:
        return False
    victim = files[int(where * len(files)) % len(files)]
    data = victim.read_bytes()
    if how == "flip":
        at = int(where * len(data)) % max(1, len(data))
        if not data:
            return False
        replacement = byte if byte != data[at] else (byte + 1) % 256
        victim.write_bytes(data[:at] + bytes([replacement]) + data[at + 1:])
    elif how == "cut":
        cut = data[:int(where * len(data))]
        if cut.rstrip() == data.rstrip():
            return False  # nothing but a final newline (or nothing at all) removed: the same text
        victim.write_bytes(cut)
    elif how == "remove":
        victim.unlink()
    elif how == "undecompressable":
        if target != "payload":
            return False
        victim.write_bytes(data[: max(1, len(data) // 2)])
        _rewrite_manifests(bag, victim)
    elif how == "symlink":
        outside = bag.parent / "outside.bin"
        outside.write_bytes(data)
        victim.unlink()
        victim.symlink_to(outside)
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["none", "tar"]), st.sampled_from(DAMAGES), st.sampled_from(TARGETS),
       st.floats(0, 0.999), st.integers(0, 255))
def test_every_damage_is_found_and_nothing_raises(bags, serialization, how, target, where, byte):
    source = bags[serialization]
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        if serialization == "tar":
            with tarfile.open(source) as archive:
                archive.extractall(work, filter="fully_trusted")
            bag = work / source.name[:-4]
        else:
            bag = work / source.name
            shutil.copytree(source, bag, symlinks=True)
        assert verify_paths([bag], workers=1) == []
        if not damage(bag, how, target, where, byte):
            return
        if serialization == "tar":
            damaged = work / source.name
            with tarfile.open(damaged, "w") as archive:
                archive.add(bag, arcname=bag.name)
            shutil.rmtree(bag)
            bag = damaged
        problems = verify_paths([bag], workers=1)
        assert problems, f"{how} of {target} went unnoticed"
        assert all(isinstance(problem, str) and problem for problem in problems)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.floats(0, 0.999))
def test_a_cut_tar_file_is_reported(bags, where):
    """Cut anywhere before the last byte of member data (a cut in the zero padding loses nothing)."""
    with tarfile.open(bags["tar"]) as archive:
        members_end = max(member.offset_data + member.size for member in archive.getmembers())
    with tempfile.TemporaryDirectory() as work:
        cut = Path(work) / bags["tar"].name
        cut.write_bytes(bags["tar"].read_bytes()[:int(where * members_end)])
        assert verify_paths([cut], workers=1)
