"""Filesystem moves the bagger relies on: a rename that never replaces, and same-device checks."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

from sfm_archiver.durable import fsync_dir, makedirs_durable

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def _load_renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def rename_noreplace(source: Path, target: Path) -> None:
    """Rename `source` to `target`, failing with FileExistsError if `target` exists.

    Uses renameat2(RENAME_NOREPLACE), so the check and the rename are one atomic step. Where
    the kernel or filesystem lacks it, falls back to a check then rename (the caller holds the
    collection's bag lock, so only a foreign process could race it).
    """
    if _renameat2 is not None:
        result = _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise FileExistsError(code, f"{target} already exists", str(target))
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, f"cannot rename {source} to {target}: {os.strerror(code)}")
    if os.path.lexists(target):
        raise FileExistsError(errno.EEXIST, f"{target} already exists", str(target))
    os.rename(source, target)


def same_filesystem(a: Path, b: Path) -> bool:
    """True when both existing paths live on one filesystem (so a rename moves without copying)."""
    return os.stat(a).st_dev == os.stat(b).st_dev


def move_file(source: Path, target: Path) -> None:
    """Move one file within a filesystem, creating the target's folder durably."""
    makedirs_durable(target.parent)
    rename_noreplace(source, target)


def fsync_dirs(folders: set[Path]) -> None:
    """fsync each folder that still exists (renames in and out of it become durable)."""
    for folder in sorted(folders):
        if folder.is_dir():
            fsync_dir(folder)


def remove_empty_dirs(folders: list[Path]) -> None:
    """Remove each folder that is empty, deepest first; a folder with anything in it stays."""
    for folder in sorted(set(folders), key=lambda p: len(Path(p).parts), reverse=True):
        try:
            Path(folder).rmdir()
        except FileNotFoundError:
            continue
        except OSError:
            continue
        fsync_dir(Path(folder).parent)
