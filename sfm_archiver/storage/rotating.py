"""The one file a capture or WARC writer appends to: named by layout, rotated by the clock.

Every append is ONE write() on an O_APPEND descriptor of a file created with O_EXCL (a name is
never reopened). The file is registered as open in the state store while written, so bagging
leaves its period alone and a restart can seal it if the writer died.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Protocol

from sfm_archiver.durable import fsync_dir, makedirs_durable, sync_data, write_all
from sfm_archiver.errors import StorageError
from sfm_archiver.storage import layout
from sfm_archiver.timeutil import Clock


class OpenFileRegistry(Protocol):
    """Where open capture files are recorded, so bagging skips them and restarts seal them."""

    def register_open_file(self, path: Path, collection: str, pid: int) -> None: ...

    def unregister_open_file(self, path: Path) -> None: ...


def next_rotation(now: datetime, rotation: timedelta) -> datetime:
    """The next rotation boundary, aligned to the clock and never past the end of the hour."""
    step = rotation.total_seconds()
    epoch = now.timestamp()
    boundary = (int(epoch // step) + 1) * step
    hour_end = (int(epoch // 3600) + 1) * 3600
    return datetime.fromtimestamp(min(boundary, hour_end), now.tzinfo)


class RotatingFile:
    """Appends whole blocks (gzip members) to `<collection>-<kind>-<stamp>.<extension>` files.

    `header(path)` gives the bytes that must start each new file (a WARC's warcinfo record); they
    go out in the same write() as the first block, so a file never holds a header alone.
    """

    def __init__(
        self,
        archive_root: Path,
        collection: str,
        kind: str,
        extension: str,
        *,
        clock: Clock,
        registry: OpenFileRegistry | None = None,
        rotation: timedelta = timedelta(hours=1),
        header: Callable[[Path], bytes] | None = None,
        block_name: str = "data",
    ):
        if kind not in layout.KINDS:
            raise ValueError(f"unknown capture kind {kind!r}")
        self.archive_root = Path(archive_root)
        self.collection = layout.check_collection_name(collection)
        self.kind = kind
        self.extension = extension
        self.clock = clock
        self.registry = registry
        self.rotation = rotation
        self.header = header
        self.block_name = block_name
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._rotate_at: datetime | None = None
        self._pending_header = b""
        self._unsynced = False

    @property
    def path(self) -> Path | None:
        """The file currently open, if any."""
        return self._path

    def ensure_open(self) -> Path:
        """Rotate if due, then open a new file when none is open; return the current file."""
        now = self.clock()
        self.rotate_if_due(now)
        if self._path is None:
            self._open(now)
        assert self._path is not None
        return self._path

    def append(self, block: bytes) -> None:
        """Write `block` (preceded by a new file's header) with one write().

        If the write fails part way (disk full), the file is cut back to its previous size: a
        torn block followed by later good ones would make every later block unreadable.
        """
        self.ensure_open()
        assert self._fd is not None
        data = self._pending_header + block if self._pending_header else block
        try:
            write_all(self._fd, data)
        except OSError as error:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                pass
            raise StorageError(f"{self._path}: cannot write {self.block_name}: {error}") from error
        self._size += len(data)
        self._pending_header = b""
        self._unsynced = True

    def sync(self) -> None:
        """Make everything appended so far durable."""
        if self._fd is not None and self._unsynced:
            sync_data(self._fd)
            self._unsynced = False

    def rotate_if_due(self, now: datetime | None = None) -> bool:
        """Close the current file when its rotation time has passed; called by a timer too."""
        if self._fd is None or self._rotate_at is None or (now or self.clock()) < self._rotate_at:
            return False
        self.close()
        return True

    def close(self) -> None:
        """Make the file durable, close it and release its registration."""
        if self._fd is None:
            return
        self.sync()
        os.close(self._fd)
        self._fd = None
        if self._size == 0 and self._path is not None:
            self._path.unlink(missing_ok=True)  # nothing written: an empty file is not valid gzip
            fsync_dir(self._path.parent)
        if self.registry is not None and self._path is not None:
            self.registry.unregister_open_file(self._path)
        self._path = None
        self._rotate_at = None
        self._pending_header = b""

    def _open(self, now: datetime) -> None:
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
        self._path = path
        self._size = 0
        self._rotate_at = next_rotation(now, self.rotation)
        self._pending_header = self.header(path) if self.header else b""
