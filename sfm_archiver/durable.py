"""Durability primitives: every fsync in the project goes through here."""

from __future__ import annotations

import os
from pathlib import Path


def sync_file(fd: int) -> None:
    """Make a file's data and metadata durable (its size after a truncate, say)."""
    os.fsync(fd)


def sync_data(fd: int) -> None:
    """Make a file's appended data durable; cheaper than sync_file when only data was added."""
    os.fdatasync(fd)


def sync_path(path: Path) -> None:
    """sync_file for a file given by name (one closed by a library that wrote it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a created, renamed or removed name) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: Path) -> None:
    """Create `path` and fsync each parent whose entries changed."""
    missing = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        fsync_dir(directory.parent)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a whole file or nothing: temp file beside it, fsync, rename, fsync the folder."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        write_all(fd, data)
        sync_file(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_dir(path.parent)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte; os.write may write less than asked on some filesystems."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below `root` (used before a bag is handed off)."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            sync_path(Path(folder, name))
        fsync_dir(Path(folder))
