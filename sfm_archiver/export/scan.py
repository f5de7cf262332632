"""The index pass's fast reading of a capture line: only what dedupe and the filters look at.

`msgspec` decodes a line against a small schema (post ids, times and authors, author usernames,
`captured_at`) and skips everything else without building it, several times faster than
`json.loads`. A line the schema does not fit (a field of an unexpected type, a line that is not
an object) takes the slow path, `json.loads`, which is always right; both give the same record
shape (tests/export/test_scan.py checks that they agree), so one piece of code selects posts.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from sfm_archiver.export.flatten import REFERENCED_SLOT


class _Post(msgspec.Struct, omit_defaults=True):
    id: Any = None
    created_at: Any = None
    author_id: Any = None


class _User(msgspec.Struct, omit_defaults=True):
    id: Any = None
    username: Any = None


class _Includes(msgspec.Struct, omit_defaults=True):
    users: list[_User] | None = None
    tweets: list[_Post] | None = None


class _Capture(msgspec.Struct, omit_defaults=True):
    captured_at: Any = None
    platform: Any = None


class _Line(msgspec.Struct, omit_defaults=True):
    data: list[_Post] | _Post | None = None
    includes: _Includes | None = None
    sfm: _Capture | None = msgspec.field(default=None, name="__sfm")


_DECODER = msgspec.json.Decoder(_Line)


def light_record(line: bytes) -> dict | None:
    """The line as a dict holding at least the fields above (X's lines) or every field (another
    platform's: the schema is X's); None when it is not a JSON object (the writing pass reports it)."""
    try:
        decoded = _DECODER.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return slow_record(line)
    if not _is_x(decoded):
        return slow_record(line)
    return msgspec.to_builtins(decoded)


def _is_x(decoded: _Line) -> bool:
    return decoded.sfm is None or decoded.sfm.platform in (None, "x")


def index_entries(line: bytes, referenced: bool) -> tuple[str, list[tuple[int, str]]] | None:
    """What the index pass keeps of an X line when no filter applies: its `captured_at` ("" when it
    has none) and (slot, id) of its posts, as `line_posts` of `light_record` gives them, read from
    the decoded schema without building dicts. None when the line does not fit the schema or is
    another platform's (the general path then reads it)."""
    try:
        decoded = _DECODER.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if not _is_x(decoded):
        return None
    data = decoded.data
    if data.__class__ is _Post:
        data = [data]
    entries = [(slot, post.id) for slot, post in enumerate(data or ()) if post.id.__class__ is str]
    tweets = decoded.includes.tweets if referenced and entries and decoded.includes is not None else None
    if tweets:
        entries += [(slot, post.id) for slot, post in enumerate(tweets, start=REFERENCED_SLOT) if post.id.__class__ is str]
    stamp = decoded.sfm.captured_at if decoded.sfm is not None else None
    return (stamp if stamp.__class__ is str else ""), entries


def slow_record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
