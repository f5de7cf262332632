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
from typing import Iterable

from sfm_archiver.durable import fsync_dir
from sfm_archiver.errors import StorageError
from sfm_archiver.storage.rotating import OpenFileRegistry, RotatingFile
from sfm_archiver.timeutil import Clock, utcnow


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
        self._file = RotatingFile(
            archive_root, collection, kind, extension, clock=clock, registry=registry, rotation=rotation,
            block_name="capture batch",
        )
        self.collection = self._file.collection
        self.kind = kind
        self.clock = clock
        self.compresslevel = compresslevel
        self.max_batch_bytes = max_batch_bytes
        self.sync_every_flush = sync_every_flush
        self._buffer: list[bytes] = []
        self._buffered_bytes = 0
        self.lines_written = 0
        self.bytes_written = 0

    @property
    def path(self) -> Path | None:
        """The file currently open, if any."""
        return self._file.path

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
        path = self._file.path
        assert path is not None
        return path

    def flush(self) -> None:
        """Write the buffered lines as one gzip member (no-op when nothing is buffered).

        If the write fails (disk full) the lines stay buffered for the caller to retry or drop.
        """
        self.rotate_if_due()
        if not self._buffer:
            return
        member = compress_member(b"".join(self._buffer), self.compresslevel)
        self._file.append(member)
        self.lines_written += len(self._buffer)
        self.bytes_written += len(member)
        self._buffer.clear()
        self._buffered_bytes = 0
        if self.sync_every_flush:
            self.sync()

    def write_member(self, member: bytes, lines: int, sync: bool = True) -> None:
        """Append one gzip member the caller compressed (e.g. on several cores), like `flush`.

        Lines buffered with `append` must have been flushed first: members stay in order.
        `sync=False` defers the fdatasync of `sync_every_flush` (to the last of several members).
        """
        if self._buffer:
            raise StorageError("write_member with lines still buffered: flush() first")
        self._file.append(member)
        self.lines_written += lines
        self.bytes_written += len(member)
        if self.sync_every_flush and sync:
            self.sync()

    def sync(self) -> None:
        """Make everything flushed so far durable."""
        self._file.sync()

    def rotate_if_due(self, now: datetime | None = None) -> bool:
        """Close the current file when its rotation time has passed; called by a timer too."""
        return self._file.rotate_if_due(now)

    def close(self) -> None:
        """Flush, make durable and close (on shutdown)."""
        self.flush()
        self._file.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
