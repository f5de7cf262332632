"""`organize`: move legacy SFM stream files into `DEST/<prefix>/YYYY/MM/DD/HH/`.

SFM wrote `<prefix>-YYYY-MM-DDTHH-MM-SSZ.gz` (older versions with colons: `...THH:MM:SSZ.gz`) into
one flat folder. Each file is checked to decompress completely before it moves; damaged,
unrecognised and still-open files stay where they are and are reported. Moves are atomic and
never overwrite: a file already present with the same checksum is a duplicate (the source is
removed), a different file with the same name is kept beside it with a `-N` suffix. A run
interrupted at any point can simply be run again.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sfm_archiver.durable import fsync_dir, makedirs_durable, sync_file, write_all
from sfm_archiver.errors import StorageError

RECENT_SECONDS = 30 * 60
_CHUNK = 1 << 20
_LEGACY_NAME = re.compile(
    r"^(?P<prefix>.+)-(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"T(?P<hour>\d{2})(?P<sep>[-:])(?P<minute>\d{2})(?P=sep)(?P<second>\d{2})Z"
    r"(?P<ext>(?:\.[A-Za-z0-9]+)*\.gz)$"
)
_SAFE_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


@dataclass(frozen=True)
class LegacyName:
    prefix: str
    hour: datetime
    stem: str
    ext: str

    @property
    def relative_folder(self) -> Path:
        return Path(self.prefix) / self.hour.strftime("%Y/%m/%d/%H")


@dataclass
class OrganizeReport:
    """What happened to each file; `problems` are corrupt files and errors (left in place)."""

    moved: list[tuple[Path, Path]] = field(default_factory=list)
    renamed: list[tuple[Path, Path]] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)
    recent: list[Path] = field(default_factory=list)
    unrecognised: list[Path] = field(default_factory=list)
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.corrupt and not self.errors

    def summary(self) -> dict[str, int]:
        return {
            "moved": len(self.moved), "renamed": len(self.renamed), "duplicates": len(self.duplicates),
            "recent": len(self.recent), "unrecognised": len(self.unrecognised), "corrupt": len(self.corrupt),
            "errors": len(self.errors),
        }


def parse_legacy_name(name: str) -> LegacyName | None:
    """The prefix and UTC hour of a legacy stream file name, or None when it is not one."""
    match = _LEGACY_NAME.match(name)
    if not match or not is_safe_prefix(match["prefix"]):
        return None
    try:
        moment = datetime(
            int(match["year"]), int(match["month"]), int(match["day"]),
            int(match["hour"]), int(match["minute"]), int(match["second"]), tzinfo=timezone.utc,
        )
    except ValueError:
        return None
    ext = match["ext"]
    return LegacyName(prefix=match["prefix"], hour=moment, stem=name[: -len(ext)], ext=ext)


def is_safe_prefix(prefix: str) -> bool:
    """A prefix becomes a folder name: no path separators, no `..`, no hidden or odd names."""
    return bool(_SAFE_PREFIX.match(prefix)) and ".." not in prefix


def organize(
    src: Path,
    dest: Path,
    include_recent: bool = False,
    progress: Callable[[str], None] | None = None,
    now: Callable[[], float] = time.time,
) -> OrganizeReport:
    """Move every complete legacy stream file under `src` into its hour folder under `dest`."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise StorageError(f"{src}: not a folder")
    makedirs_durable(dest)
    if dest.is_symlink() or not dest.is_dir():
        raise StorageError(f"{dest}: the destination must be a real folder")
    report = OrganizeReport()
    files = list(_walk(src, dest.resolve(), report))
    cutoff = now() - RECENT_SECONDS
    for index, path in enumerate(files, start=1):
        if progress is not None:
            progress(f"organize: {index}/{len(files)} {path.name}")
        try:
            _organize_one(path, dest, include_recent, cutoff, report)
        except StorageError as error:
            report.errors.append((path, str(error)))
        except OSError as error:
            report.errors.append((path, f"{error.strerror or error}"))
    return report


