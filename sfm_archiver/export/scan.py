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


class _Line(msgspec.Struct, omit_defaults=True):
    data: list[_Post] | _Post | None = None
    includes: _Includes | None = None
    sfm: _Capture | None = msgspec.field(default=None, name="__sfm")


_DECODER = msgspec.json.Decoder(_Line)


def light_record(line: bytes) -> dict | None:
    """The line as a dict holding at least the fields above; None when it is not a JSON object
    (the writing pass reports it)."""
    try:
        return msgspec.to_builtins(_DECODER.decode(line))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return slow_record(line)


def slow_record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
