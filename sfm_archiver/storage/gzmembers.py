"""Gzip member boundaries: how a file left by a dead writer is sealed.

Each batch is written as one complete gzip member, so the end of the last member that
decompresses completely is a safe place to cut a file whose tail was torn.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from sfm_archiver.durable import sync_file

# Small reads: at each member boundary the rest of the chunk is copied (`unused_data`), so a
# file of many small members (streams flush every second) would cost chunk x members.
_CHUNK = 64 * 1024


def complete_prefix_length(path: Path) -> int:
    """Bytes at the start of `path` that form complete, valid gzip members."""
    good_end = 0
    offset = 0
    decompressor = zlib.decompressobj(31)
    with open(path, "rb") as handle:
        pending = b""
        while True:
            chunk = pending or handle.read(_CHUNK)
            pending = b""
            if not chunk:
                return good_end
            try:
                decompressor.decompress(chunk)
            except zlib.error:
                return good_end
            if decompressor.eof:
                consumed = len(chunk) - len(decompressor.unused_data)
                offset += consumed
                good_end = offset
                pending = decompressor.unused_data
                decompressor = zlib.decompressobj(31)
            else:
                offset += len(chunk)


def seal(path: Path) -> int:
    """Truncate `path` to its last complete gzip member; return the bytes removed."""
    size = os.path.getsize(path)
    keep = complete_prefix_length(path)
    if keep == size:
        return 0
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, keep)
        sync_file(fd)
    finally:
        os.close(fd)
    return size - keep
