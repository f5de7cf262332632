"""X API v2 streams on the wire: connecting, reading raw lines, rules, and the reconnect policy.

The stream is read with a plain requests session whose transport is redirected to
`x.api_base_url` (platforms/transport.py), so tests reach only the simulator. Reading is done
in large chunks straight from the socket and split on the `\\r\\n` framing, so each message's
bytes are kept exactly as received. A read that gets no byte (not even a keep-alive) within
the stall timeout raises, and `StreamResponse.abort()` unblocks a reader from another thread.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Iterator

import requests

from sfm_archiver.platforms.transport import redirect_session
from sfm_archiver.platforms.x_fields import post_params

if TYPE_CHECKING:
    from sfm_archiver.config import Config

API_ROOT = "https://api.twitter.com"
STREAM_PATHS = {"filter_stream": "/2/tweets/search/stream", "sample_stream": "/2/tweets/sample/stream"}
RULES_PATH = "/2/tweets/search/stream/rules"
READ_SIZE = 256 * 1024
READ_BATCH_DELAY = 0.005  # after a small read, seconds to let a busy stream fill the socket buffer
READ_BATCH_BELOW = 64 * 1024  # a read this small means the stream is not (yet) busy

# Everything a stream message can carry, so captures are as complete as the tier allows: the
# fields and expansions of every request that returns posts (a stream message is one post).
STREAM_PARAMS = post_params()

# Why a connection ended (or failed to start); each kind has its reconnect schedule.
CLOSED = "closed"  # the server ended the stream cleanly (e.g. after an operational disconnect)
NETWORK = "network"  # refused, reset, cut off mid-stream, or stalled
HTTP = "http"  # an HTTP error status at connect
TOO_MANY = "too_many"  # 429: too many connections or requests
AUTH = "auth"  # 401/403: never retried
AUTH_REMEDY = "fix x.bearer_token, then reload"  # what the log says to do about AUTH
KINDS = (CLOSED, NETWORK, HTTP, TOO_MANY, AUTH)


@dataclass(frozen=True)
class BackoffPolicy:
    """X's reconnect guidance; tests scale it down (`scaled`) instead of sleeping for minutes."""

    network_step: float = 0.25
    network_max: float = 16.0
    http_start: float = 5.0
    http_max: float = 320.0
    too_many_start: float = 60.0
    too_many_max: float = 960.0

    def scaled(self, factor: float) -> BackoffPolicy:
        return replace(self, **{name: getattr(self, name) * factor for name in self.__dataclass_fields__})


DEFAULT_BACKOFF = BackoffPolicy()


def reconnect_delay(kind: str, attempt: int, policy: BackoffPolicy = DEFAULT_BACKOFF) -> float | None:
    """Seconds to wait before reconnect `attempt` (1 = the first) after a failure of `kind`.

    None means do not reconnect (the credentials were refused). A clean close is retried at once
    the first time, then like a network error.
    """
    attempt = max(1, attempt)
    if kind == AUTH:
        return None
    if kind == CLOSED:
        return 0.0 if attempt == 1 else reconnect_delay(NETWORK, attempt - 1, policy)
    if kind == NETWORK:
        return min(policy.network_step * attempt, policy.network_max)
    if kind == HTTP:
        return min(policy.http_start * 2 ** min(attempt - 1, 30), policy.http_max)
    if kind == TOO_MANY:
        return min(policy.too_many_start * 2 ** min(attempt - 1, 30), policy.too_many_max)
    raise ValueError(f"unknown disconnect kind {kind!r} (known: {', '.join(KINDS)})")


class StreamFailure(Exception):
    """A connection could not be opened or ended; `kind` picks the reconnect schedule."""

    def __init__(self, kind: str, reason: str, status: int | None = None):
        self.kind = kind
        self.reason = reason
        self.status = status
        super().__init__(reason)


def stream_endpoint(config: Config) -> tuple[str, str, float]:
    """(API base URL, bearer token, request timeout) of X's streams and rules in `config`: the
    stream supervisor reads X's settings only through this."""
    return config.x.api_base_url, config.x.bearer_token, config.x.request_timeout


def make_session(base_url: str, user_agent: str) -> requests.Session:
    session = redirect_session(requests.Session(), base_url)
    session.headers["User-Agent"] = user_agent
    return session


