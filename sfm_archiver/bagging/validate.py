"""Full validation of a bag directory: bagit-python's validator plus our structural checks.

bagit-python's `Bag.validate` does not change the working directory, so small bags are
validated inline; larger ones in one of the spawned worker processes, where bagit hashes with
its own forked process pool (forking is safe in that single-threaded worker, unsafe in the
threaded daemon). Every problem names the file it concerns.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from sfm_archiver.bagging import tagfiles
from sfm_archiver.bagging.hashing import HashPool


def bagit_problems(bag_dir: Path) -> tuple[list[str], bool]:
    """Run bagit-python's full validation in this process (one process, no chdir).

    Returns (problems, named): `named` is False when bagit failed without naming files
    (e.g. a Payload-Oxum mismatch stops it before it compares checksums).
    """
    return _bagit_validate(str(bag_dir), 1)


def _bagit_validate(path: str, processes: int) -> tuple[list[str], bool]:
    import bagit

    logging.getLogger("bagit").setLevel(logging.CRITICAL)
    try:
        bagit.Bag(path).validate(processes=processes)
    except bagit.BagValidationError as error:
        details = [_describe(path, detail) for detail in error.details]
        if details:
            return details, True
        return [f"{path}/bag-info.txt: {error.message}"], False
    except bagit.BagError as error:
        return [f"{path}: {error}"], False
    except ValueError as error:  # bagit lets these escape: a tag file not UTF-8, a NUL in a name
        return [f"{path}: a tag file is unreadable (damaged?): {error}"], False
    except OSError as error:
        return [f"{getattr(error, 'filename', None) or path}: cannot read: {error.strerror or error}"], False
    return [], True


def _describe(bag_path: str, detail) -> str:
    import bagit

    where = os.path.join(bag_path, str(getattr(detail, "path", "")))
    if isinstance(detail, bagit.ChecksumMismatch):
        return f"{where}: {detail.algorithm} checksum mismatch (manifest {detail.expected}, file {detail.found})"
    if isinstance(detail, bagit.FileMissing):
        return f"{where}: listed in the manifest but missing"
    if isinstance(detail, bagit.UnexpectedFile):
        return f"{where}: present but listed in no manifest"
    return f"{bag_path}: {detail}"


def run_bagit_validation(
    bag_dir: Path,
    pool: HashPool,
    payload_bytes: int,
    stop: Callable[[], bool] = lambda: False,
) -> tuple[list[str], bool]:
    """bagit-python's full validation: inline for small bags, else in a worker process of `pool`.

    bagit hashes with its own process pool and hands it work in chunks of len/(4 x processes)
    files, which leaves one core idle at the end of a bag of a few large files; twice as many
    processes as cores gives chunks half that size (the cores are shared, the total work is not).
    """
    if pool.workers <= 1 or payload_bytes < pool.inline_below:
        return bagit_problems(bag_dir)
    return pool.call(_bagit_validate, str(bag_dir), 2 * pool.workers, stop=stop)


def structure_problems(bag_dir: Path, required_info: tuple[str, ...] = tagfiles.REQUIRED_INFO) -> list[str]:
    """Our checks besides bagit's: bag-info fields, Payload-Oxum, tag files covered by tag manifests."""
    problems = []
    info_path = bag_dir / "bag-info.txt"
    info = tagfiles.read_bag_info(bag_dir)
    if not info_path.exists():
        return [f"{info_path}: missing"]
    for label in required_info:
        if not info.get(label) or not info[label][0]:
            problems.append(f"{info_path}: required field {label} is missing")
    problems.extend(_oxum_problems(bag_dir, info_path, info))
    problems.extend(_tag_manifest_problems(bag_dir))
    return problems


def _oxum_problems(bag_dir: Path, info_path: Path, info: dict) -> list[str]:
    values = info.get("Payload-Oxum")
    if not values:
        return []
    total_bytes, files = _payload_totals(bag_dir / "data")
    expected = values[0]
    found = tagfiles.payload_oxum(total_bytes, files)
    byte_text, _, count_text = expected.partition(".")
    if not (byte_text.isdigit() and count_text.isdigit()):
        return [f"{info_path}: malformed Payload-Oxum {expected!r} (expected <bytes>.<files>)"]
    if expected != found:
        return [f"{info_path}: Payload-Oxum {expected} but the payload holds {found} (bytes.files)"]
    return []


def _payload_totals(data_dir: Path) -> tuple[int, int]:
    total, count = 0, 0
    for folder, _dirs, files in os.walk(data_dir):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_size
            count += 1
    return total, count


def _tag_manifest_problems(bag_dir: Path) -> list[str]:
    manifests = sorted(bag_dir.glob("tagmanifest-*.txt"))
    if not manifests:
        return [f"{bag_dir}: no tag manifest (tagmanifest-<algorithm>.txt)"]
    problems = []
    tag_files = {
        entry.name for entry in os.scandir(bag_dir)
        if entry.is_file(follow_symlinks=False) and not entry.name.startswith("tagmanifest-")
    }
    for manifest in manifests:
        listed = set(tagfiles.read_manifest(manifest))
        for name in sorted(tag_files - listed):
            problems.append(f"{bag_dir / name}: tag file not listed in {manifest.name}")
    return problems


def validate_bag_dir(bag_dir: Path, pool: HashPool, payload_bytes: int, stop: Callable[[], bool] = lambda: False) -> list[str]:
    """Everything checked before a bag is handed off (capture contents are `verify`'s job)."""
    problems = structure_problems(bag_dir)
    found, _named = run_bagit_validation(bag_dir, pool, payload_bytes, stop)
    return problems + found
