"""Capture lines: the raw X API JSON object as received, plus one added `__sfm` key.

The payload is never parsed and re-serialised: the `__sfm` member is spliced in before the
closing brace, so every byte the platform sent is kept.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

from sfm_archiver import __version__
from sfm_archiver.errors import BadResponseError
from sfm_archiver.timeutil import rfc3339_ms


def sfm_metadata(
    *,
    captured_at: datetime,
    collection: str,
    job: str,
    url: str | None = None,
    account: dict | None = None,
    **extra,
) -> dict:
    """The `__sfm` provenance object of DESIGN.md section 4."""
    meta = {"captured_at": rfc3339_ms(captured_at), "collection": collection, "job": job}
    if url is not None:
        meta["url"] = url
    if account is not None:
        meta["account"] = account
    meta.update(extra)
    meta["version"] = __version__
    return meta


_LINE_BREAKS = bytes.maketrans(b"\r\n", b"  ")
_EMPTY_OBJECT = re.compile(rb"\{\s*\}")


def envelope(raw: bytes, meta: dict) -> bytes:
    """One capture line (newline included): `raw` with `"__sfm": meta` added as its last key.

    Only the whitespace around the object is dropped, and each CR or LF byte inside it becomes
    one space: in valid JSON those bytes can only be whitespace between tokens (inside strings
    they must be escaped), so the line is one valid object and every other byte is the server's.
    """
    body = raw.strip()
    if not body.startswith(b"{") or not body.endswith(b"}"):
        raise BadResponseError(f"not a JSON object: {body[:80]!r}")
    if b"\n" in body or b"\r" in body:
        body = body.translate(_LINE_BREAKS)
    added = b'"__sfm":' + json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
    head = memoryview(body)[:-1]  # all but the closing brace, not copied until the join
    return b"".join((head, added if _EMPTY_OBJECT.fullmatch(body) else b"," + added, b"}\n"))


def json_line(obj: dict) -> bytes:
    """A capture line for records we build ourselves (URL results)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
