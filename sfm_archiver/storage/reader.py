"""Reading captures back (link expansion, verification, invariant checks).

Damaged input is reported as a `CaptureProblem` naming file and line and then skipped, so one bad
file never stops a run over thousands.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Callable, Iterable, Iterator

from sfm_archiver.storage import layout


@dataclass(frozen=True)
class CaptureProblem:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


ProblemSink = Callable[[CaptureProblem], None]
Opener = Callable[[], BinaryIO]


def capture_files(
    archive_root: Path,
    collection: str,
    kinds: Iterable[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Path]:
    """Capture files of `collection` whose hour folder lies in [start, end), oldest first."""
    wanted = set(kinds) if kinds else set(layout.KINDS)
    root = Path(archive_root) / layout.check_collection_name(collection)
    files = []
    for folder in layout.hour_folders(root):
        hour = layout.hour_of_folder(root, folder)
        if (start and hour < start.replace(minute=0, second=0, microsecond=0)) or (end and hour >= end):
            continue
        for path in sorted(folder.iterdir()):
            parts = layout.parse_capture_name(path.name)
            if parts and parts["ext"] == "jsonl.gz" and parts["kind"] in wanted and not path.is_symlink():
                files.append(path)
    return files


def read_lines(path: Path, on_problem: ProblemSink, opener: Opener | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield (line number, raw line) of a gzip JSON-lines file; report a damaged tail.

    `opener` gives the decompressed stream when the file is not on disk by itself (a member of a
    `.tar` bag); `path` then only names it in problems.
    """
    line_no = 0
    try:
        with opener() if opener else gzip.open(path, "rb") as handle:
            for line_no, line in enumerate(handle, start=1):
                yield line_no, line
    except (OSError, EOFError, zlib.error) as error:
        on_problem(CaptureProblem(Path(path), line_no + 1, f"cannot decompress: {error}"))


def read_records(path: Path, on_problem: ProblemSink, opener: Opener | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for every line that parses as a JSON object."""
    for line_no, line in read_lines(path, on_problem, opener):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            on_problem(CaptureProblem(Path(path), line_no, f"not valid JSON: {error}"))
            continue
        if not isinstance(record, dict):
            on_problem(CaptureProblem(Path(path), line_no, "not a JSON object"))
            continue
        yield line_no, record
