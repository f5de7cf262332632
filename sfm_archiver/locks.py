"""Advisory file locks: one daemon per state directory, one writer per collection.

The daemon and one-shot commands (cron jobs, an operator at a terminal) take the same
per-collection lock, so they never harvest or bag the same collection at once.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sfm_archiver.errors import LockBusyError
from sfm_archiver.storage.layout import check_collection_name


class FileLock:
    """An exclusive, non-blocking flock held until `release` (or process death)."""

    def __init__(self, path: Path, what: str):
        self.path = Path(path)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockBusyError(f"{self.what} is busy: held by process {holder or '?'} ({self.path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def instance_lock(state_dir: Path) -> FileLock:
    """The lock that makes a second daemon on the same state directory refuse to start."""
    return FileLock(Path(state_dir) / "daemon.lock", "the sfm-archiver daemon for this state directory")


def collection_lock(state_dir: Path, collection: str, job: str = "harvest") -> FileLock:
    """The lock one job family of a collection holds while it writes."""
    name = f"{check_collection_name(collection)}.{job}.lock"
    return FileLock(Path(state_dir) / "locks" / name, f"collection {collection!r} ({job})")


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 32).decode().strip()
    except OSError:
        return ""