def _walk(src: Path, dest_resolved: Path, report: OrganizeReport):
    """Regular files below `src`, sorted; symlinks are never followed, `dest` is not entered."""
    for folder, dirs, names in os.walk(src, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() != dest_resolved and not (here / d).is_symlink())
        for name in sorted(names):
            path = here / name
            if name.startswith(".") and ".part-" in name:
                continue
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                report.unrecognised.append(path)
                continue
            yield path


def _organize_one(path: Path, dest: Path, include_recent: bool, cutoff: float, report: OrganizeReport) -> None:
    legacy = parse_legacy_name(path.name)
    if legacy is None:
        report.unrecognised.append(path)
        return
    if not include_recent and os.lstat(path).st_mtime > cutoff:
        report.recent.append(path)
        return
    digest, problem = _verify(path)
    if problem is not None:
        report.corrupt.append((path, problem))
        return
    folder = dest / legacy.relative_folder
    _check_no_symlinks(dest, legacy.relative_folder)
    makedirs_durable(folder)
    for n in range(0, 10_000):
        name = f"{legacy.stem}{f'-{n}' if n else ''}{legacy.ext}"
        target = folder / name
        if os.path.lexists(target):
            if _same_content(target, digest):
                os.unlink(path)
                fsync_dir(path.parent)
                report.duplicates.append((path, target))
                return
            continue
        if _move_no_overwrite(path, target):
            (report.renamed if n else report.moved).append((path, target))
            return
    raise StorageError(f"{path}: too many different files named {legacy.stem}{legacy.ext} in {folder}")


def _verify(path: Path) -> tuple[str, str | None]:
    """(sha256, problem): the file must decompress completely, every gzip member of it."""
    digest = hashlib.sha256()
    decompressor = zlib.decompressobj(31)
    in_member = False
    size = 0
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            data = chunk
            while data:
                if not in_member and not data.strip(b"\0"):
                    break  # zero padding after the last member, as gzip(1) tolerates
                try:
                    decompressor.decompress(data)
                except zlib.error as error:
                    return digest.hexdigest(), f"not a valid gzip file at byte {size - len(data)}: {error}"
                in_member = not decompressor.eof
                if in_member:
                    break
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(31)
    if size == 0:
        return digest.hexdigest(), "empty file"
    if in_member:
        return digest.hexdigest(), "truncated: the last gzip member is incomplete"
    return digest.hexdigest(), None


def _same_content(target: Path, digest: str) -> bool:
    if os.path.islink(target) or not os.path.isfile(target):
        return False
    hasher = hashlib.sha256()
    with open(target, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest() == digest


def _check_no_symlinks(dest: Path, relative: Path) -> None:
    """No folder between `dest` and the hour folder may be a symlink (it could lead elsewhere)."""
    current = dest
    for part in relative.parts:
        current = current / part
        if os.path.islink(current):
            raise StorageError(f"{current}: is a symbolic link; refusing to move files through it")


def _move_no_overwrite(path: Path, target: Path) -> bool:
    """Move atomically without replacing anything; False when `target` appeared meanwhile."""
    try:
        os.link(path, target, follow_symlinks=False)
    except FileExistsError:
        return False
    except OSError as error:
        if error.errno == errno.EXDEV:
            return _copy_across(path, target)
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(target):
            return False
        os.rename(path, target)
        fsync_dir(target.parent)
        fsync_dir(path.parent)
        return True
    fsync_dir(target.parent)
    os.unlink(path)
    fsync_dir(path.parent)
    return True


def _copy_across(path: Path, target: Path) -> bool:
    """Another filesystem: copy to a temporary name, fsync, link into place, then delete."""
    temp = target.with_name(f".{target.name}.part-{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with open(path, "rb") as source:
            while chunk := source.read(_CHUNK):
                write_all(fd, chunk)
        sync_file(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    finally:
        os.unlink(temp)
    fsync_dir(target.parent)
    os.unlink(path)
    fsync_dir(path.parent)
    return True
