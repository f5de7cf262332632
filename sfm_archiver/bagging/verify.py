"""`verify`: the full check of bags in the outbox or anywhere else, as folders, `.tar` or `.tar.gz`.

bagit-python's own validation (structure, completeness, every checksum), our structural checks
(bag-info fields, Payload-Oxum, tag manifests covering every tag file), and our content check:
every payload `.jsonl.gz` (and legacy `.gz`) decompresses and each line parses as a JSON object;
`.warc.gz` files decompress completely. When bagit stops before naming a file (a Payload-Oxum
mismatch), the checksums are compared here too, so every problem names its file. Last, the
rules of every profile the bag claims (`sfm_archiver.bagging.profiles.verify_problems`).
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Iterable

from sfm_archiver.bagging import profiles, tagfiles
from sfm_archiver.bagging.hashing import INLINE_BELOW_BYTES, HashPool, HashTask, default_workers, hash_file
from sfm_archiver.bagging.profiles.conformance import package_stem
from sfm_archiver.bagging.validate import run_bagit_validation, structure_problems
from sfm_archiver.storage.reader import read_records

MAX_PROBLEMS_PER_FILE = 3
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
_CHUNK = 1 << 20
_OUTPUT_LIMIT = 8 << 20


def verify_paths(paths: Iterable[Path | str], workers: int | None = None, inline_below: int = INLINE_BELOW_BYTES) -> list[str]:
    """Every problem found in the given bags (folders or .tar files); empty when all are sound."""
    problems: list[str] = []
    with HashPool(workers or default_workers(), inline_below) as pool:
        for path in map(Path, paths):
            if path.is_dir():
                problems.extend(verify_bag_dir(path, pool) + profiles.verify_problems(path))
            elif path.is_file() and path.name.endswith(TAR_SUFFIXES):
                problems.extend(verify_tar(path, pool))
            elif not os.path.lexists(path):
                problems.append(f"{path}: does not exist")
            else:
                problems.append(f"{path}: not a bag (a folder with bagit.txt, or a .tar or .tar.gz of one)")
    return problems


def verify_bag_dir(bag_dir: Path, pool: HashPool) -> list[str]:
    if not (bag_dir / "bagit.txt").is_file():
        return [f"{bag_dir / 'bagit.txt'}: missing (not a bag)"]
    problems = structure_problems(bag_dir) + _symlink_problems(bag_dir)
    on_disk = _payload_on_disk(bag_dir)
    payload_bytes = sum(on_disk.values())
    found, named = run_bagit_validation(bag_dir, pool, payload_bytes)
    if any("Payload-Oxum" in p for p in problems):
        found = [p for p in found if "Payload-Oxum validation failed" not in p]
    problems.extend(found)
    manifest = _manifest_entries(bag_dir)
    if not named:
        for rel in sorted(set(manifest) - set(on_disk)):
            problems.append(f"{bag_dir / rel}: listed in the manifest but missing")
        for rel in sorted(set(on_disk) - set(manifest)):
            problems.append(f"{bag_dir / rel}: present but listed in no manifest")
    checked = sorted((rel for rel in on_disk if rel in manifest), key=lambda rel: on_disk[rel], reverse=True)
    items = [(str(bag_dir / rel), () if named else tuple(sorted(manifest[rel]))) for rel in checked]
    for path, digests, file_problems in pool.map(inspect_file, items, [on_disk[rel] for rel in checked]):
        rel = Path(path).relative_to(bag_dir).as_posix()
        for algorithm, digest in digests.items():
            expected = manifest[rel][algorithm]
            if digest != expected:
                problems.append(f"{path}: {algorithm} checksum mismatch (manifest {expected}, file {digest})")
        problems.extend(file_problems)
    return problems


def verify_tar(tar_path: Path, pool: HashPool) -> list[str]:
    """Unpack into a temporary folder (safely: no links, no paths outside it) and verify that,
    with the profiles the bag claims (its package name counts: `.tar.gz` is Archivematica's)."""
    expected_top = package_stem(tar_path.name)
    with tempfile.TemporaryDirectory(prefix="sfm-verify-") as temp:
        try:
            with tarfile.open(tar_path, "r:*") as tar:
                tops = {member.name.split("/")[0] for member in tar.getmembers()}
                if tops != {expected_top}:
                    return [f"{tar_path}: must hold exactly one top folder named {expected_top}, found {sorted(tops)}"]
                if not _ends_with_end_marker(tar):
                    return [f"{tar_path}: truncated: no end-of-archive blocks after its last member (members may be missing)"]
                tar.extractall(temp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            return [f"{tar_path}: unreadable tar: {error}"]
        bag_dir = Path(temp) / expected_top
        found = verify_bag_dir(bag_dir, pool) + profiles.verify_problems(bag_dir, tar_path.name)
        return [problem.replace(str(bag_dir), f"{tar_path}:{expected_top}") for problem in found]


def _ends_with_end_marker(tar: tarfile.TarFile) -> bool:
    """True when two zero blocks follow the last member, as every tar writer puts them.

    tarfile stops silently at a header cut short after the first member, so a tar cut inside
    its last header lists one member less and would otherwise look like a smaller, sound bag.
    """
    tar.fileobj.seek(tar.offset)
    marker = tar.fileobj.read(2 * tarfile.BLOCKSIZE)
    return len(marker) == 2 * tarfile.BLOCKSIZE and not marker.strip(b"\0")


def _symlink_problems(bag_dir: Path) -> list[str]:
    """A bag holds its own files: a symlink (to anywhere) breaks on transfer and may lead outside."""
    problems = []
    for folder, dirs, files in os.walk(bag_dir):
        for name in sorted(dirs + files):
            if os.path.islink(os.path.join(folder, name)):
                problems.append(f"{os.path.join(folder, name)}: a symbolic link (a bag must hold its own files)")
    return problems


def _payload_on_disk(bag_dir: Path) -> dict[str, int]:
    sizes = {}
    for folder, _dirs, files in os.walk(bag_dir / "data"):
        for name in files:
            path = Path(folder) / name
            sizes[path.relative_to(bag_dir).as_posix()] = path.lstat().st_size
    return sizes


def _manifest_entries(bag_dir: Path) -> dict[str, dict[str, str]]:
    entries: dict[str, dict[str, str]] = {}
    for manifest in sorted(bag_dir.glob("manifest-*.txt")):
        algorithm = manifest.name[len("manifest-") : -len(".txt")]
        for rel, digest in tagfiles.read_manifest(manifest).items():
            entries.setdefault(rel, {})[algorithm] = digest
    return entries


def inspect_file(path: str, algorithms: tuple[str, ...]) -> tuple[str, dict[str, str], list[str]]:
    """Digests (when asked) and content problems of one payload file."""
    digests = {}
    if algorithms:
        try:
            digests = hash_file(HashTask(path, algorithms)).digests
        except OSError as error:
            return path, {}, [f"{path}: cannot read: {error.strerror or error}"]
    return path, digests, content_problems(Path(path))


def content_problems(path: Path) -> list[str]:
    """Capture files must decompress and parse; provenance JSON must parse."""
    name = path.name
    problems: list[str] = []
    try:
        if name.endswith(".warc.gz"):
            _decompress_all(path)
        elif name.endswith(".gz"):
            for _ in read_records(path, lambda problem: problems.append(str(problem))):
                if len(problems) > MAX_PROBLEMS_PER_FILE:
                    break
        elif name.endswith(".json"):
            json.loads(path.read_bytes())
        elif name.endswith(".jsonl"):
            for number, line in enumerate(path.read_bytes().splitlines(), start=1):
                if line.strip():
                    try:
                        json.loads(line)
                    except ValueError as error:
                        problems.append(f"{path}:{number}: not valid JSON: {error}")
                        break
    except ValueError as error:
        problems.append(f"{path}: not valid JSON: {error}")
    except (OSError, EOFError, zlib.error) as error:
        problems.append(f"{path}: cannot decompress: {error}")
    return problems[:MAX_PROBLEMS_PER_FILE]


def _decompress_all(path: Path) -> None:
    """Decompress every gzip member of a file (output discarded), raising on damage or truncation."""
    decompressor = zlib.decompressobj(31)
    in_member = False
    with open(path, "rb") as handle:
        while True:
            data = handle.read(_CHUNK)
            if not data:
                break
            while data:
                decompressor.decompress(data, _OUTPUT_LIMIT)
                if decompressor.eof:
                    data = decompressor.unused_data
                    decompressor = zlib.decompressobj(31)
                    in_member = False
                else:
                    data = decompressor.unconsumed_tail
                    in_member = True
    if in_member:
        raise EOFError("the last gzip member is truncated")
