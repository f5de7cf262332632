"""Reading capture files for the export, fast: gzip through ISA-L and lines through msgspec.

Decompression is the one cost every pass pays; `isal.igzip` reads the same gzip files (several
members included) about three times faster than the standard `gzip` module. A line is decoded
by `msgspec.json` (untyped: the same dicts, lists and values as `json.loads`, about twice as
fast); whatever it does not accept (a lone surrogate escape, a number out of float range, a
byte order mark, anything malformed) goes to `json.loads`, which is always right and names the
problem. tests/export/test_lines.py checks that both agree on arbitrary JSON text.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

import msgspec
from isal import igzip
from isal.isal_zlib import error as IsalError

from sfm_archiver.storage.reader import CaptureProblem, Opener, ProblemSink

_decode = msgspec.json.Decoder().decode
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError)
READ_ERRORS = (OSError, EOFError, zlib.error, IsalError)


def open_gzip(path: str | Path) -> BinaryIO:
    return igzip.open(path, "rb")


def member_gzip(fileobj: BinaryIO) -> BinaryIO:
    """A gzip stream read from an open file object (a member of a `.tar` bag)."""
    return igzip.IGzipFile(fileobj=fileobj, mode="rb")


def read_lines(path: str | Path, on_problem: ProblemSink, opener: Opener | None = None) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of a gzip JSON-lines file; a damaged tail is reported with its line."""
    line_no = 0
    try:
        with opener() if opener else open_gzip(path) as handle:
            for line_no, line in enumerate(handle, start=1):
                yield line_no, line
    except READ_ERRORS as error:
        on_problem(CaptureProblem(Path(path), line_no + 1, f"cannot decompress: {error}"))


def decode_line(line: bytes) -> object:
    """The value of one JSON line, exactly as `json.loads` gives it (which raises ValueError)."""
    try:
        return _decode(line)
    except _DECODE_ERRORS:
        return json.loads(line)


def read_records(path: str | Path, on_problem: ProblemSink, opener: Opener | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) of every line that is a JSON object; other lines are reported."""
    for line_no, line in read_lines(path, on_problem, opener):
        record = object_of(line, path, line_no, on_problem)
        if record is not None:
            yield line_no, record


def object_of(line: bytes, path: str | Path, line_no: int, on_problem: ProblemSink) -> dict | None:
    """The JSON object of a line; None for a blank line or one that is reported (not JSON, not an object)."""
    if not line.strip():
        return None
    try:
        record = decode_line(line)
    except ValueError as error:
        on_problem(CaptureProblem(Path(path), line_no, f"not valid JSON: {error}"))
        return None
    if not isinstance(record, dict):
        on_problem(CaptureProblem(Path(path), line_no, "not a JSON object"))
        return None
    return record
