"""Advisory file locks: one daemon per state directory, one writer per collection.

The daemon and one-shot commands (cron jobs, an operator at a terminal) take the same
per-collection lock, so they never harvest or bag the same collection at once. A one-shot
command refuses a busy lock (exit 2); a daemon job waits for it (`LockWait`): it polls the
flock in its own worker thread, so neither the scheduler nor signal handling is held up, and
it gives up at once when the daemon stops.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sfm_archiver.errors import LockBusyError, StopRequested
from sfm_archiver.storage.layout import check_collection_name


@dataclass
class LockWait:
    """How a daemon job takes a busy lock: wait until it frees, poll by poll, until `stop` is set.

    `acquired(lock, waited_seconds)` is called in the job's thread as soon as each lock is held
    (waited 0.0 when it was free), before the job writes anything.
    """

    stop: threading.Event
    acquired: Callable[[FileLock, float], None] = field(default=lambda lock, waited: None)
    poll_seconds: float = 0.2
    on_wait: Callable[[FileLock, str], None] = field(default=lambda lock, holder: None)


class FileLock:
    """An exclusive flock held until `release` (or process death); non-blocking unless given a LockWait."""

    def __init__(self, path: Path, what: str, wait: LockWait | None = None):
        self.path = Path(path)
        self.what = what
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        began = time.monotonic()
        try:
            if not _try_flock(fd):
                holder = _read_holder(fd)
                if self.wait is None:
                    raise LockBusyError(f"{self.what} is busy: held by process {holder or '?'} ({self.path})")
                self._wait_for(fd, holder)
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        if self.wait is not None:
            try:
                self.wait.acquired(self, time.monotonic() - began)
            except BaseException:
                self.release()
                raise
        return self

    def _wait_for(self, fd: int, holder: str) -> None:
        """Poll the flock until it is ours; raise StopRequested when the process is told to stop."""
        self.wait.on_wait(self, holder)
        while not _try_flock(fd):
            if self.wait.stop.wait(self.wait.poll_seconds):
                raise StopRequested(f"stopped while waiting for {self.what} (held by process {holder or '?'})")

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


def collection_lock(state_dir: Path, collection: str, job: str = "harvest", wait: LockWait | None = None) -> FileLock:
    """The lock one job family of a collection holds while it writes (`wait`: the daemon's way to take it)."""
    name = f"{check_collection_name(collection)}.{job}.lock"
    return FileLock(Path(state_dir) / "locks" / name, f"collection {collection!r} ({job})", wait)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 32).decode().strip()
    except OSError:
        return ""