def stream_url(kind: str, backfill_minutes: int = 0) -> str:
    """The request URL (as X knows it; the session redirects it) for a stream of `kind`."""
    from urllib.parse import urlencode

    params = dict(STREAM_PARAMS)
    if backfill_minutes:
        params["backfill_minutes"] = str(backfill_minutes)
    return f"{API_ROOT}{STREAM_PATHS[kind]}?{urlencode(params, safe=',')}"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def describe_error(response: requests.Response) -> str:
    """`status title: detail` from an X problem body (or the start of whatever came back)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:200]!r}"
    if isinstance(body, dict):
        problem = body
        if isinstance(body.get("errors"), list) and body["errors"] and isinstance(body["errors"][0], dict):
            problem = {**body["errors"][0], **{k: v for k, v in body.items() if k != "errors"}}
        parts = [str(problem.get(key)) for key in ("title", "connection_issue", "detail") if problem.get(key)]
        if parts:
            return f"HTTP {response.status_code}: " + ": ".join(parts)
    return f"HTTP {response.status_code}: {response.text[:200]!r}"


def failure_for_status(response: requests.Response) -> StreamFailure:
    status = response.status_code
    reason = describe_error(response)
    if status in (401, 403):
        return StreamFailure(AUTH, reason, status)
    if status == 429:
        return StreamFailure(TOO_MANY, reason, status)
    return StreamFailure(HTTP, reason, status)


class StreamResponse:
    """One open stream: yields raw chunks; `abort()` from any thread ends the read at once."""

    def __init__(self, response: requests.Response, url: str, batch_delay: float = READ_BATCH_DELAY):
        self.response = response
        self.url = url
        self._batch_delay = batch_delay
        self._abort_event = threading.Event()
        self._aborted = False
        self._socket = _socket_of(response)

    @classmethod
    def open(
        cls, session: requests.Session, kind: str, token: str, *, stall_timeout: float,
        connect_timeout: float = 10.0, backfill_minutes: int = 0,
    ) -> StreamResponse:
        """Connect; raise StreamFailure for anything but 200 (the body says why)."""
        url = stream_url(kind, backfill_minutes)
        try:
            response = session.get(
                url, headers={**_auth(token), "Accept-Encoding": "identity", "Connection": "close"}, stream=True,
                timeout=(connect_timeout, stall_timeout),
            )
        except requests.Timeout as error:
            raise StreamFailure(NETWORK, f"connect timed out: {error}") from None
        except requests.RequestException as error:
            raise StreamFailure(NETWORK, f"cannot connect: {_short(error)}") from None
        if response.status_code != 200:
            try:
                failure = failure_for_status(response)
            finally:
                response.close()
            raise failure
        return cls(response, url)

    def chunks(self) -> Iterator[bytes]:
        """Body bytes as they arrive; ends on a clean close, raises StreamFailure otherwise.

        A chunked body (what X sends) is read in large blocks straight from the connection's
        buffered socket and de-chunked here: http.client would hand it over one small HTTP
        chunk at a time, which costs more CPU than the rest of the capture bar gzip.
        """
        source = _buffered_socket(self.response.raw)
        decoder = ChunkDecoder() if source is not None else None
        try:
            if decoder is None:
                yield from self._chunks_via_urllib3()
                return
            while not decoder.done:
                data = source.read1(READ_SIZE)
                if not data:
                    break
                payload = decoder.feed(data)
                if payload:
                    yield payload
                if len(data) < READ_BATCH_BELOW and self._batch_delay:
                    # let more arrive: one read of many messages costs far less CPU than many
                    # reads of one (a busy stream comes in pieces of a few KB)
                    self._abort_event.wait(self._batch_delay)
        except ChunkError as error:
            raise StreamFailure(NETWORK, f"connection lost: {error}") from None
        except StreamFailure:
            raise
        except Exception as error:  # the socket layer raises a variety of errors mid-stream
            if self._aborted:
                return
            if _is_timeout(error):
                raise StreamFailure(NETWORK, "stall: no data or keep-alive within the stall timeout") from None
            raise StreamFailure(NETWORK, f"connection lost: {_short(error)}") from None
        if not self._aborted and not decoder.done:
            raise StreamFailure(NETWORK, "connection lost: the stream ended without its final chunk")

    def _chunks_via_urllib3(self) -> Iterator[bytes]:
        """Any other body framing (not seen from X): let urllib3 read it."""
        raw = self.response.raw
        while True:
            data = raw.read1(READ_SIZE)
            if not data:
                break
            yield data
        if not self._aborted and not _ended_cleanly(raw):
            raise StreamFailure(NETWORK, "connection lost: the stream ended without its final chunk")

    def abort(self) -> None:
        """Unblock a reader in another thread (shutdown of the socket) and end the stream."""
        self._aborted = True
        self._abort_event.set()
        if self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        try:
            self.response.close()
        except Exception:  # closing a broken connection may raise; nothing is left to do
            pass


class ChunkError(Exception):
    """The chunked framing of the body is broken."""


class ChunkDecoder:
    """Incremental `Transfer-Encoding: chunked` decoder: feed raw bytes, get the payload.

    Fed any split of the body, it returns the same payload bytes in the same order; a chunk's
    data is passed on as soon as it arrives (only a partial size line is ever held back).
    `done` turns True at the terminating zero-size chunk; trailers after it are ignored.
    """

    def __init__(self) -> None:
        self._pending = b""
        self._left = 0  # data bytes of the current chunk still to come
        self._crlf = 0  # bytes of the CRLF after the current chunk's data still to come
        self.done = False

    def feed(self, data: bytes) -> bytes:
        if self.done:
            return b""
        buffer = self._pending + data if self._pending else data
        self._pending = b""
        view = memoryview(buffer)
        payloads: list = []
        position, length = 0, len(buffer)
        while position < length:
            if self._left:
                take = min(self._left, length - position)
                payloads.append(view[position:position + take])
                position += take
                self._left -= take
                if not self._left:
                    self._crlf = 2
                continue
            if self._crlf:
                expected = b"\r\n"[2 - self._crlf:]
                got = buffer[position:position + self._crlf]
                if not expected.startswith(got):
                    raise ChunkError(f"chunk data not followed by CRLF: {got!r}")
                position += len(got)
                self._crlf -= len(got)
                continue
            line_end = buffer.find(b"\r\n", position)
            if line_end < 0:
                if length - position > 1024:
                    raise ChunkError(f"no chunk size line in {buffer[position:position + 40]!r}")
                self._pending = buffer[position:]
                break
            size_text = buffer[position:line_end]
            if b";" in size_text:
                size_text = size_text.split(b";", 1)[0]
            try:
                size = int(size_text, 16)
            except ValueError:
                raise ChunkError(f"bad chunk size {size_text[:40]!r}") from None
            position = line_end + 2
            if size == 0:
                self.done = True
                break
            self._left = size
        if len(payloads) == 1 and len(payloads[0]) == length:
            return buffer
        return b"".join(payloads)


def _buffered_socket(raw: Any) -> Any:
    """The buffered socket reader under a chunked urllib3 response, or None to let urllib3 read.

    Only when http.client has read the headers and nothing of the body yet.
    """
    fp = getattr(raw, "_fp", None)
    buffered = getattr(fp, "fp", None)
    if not getattr(fp, "chunked", False) or getattr(fp, "chunk_left", 0) is not None or not hasattr(buffered, "read1"):
        return None
    if getattr(raw, "_has_decoded_content", False) or getattr(raw, "_fp_bytes_read", 0):
        return None
    return buffered


def _socket_of(response: requests.Response) -> socket.socket | None:
    raw = response.raw
    connection = getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if isinstance(sock, socket.socket):
        return sock
    fp = getattr(getattr(raw, "_fp", None), "fp", None)
    sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _ended_cleanly(raw: Any) -> bool:
    """True when http.client saw the terminating zero-length chunk of the chunked body."""
    fp = getattr(raw, "_fp", None)
    if fp is None:
        return True
    if getattr(fp, "chunked", False):
        return getattr(fp, "chunk_left", None) is None and fp.fp is None
    return True


def _is_timeout(error: BaseException) -> bool:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, (socket.timeout, TimeoutError)) or "timed out" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
    return False


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) < 300 else text[:300] + "..."


# -- rules -----------------------------------------------------------------------------------


class RulesClient:
    """GET/POST /2/tweets/search/stream/rules; raises StreamFailure like a connect would."""

    def __init__(self, session: requests.Session, token: str, timeout: float = 30.0):
        self.session = session
        self.token = token
        self.timeout = timeout

    def list(self) -> list[dict[str, Any]]:
        body = self._call("GET", None)
        return [rule for rule in body.get("data") or [] if isinstance(rule, dict)]

    def add(self, rules: list[dict[str, str]]) -> dict[str, Any]:
        return self._call("POST", {"add": rules})

    def delete(self, ids: list[str]) -> dict[str, Any]:
        return self._call("POST", {"delete": {"ids": ids}})

    def _call(self, method: str, payload: dict | None) -> dict[str, Any]:
        url = API_ROOT + RULES_PATH
        try:
            response = self.session.request(
                method, url, headers=_auth(self.token), json=payload, timeout=self.timeout,
            )
        except requests.RequestException as error:
            raise StreamFailure(NETWORK, f"rules {method}: {_short(error)}") from None
        if response.status_code not in (200, 201):
            failure = failure_for_status(response)
            failure.reason = f"rules {method}: {failure.reason}"
            raise failure
        try:
            body = response.json()
        except ValueError:
            raise StreamFailure(HTTP, f"rules {method}: the answer is not JSON: {response.text[:200]!r}") from None
        if not isinstance(body, dict):
            raise StreamFailure(HTTP, f"rules {method}: unexpected answer {body!r:.200}")
        return body


def rule_problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-rule errors of a rules POST answer (invalid or duplicate rules), as given."""
    return [error for error in body.get("errors") or [] if isinstance(error, dict) and "value" in error]


def describe_rule_problem(problem: dict[str, Any]) -> str:
    title = problem.get("title") or "rule refused"
    details = problem.get("details") or ([problem["detail"]] if problem.get("detail") else [])
    text = f"rule {problem.get('value')!r}: {title}"
    if details:
        text += ": " + "; ".join(str(d) for d in details)
    if problem.get("id"):
        text += f" (existing rule id {problem['id']})"
    return text


def parse_message_errors(raw: bytes) -> str | None:
    """For a message without `data`: a short description of its errors (an in-stream disconnect)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(body, dict) or "data" in body or not isinstance(body.get("errors"), list):
        return None
    texts = []
    for error in body["errors"]:
        if isinstance(error, dict):
            kind = error.get("disconnect_type") or error.get("title") or "error"
            texts.append(f"{kind}: {error.get('detail', '')}".rstrip(": "))
    return "; ".join(texts) or "error message"
