"""What a route answers, independent of the HTTP server that writes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sfm_archiver.simulator.wire import Wire, compact

JSON = "application/json; charset=utf-8"


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    abort: bool = False  # close the connection without answering (a hung upstream)
    stream: Any = None  # a streams.Connection: the body is that stream, chunked


def json_reply(status: int, document: Any, headers: list[tuple[str, str]] | None = None,
               wire: Wire | None = None) -> Reply:
    """A JSON answer, in X's compact form unless a (variant) wire is given."""
    body = wire.encode(document, one_line=False) if wire else compact(document)
    return Reply(status, body, JSON, list(headers or []))
