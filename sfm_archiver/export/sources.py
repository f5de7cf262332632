"""Where an export reads from: archive folders, bag folders, `.tar` bags and outboxes.

Every bag is verified in full (`bagging.verify`) before a line of it is read; a bag that fails is
skipped and its problems reported. Nothing here writes: `.tar` members are read in place, never
unpacked beside the bag.
"""

from __future__ import annotations

import json
import re
import tarfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable

from sfm_archiver.bagging.hashing import HashTask, hash_file
from sfm_archiver.bagging.verify import verify_paths
from sfm_archiver.errors import UsageError
from sfm_archiver.export.lines import member_gzip
from sfm_archiver.storage import layout
from sfm_archiver.storage.reader import Opener

_CAPTURE = re.compile(
    r"^(?P<collection>.+)-(?P<kind>" + "|".join(layout.KINDS) + r")-\d{8}T\d{6}Z(?:-\d+)?\.jsonl\.gz$"
)
_HOUR_PATH = re.compile(r"^\d{4}/\d{2}/\d{2}/\d{2}$")
_BAG_NAME = re.compile(r"^(?P<collection>.+)_(?P<label>\d{4}-\d{2}(?:-\d{2}(?:T\d{2})?)?)(?:\.tar|\.tar\.gz|\.tgz)?$")
COMPRESSED_TARS = (".tar.gz", ".tgz")
PROVENANCE_LEDGER = "data/provenance/ledger.jsonl"


@dataclass(frozen=True)
class CaptureFile:
    """One capture file, on disk or inside a `.tar` bag (`opener` then gives its bytes)."""

    label: str
    collection: str
    kind: str
    hour: datetime | None
    opener: Opener | None = None


@dataclass
class Source:
    """One input as the README describes it: what it is, its checksum, what was read or skipped."""

    path: Path
    type: str
    name: str = ""
    checksum: str = ""
    problems: list[str] = field(default_factory=list)
    files: list[CaptureFile] = field(default_factory=list)
    ledger_records: list[dict] = field(default_factory=list)

    @property
    def skipped(self) -> bool:
        return bool(self.problems)


def capture_kind(name: str) -> tuple[str, str] | None:
    """(collection, kind) of a capture file name, also for collections such as `_unrouted`."""
    match = _CAPTURE.match(name)
    return (match["collection"], match["kind"]) if match else None


def open_sources(paths: Iterable[Path], collections: list[str], kinds: set[str], stack: ExitStack) -> list[Source]:
    """Resolve each path to its sources (an outbox gives one per bag) and list their capture files
    of the wanted collections and kinds, oldest hour first. `.tar` bags stay open on `stack`."""
    sources: list[Source] = []
    for path in map(Path, paths):
        if not path.exists():
            raise UsageError(f"--source {path}: does not exist")
        if path.is_file() and path.name.endswith(".tar"):
            sources.append(_tar_bag(path, collections, kinds, stack))
        elif path.is_file() and path.name.endswith(COMPRESSED_TARS):
            sources.append(_unread_compressed(path))
        elif not path.is_dir():
            raise UsageError(f"--source {path}: not an archive folder, a bag (folder or .tar) or an outbox")
        elif (path / "bagit.txt").is_file():
            sources.append(_bag_dir(path, collections, kinds))
        elif bags := _bags_in(path):
            for bag in bags:
                match = _BAG_NAME.match(bag.name)
                if match and match["collection"] not in collections:
                    continue
                if bag.is_dir():
                    sources.append(_bag_dir(bag, collections, kinds))
                elif bag.name.endswith(COMPRESSED_TARS):
                    sources.append(_unread_compressed(bag))
                else:
                    sources.append(_tar_bag(bag, collections, kinds, stack))
        else:
            sources.append(_archive(path, collections, kinds))
    return sources


def _bags_in(folder: Path) -> list[Path]:
    """The bags of an outbox (not its `.staging` or other hidden entries)."""
    return sorted(
        child for child in folder.iterdir()
        if not child.name.startswith(".") and not child.is_symlink()
        and ((child.is_dir() and (child / "bagit.txt").is_file())
             or (child.is_file() and child.name.endswith((".tar",) + COMPRESSED_TARS)))
    )


def _archive(root: Path, collections: list[str], kinds: set[str]) -> Source:
    source = Source(root, "archive")
    for collection in collections:
        collection_root = root / collection
        for folder in layout.hour_folders(collection_root):
            hour = layout.hour_of_folder(collection_root, folder)
            for path in sorted(folder.iterdir()):
                parts = capture_kind(path.name)
                if parts and parts[1] in kinds and path.is_file() and not path.is_symlink():
                    source.files.append(CaptureFile(str(path), collection, parts[1], hour))
    return source


def _bag_dir(bag: Path, collections: list[str], kinds: set[str]) -> Source:
    source = Source(bag, "bag", bag.name, sha256_of(bag / "manifest-sha256.txt"))
    source.problems = verify_paths([bag])
    if source.problems:
        return source
    data = bag / "data"
    for folder in layout.hour_folders(data):
        hour = layout.hour_of_folder(data, folder)
        for path in sorted(folder.iterdir()):
            parts = capture_kind(path.name)
            if parts and parts[0] in collections and parts[1] in kinds:
                source.files.append(CaptureFile(str(path), parts[0], parts[1], hour))
    ledger = bag / PROVENANCE_LEDGER
    if ledger.is_file():
        source.ledger_records = _json_lines(ledger.read_bytes())
    return source


def _unread_compressed(path: Path) -> Source:
    """A compressed bag is listed as skipped (never passed over in silence): its members cannot
    be read in place without decompressing the whole file again for each one."""
    return Source(path, "tar", path.name, sha256_of(path), problems=[
        f"{path}: a compressed bag is not read by export; unpack it and give the folder as --source"])


def _tar_bag(path: Path, collections: list[str], kinds: set[str], stack: ExitStack) -> Source:
    source = Source(path, "tar", path.name[: -len(".tar")], sha256_of(path))
    source.problems = verify_paths([path])
    if source.problems:
        return source
    tar = stack.enter_context(tarfile.open(path, "r:"))
    members = []
    for member in tar.getmembers():
        top, _, rel = member.name.partition("/")
        folder, _, name = rel.rpartition("/")
        if member.isfile() and rel == PROVENANCE_LEDGER:
            source.ledger_records = _json_lines(tar.extractfile(member).read())
        if not (member.isfile() and folder.startswith("data/") and _HOUR_PATH.match(folder[5:])):
            continue
        parts = capture_kind(name)
        if parts and parts[0] in collections and parts[1] in kinds:
            hour = layout.hour_of_folder(Path("data"), Path(folder))
            members.append((folder, name, CaptureFile(f"{path}:{member.name}", parts[0], parts[1], hour,
                                                      _member_opener(tar, member))))
    source.files = [item for _, _, item in sorted(members, key=lambda entry: entry[:2])]
    return source


def _member_opener(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Opener:
    return lambda: member_gzip(tar.extractfile(member))


def _json_lines(data: bytes) -> list[dict]:
    records = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def sha256_of(path: Path) -> str:
    """The sha256 of a file, or "" when it cannot be read (the README then shows none)."""
    try:
        return hash_file(HashTask(str(path), ("sha256",))).digests["sha256"]
    except OSError:
        return ""
