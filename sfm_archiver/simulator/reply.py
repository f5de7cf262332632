"""What a route answers, independent of the HTTP server that writes it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    abort: bool = False  # close the connection without answering (a hung upstream)
    stream: Any = None  # a streams.Connection: the body is that stream, chunked


def encode(document: Any) -> bytes:
    """Compact JSON as X sends it; key order is insertion order, so output is deterministic."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_reply(status: int, document: Any, headers: list[tuple[str, str]] | None = None) -> Reply:
    return Reply(status, encode(document), JSON, list(headers or []))
