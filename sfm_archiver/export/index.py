"""The export's on-disk index: which capture of each post to keep, and where links led.

Dedupe needs to know, before writing, which of a post's captures wins. A first pass offers
(post id, captured_at, position) of every capture to a temporary SQLite file; the second pass
writes only the winning positions. Memory stays flat whatever the number of posts: the index
holds ids and positions, never posts, and SQLite keeps only a bounded page cache in memory.
Ties on `captured_at` go to the later position under `latest` and the earlier under `first`, so
the result does not depend on anything but the inputs and their order.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Callable, Iterable

SLOT_BITS = 40  # a position is file_number << SLOT_BITS | line << 12 | slot within the line
_BATCH = 5000
_CACHE_KIB = 16 * 1024
INDEX_FILE = "export-index.sqlite3"


def position(file_number: int, line: int, slot: int) -> int:
    return (file_number << SLOT_BITS) | (line << 12) | slot


class ExportIndex:
    def __init__(self, folder: Path, dedupe: str):
        self.dedupe = dedupe
        self.path = Path(folder) / INDEX_FILE
        self.db = sqlite3.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", f"cache_size=-{_CACHE_KIB}", "temp_store=FILE"):
            self.db.execute(f"PRAGMA {pragma}")
        self.db.execute("CREATE TABLE best (id TEXT PRIMARY KEY, stamp TEXT NOT NULL, pos INTEGER NOT NULL) WITHOUT ROWID")
        self.db.execute("CREATE TABLE links (url TEXT PRIMARY KEY, final TEXT) WITHOUT ROWID")
        better = ">" if dedupe == "latest" else "<"
        self._upsert = (
            "INSERT INTO best (id, stamp, pos) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            f"stamp = excluded.stamp, pos = excluded.pos WHERE (excluded.stamp, excluded.pos) {better} (best.stamp, best.pos)"
        )
        self._pending: list[tuple[str, str, int]] = []
        self.links = 0

    def offer_line(self, captured_at: str, line_pos: int, entries: list[tuple[int, str]]) -> None:
        """Captures of posts, (slot, post id) of one line at `line_pos` (position | slot); of each post
        the better of a capture and the one held so far stays."""
        self._pending += [(post_id, captured_at, line_pos | slot) for slot, post_id in entries]
        if len(self._pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.db.execute("BEGIN")
            self.db.executemany(self._upsert, self._pending)
            self.db.execute("COMMIT")
            self._pending = []

    def seal(self) -> int:
        """End of the first pass: index the winners by position; returns the number of posts."""
        self._flush()
        self.db.execute("CREATE INDEX best_pos ON best (pos)")
        return self.db.execute("SELECT count(*) FROM best").fetchone()[0]

    def winners(self, file_number: int) -> set[int]:
        """Positions (line << 12 | slot) of the captures to write from one file."""
        low = file_number << SLOT_BITS
        rows = self.db.execute("SELECT pos FROM best WHERE pos >= ? AND pos < ?", (low, low + (1 << SLOT_BITS)))
        return {pos - low for (pos,) in rows}

    def add_links(self, pairs: Iterable[tuple[str, str | None]]) -> None:
        """(url, final_url) of link checks; a later check of a URL replaces an earlier one."""
        self.db.execute("BEGIN")
        for url, final in pairs:
            self.db.execute("INSERT OR REPLACE INTO links (url, final) VALUES (?, ?)", (url, final))
            self.links += 1
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()


def final_url(db: sqlite3.Connection, url: str) -> str | None:
    """Where a link led, from an index's `links` (None: not checked, or it led nowhere)."""
    row = db.execute("SELECT final FROM links WHERE url = ?", (url,)).fetchone()
    return row[0] if row else None


def final_url_reader(path: Path) -> Callable[[str], str | None]:
    """`final_url` of the index at `path`, opened read-only (by another process of the export)."""
    db = sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)
    return lambda url: final_url(db, url)
