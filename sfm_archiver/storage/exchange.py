"""One HTTP request and its answer, as the bytes a WARC keeps, with credentials left out.

Both sources of exchanges meet here: requests `Response` objects (API calls through a tweepy
session) and the link checker's own urllib3 exchanges. The request block never carries
credential headers (Authorization, cookies, anything naming a token or key); `Redactor`
removes configured secrets from whatever else could hold them (URLs, Location, bodies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable
from urllib.parse import quote, unquote, urlsplit

import requests

REDACTED = b"[redacted]"
_SENSITIVE_HEADER = re.compile(r"authorization|cookie|token|secret|api[-_]?key|password|session", re.IGNORECASE)
_HTTP_VERSIONS = {9: "HTTP/0.9", 10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}


@dataclass(frozen=True)
class HttpExchange:
    """What was sent and what came back. `truncated` is the WARC-Truncated reason of a body
    cut short (`length` at a read limit, `unspecified` for a streamed body not kept)."""

    method: str
    url: str
    request_headers: list[tuple[str, str]]
    status: int
    reason: str
    version: str
    response_headers: list[tuple[str, str]]
    body: bytes
    sent_at: datetime
    request_body: bytes = b""
    truncated: str | None = None
    decoded: bool = field(default=True)

    def request_block(self) -> bytes:
        """The request as sent (request line, headers, body), minus credential headers."""
        parts = urlsplit(self.url)
        headers = [(name, value) for name, value in self.request_headers if not is_sensitive_header(name)]
        if not any(name.lower() == "host" for name, _ in headers):
            headers.insert(0, ("Host", parts.netloc.rsplit("@", 1)[-1]))
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        return _message(f"{self.method} {target} HTTP/1.1", headers, self.request_body)

    def response_block(self) -> bytes:
        """The response with the body as read.

        A body whose content or transfer encoding was undone on reading keeps the headers
        announcing them as `X-Archive-Orig-*` (the pywb and warcio convention), with a
        Content-Length of what is stored, so the record stays self-consistent.
        """
        rewritten = _rewritten_headers(self.response_headers) if self.decoded else set()
        headers = [(f"X-Archive-Orig-{name}" if name.lower() in rewritten else name, value)
                   for name, value in self.response_headers]
        if rewritten and not self.truncated:
            headers.append(("Content-Length", str(len(self.body))))
        return _message(f"{self.version} {self.status} {self.reason}".rstrip(), headers, self.body)


def from_requests(response: requests.Response, body: bytes, sent_at: datetime,
                  truncated: str | None = None) -> HttpExchange:
    """The exchange behind a requests `Response` (its prepared request included)."""
    request = response.request
    raw = response.raw
    source = getattr(raw, "headers", None)
    headers = list(source.iteritems()) if hasattr(source, "iteritems") else list(response.headers.items())
    request_body = request.body
    if isinstance(request_body, str):
        request_body = request_body.encode("utf-8")
    elif not isinstance(request_body, (bytes, bytearray)):
        request_body = b""
    return HttpExchange(
        method=request.method or "GET",
        url=request.url or response.url or "",
        request_headers=list(request.headers.items()),
        status=response.status_code,
        reason=response.reason or "",
        version=http_version(raw),
        response_headers=headers,
        body=body,
        sent_at=sent_at,
        request_body=bytes(request_body),
        truncated=truncated,
    )


def http_version(raw) -> str:
    """`HTTP/1.1` and the like, from a urllib3 response."""
    version = getattr(raw, "version_string", None)
    if not version or version == "HTTP/?":
        version = _HTTP_VERSIONS.get(getattr(raw, "version", 11), "HTTP/1.1")
    return version


def _rewritten_headers(items: list[tuple[str, str]]) -> set[str]:
    """Header names kept as X-Archive-Orig-*: encodings undone on reading, and the length."""
    names = {name.lower(): value for name, value in items}
    rewritten = set()
    if names.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        rewritten.add("content-encoding")
    if "transfer-encoding" in names:
        rewritten.add("transfer-encoding")
    if rewritten and "content-length" in names:
        rewritten.add("content-length")
    return rewritten


def _message(first_line: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [first_line + "\r\n"] + [f"{name}: {value}\r\n" for name, value in headers] + ["\r\n"]
    return "".join(lines).encode("latin-1", errors="replace") + body


def is_sensitive_header(name: str) -> bool:
    return bool(_SENSITIVE_HEADER.search(name))


class Redactor:
    """Replaces every secret, raw or percent-encoded, with `[redacted]`."""

    def __init__(self, secrets: Iterable[str]):
        forms: set[str] = set()
        for secret in secrets:
            if secret and len(secret) >= 4:
                forms.update({secret, quote(secret, safe=""), unquote(secret), quote(unquote(secret), safe="")})
        self._forms = sorted((form for form in forms if len(form) >= 4), key=len, reverse=True)
        self._bytes = [form.encode("utf-8") for form in self._forms]

    def bytes(self, data: bytes) -> bytes:
        for form in self._bytes:
            if form in data:
                data = data.replace(form, REDACTED)
        return data

    def text(self, value: str) -> str:
        for form in self._forms:
            value = value.replace(form, REDACTED.decode())
        return value
