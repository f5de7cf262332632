"""Crash-safe gzip JSON-lines capture writer (DESIGN.md section 4).

Lines are buffered; each flush writes the buffer as ONE complete gzip member with ONE
`write()` on an O_APPEND descriptor. A kill -9 therefore loses at most the batch in flight and
never leaves a member half-written in the page cache; a power cut can tear only the last member,
which `seal` cuts off on the next start. Files are named once and never reopened.
"""

from __future__ import annotations

import os
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, Protocol

from sfm_archiver.durable import fsync_dir, makedirs_durable, write_all
from sfm_archiver.errors import StorageError
from sfm_archiver.storage import layout
from sfm_archiver.timeutil import Clock, utcnow


class OpenFileRegistry(Protocol):
    """Where open capture files are recorded, so bagging skips them and restarts seal them."""

    def register_open_file(self, path: Path, collection: str, pid: int) -> None: ...

    def unregister_open_file(self, path: Path) -> None: ...


def compress_member(data: bytes, level: int) -> bytes:
    """`data` as one complete gzip member."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


class CaptureWriter:
    """Appends capture lines of one collection and kind to files rotated by the clock.

    `sync_every_flush=True` makes every flush durable (fdatasync) before it returns; with False
    the caller decides when data must be durable by calling `sync()` (e.g. once per account,
    before its checkpoint advances).
    """

    def __init__(
        self,
        archive_root: Path,
        collection: str,
        kind: str,
        *,
        clock: Clock = utcnow,
        registry: OpenFileRegistry | None = None,
        rotation: timedelta = timedelta(hours=1),
        compresslevel: int = 6,
        max_batch_bytes: int = 4 << 20,
        sync_every_flush: bool = True,
        extension: str = "jsonl.gz",
    ):
        if kind not in layout.KINDS:
            raise ValueError(f"unknown capture kind {kind!r}")
        self.archive_root = Path(archive_root)
        self.collection = layout.check_collection_name(collection)
        self.kind = kind
        self.clock = clock
        self.registry = registry
        self.rotation = rotation
        self.compresslevel = compresslevel
        self.max_batch_bytes = max_batch_bytes
        self.sync_every_flush = sync_every_flush
        self.extension = extension
        self._buffer: list[bytes] = []
        self._buffered_bytes = 0
        self._fd: int | None = None
        self._size = 0
        self._path: Path | None = None
        self._rotate_at: datetime | None = None
        self._unsynced = False
        self.lines_written = 0
        self.bytes_written = 0

    @property
    def path(self) -> Path | None:
        """The file currently open, if any."""
        return self._path

    def append(self, line: bytes) -> None:
        """Buffer one capture line (it must end with a newline)."""
        self._buffer.append(line)
        self._buffered_bytes += len(line)
        if self._buffered_bytes >= self.max_batch_bytes:
            self.flush()

    def write_batch(self, lines: Iterable[bytes]) -> Path:
        """Write `lines` as one member and return the file; durable when this returns."""
        for line in lines:
            self._buffer.append(line)
            self._buffered_bytes += len(line)
        self.flush()
        self.sync()
        assert self._path is not None
        return self._path

    def flush(self) -> None:
        """Write the buffered lines as one gzip member (no-op when nothing is buffered)."""
        self.rotate_if_due()
        if not self._buffer:
            return
        data = b"".join(self._buffer)
        member = compress_member(data, self.compresslevel)
        fd = self._open_for(self.clock())
        self._write_member(fd, member)
        self.lines_written += len(self._buffer)
        self.bytes_written += len(member)
        self._buffer.clear()
        self._buffered_bytes = 0
        self._unsynced = True
        if self.sync_every_flush:
            self.sync()

    def write_member(self, member: bytes, lines: int, sync: bool = True) -> None:
        """Append one gzip member the caller compressed (e.g. on several cores), like `flush`.

        Lines buffered with `append` must have been flushed first: members stay in order.
        `sync=False` defers the fdatasync of `sync_every_flush` (to the last of several members).
        """
        if self._buffer:
            raise StorageError("write_member with lines still buffered: flush() first")
        self.rotate_if_due()
        fd = self._open_for(self.clock())
        self._write_member(fd, member)
        self.lines_written += lines
        self.bytes_written += len(member)
        self._unsynced = True
        if self.sync_every_flush and sync:
            self.sync()

    def _write_member(self, fd: int, member: bytes) -> None:
        """One write() of a whole member. If it fails part way (disk full), the file is cut back
        to its previous size: a torn member followed by later good ones would make every later
        batch unreadable. The lines stay buffered for the caller to retry or give up."""
        try:
            write_all(fd, member)
        except OSError as error:
            try:
                os.ftruncate(fd, self._size)
            except OSError:
                pass
            raise StorageError(f"{self._path}: cannot write capture batch: {error}") from error
        self._size += len(member)

    def sync(self) -> None:
        """Make everything flushed so far durable."""
        if self._fd is not None and self._unsynced:
            os.fdatasync(self._fd)
            self._unsynced = False

    def rotate_if_due(self, now: datetime | None = None) -> bool:
        """Close the current file when its rotation time has passed; called by a timer too."""
        if self._fd is None or self._rotate_at is None:
            return False
        if (now or self.clock()) < self._rotate_at:
            return False
        self._close_file()
        return True

    def close(self) -> None:
        """Flush, make durable and close (on shutdown)."""
        self.flush()
        self._close_file()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open_for(self, now: datetime) -> int:
        if self._fd is not None:
            return self._fd
        folder = layout.hour_folder(self.archive_root, self.collection, now)
        makedirs_durable(folder)
        path = layout.unused_capture_path(folder, self.collection, self.kind, now, self.extension)
        if self.registry is not None:
            self.registry.register_open_file(path, self.collection, os.getpid())
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except OSError as error:
            # A name taken since we looked belongs to another writer: leave its registration alone.
            if self.registry is not None and not isinstance(error, FileExistsError):
                self.registry.unregister_open_file(path)
            raise StorageError(f"{path}: cannot create capture file: {error}") from error
        fsync_dir(folder)
        self._size = 0
        self._path = path
        self._rotate_at = self._next_rotation(now)
        return self._fd

    def _next_rotation(self, now: datetime) -> datetime:
        """The next boundary of the rotation period, aligned to the clock (and to the hour)."""
        step = self.rotation.total_seconds()
        epoch = now.timestamp()
        boundary = (int(epoch // step) + 1) * step
        hour_end = (int(epoch // 3600) + 1) * 3600
        return datetime.fromtimestamp(min(boundary, hour_end), now.tzinfo)

    def _close_file(self) -> None:
        if self._fd is None:
            return
        self.sync()
        os.close(self._fd)
        self._fd = None
        if self.registry is not None and self._path is not None:
            self.registry.unregister_open_file(self._path)
        self._path = None
        self._rotate_at = None


def seal_abandoned_files(registry_store, collection: str | None = None) -> list[tuple[Path, int]]:
    """Seal capture files registered as open whose writer is gone.

    A file is abandoned when the process that registered it is dead, or alive but no longer
    holds the file open (its pid was reused, e.g. by a restarted container's daemon). Each is
    truncated to its last complete gzip member and unregistered, so the bagger may take it; a
    file left empty (killed before its first batch) is removed, since an empty file is not valid
    gzip. Files a live writer is using, in this process or another, are left alone. Returns
    (path, bytes removed) for every file sealed.
    """
    from sfm_archiver.storage.gzmembers import seal

    sealed = []
    for entry in registry_store.open_files(collection):
        path = Path(entry["path"])
        if _still_being_written(entry["pid"], path):
            continue
        removed = seal(path) if path.exists() else 0
        if path.exists() and path.stat().st_size == 0:
            path.unlink()
            fsync_dir(path.parent)
        registry_store.unregister_open_file(path)
        sealed.append((path, removed))
    return sealed


def _still_being_written(pid: int, path: Path) -> bool:
    from sfm_archiver.state import pid_alive

    if not pid_alive(pid):
        return False
    if not path.exists():
        return True  # registered a moment before it is created
    return _holds_open(pid, path)


def _holds_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (Linux /proc); assumed when it cannot be told."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        names = os.listdir(fd_dir)
        target = os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    for name in names:
        try:
            opened = os.stat(fd_dir / name)
        except OSError:
            continue
        if (opened.st_dev, opened.st_ino) == (target.st_dev, target.st_ino):
            return True
    return False
