"""Where a link leads: HEAD (GET when HEAD is refused), redirects followed by hand, every hop kept.

SFM resolved links one at a time and only printed failures. Here each URL becomes a
`LinkResult` holding the whole redirect chain, and every failure (malformed URL, DNS, refused
connection, timeout, TLS, loop, too many hops, 4xx/5xx) is part of the result, never an
exception. `LinkResolver.resolve_all` runs many URLs at once, bounded overall (worker threads)
and per host (a semaphore held around each request), so one slow site cannot take every worker
and no site sees more than `per_host` requests at a time.

A hop is one URL visited: its request (and the GET sent when HEAD is refused) and its answer.
`max_hops` bounds the redirects followed (as `urls.max_hops` is documented), so a chain holds
at most `max_hops + 1` hops.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Iterator
from urllib.parse import urldefrag, urljoin, urlsplit
from urllib.request import getproxies

import requests
import urllib3.exceptions

from sfm_archiver.timeutil import Clock, rfc3339_ms, utcnow

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
HEAD_REFUSED_STATUSES = frozenset({403, 405, 501})
KEPT_HEADERS = ("content-type", "content-length", "last-modified", "etag", "server", "date", "retry-after")
BODY_LIMIT = 64 * 1024
_CHUNK = 16 * 1024

# Error types of a LinkResult. Transient ones are worth trying again on a later run.
MALFORMED_URL = "malformed_url"
UNSUPPORTED_SCHEME = "unsupported_scheme"
DNS = "dns"
CONNECTION = "connection"
TIMEOUT = "timeout"
TLS = "tls"
LOOP = "loop"
TOO_MANY_HOPS = "too_many_hops"
HTTP_ERROR = "http_error"
REDIRECT_WITHOUT_LOCATION = "redirect_without_location"
INVALID_RESPONSE = "invalid_response"
REQUEST_ERROR = "request_error"
INTERRUPTED = "interrupted"
TRANSIENT_ERRORS = frozenset({DNS, CONNECTION, TIMEOUT})

ExchangeObserver = Callable[[requests.Response, bytes, bool], None]
"""Called with each HTTP answer, the body read (at most BODY_LIMIT bytes) and whether it was cut."""


@dataclass(frozen=True)
class LinkCheckSettings:
    concurrency: int = 32
    per_host: int = 4
    timeout: float = 10.0
    max_hops: int = 10
    user_agent: str = "sfm-archiver"
    body_limit: int = BODY_LIMIT

    @classmethod
    def from_config(cls, config) -> LinkCheckSettings:
        urls = config.urls
        return cls(urls.concurrency, urls.per_host, urls.timeout, urls.max_hops, config.user_agent())


@dataclass
class Hop:
    """One URL visited: what answered, where it pointed, and how long it took."""

    url: str
    method: str
    status: int | None = None
    location: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    duration_ms: int = 0
    head_status: int | None = None
    error: str | None = None
    reason: str = ""
    message: str = ""

    def to_dict(self) -> dict:
        data = {"url": self.url, "status": self.status, "location": self.location, "method": self.method,
                "headers": self.headers, "duration_ms": self.duration_ms}
        if self.head_status is not None:
            data["head_status"] = self.head_status
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass
class LinkResult:
    """The outcome for one URL; `error` is None only when the chain ended in a 1xx-3xx/2xx answer."""

    url: str
    final_url: str | None = None
    final_status: int | None = None
    chain: list[Hop] = field(default_factory=list)
    error: dict | None = None
    duration_ms: int = 0
    resolved_at: str = ""

    @property
    def transient(self) -> bool:
        """A failure that may well go away (unreachable host, timeout, 5xx, 429): not cached."""
        if self.error is None:
            return False
        if self.error["type"] == HTTP_ERROR:
            return self.final_status is not None and (self.final_status >= 500 or self.final_status == 429)
        return self.error["type"] in TRANSIENT_ERRORS

    def to_dict(self) -> dict:
        return {
            "url": self.url,
            "final_url": self.final_url,
            "final_status": self.final_status,
            "chain": [hop.to_dict() for hop in self.chain],
            "error": self.error,
            "duration_ms": self.duration_ms,
            "resolved_at": self.resolved_at,
        }


class _HopFailed(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class HostLimiter:
    """At most `per_host` requests in flight to any one host (scheme, host and port)."""

    def __init__(self, per_host: int):
        self.per_host = per_host
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    def slot(self, url: str) -> threading.BoundedSemaphore:
        key = host_key(url)
        with self._lock:
            semaphore = self._semaphores.get(key)
            if semaphore is None:
                semaphore = self._semaphores[key] = threading.BoundedSemaphore(self.per_host)
            return semaphore


class LinkResolver:
    """Resolves URLs; safe to call from many threads (one requests session per thread)."""

    def __init__(
        self,
        settings: LinkCheckSettings,
        *,
        observer: ExchangeObserver | None = None,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        session_factory: Callable[[], requests.Session] = requests.Session,
    ):
        self.settings = settings
        self.observer = observer
        self.clock = clock
        self.monotonic = monotonic
        self.session_factory = session_factory
        self.limiter = HostLimiter(settings.per_host)
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self.requests_sent = 0
        self._halt = threading.Event()
        environment = getproxies()
        self._proxies = {scheme: environment[scheme] for scheme in ("http", "https") if scheme in environment}
        self._no_proxy = environment.get("no")

    # -- one URL ---------------------------------------------------------------------------

    def resolve(self, url: str) -> LinkResult:
        """Follow `url` to its end; every problem is recorded in the result."""
        result = LinkResult(url=url, resolved_at=rfc3339_ms(self.clock()))
        started = self.monotonic()
        try:
            self._follow(result)
        finally:
            result.duration_ms = _ms(self.monotonic() - started)
        return result

    def _follow(self, result: LinkResult) -> None:
        problem = malformed_reason(result.url)
        if problem:
            result.error = _error(MALFORMED_URL, problem)
            return
        current = result.url
        seen = {urldefrag(current)[0]}
        while True:
            if self._halt.is_set():
                result.error = _error(INTERRUPTED, "the run was asked to stop")
                return
            if len(result.chain) > self.settings.max_hops:
                result.error = _error(TOO_MANY_HOPS, f"still redirecting after {self.settings.max_hops} redirects")
                return
            hop = self._visit(current)
            result.chain.append(hop)
            result.final_url, result.final_status = hop.url, hop.status
            if hop.error is not None:
                result.error = _error(hop.error, f"{hop.url}: {hop.message}")
                return
            if hop.status in REDIRECT_STATUSES:
                if not hop.location:
                    result.error = _error(REDIRECT_WITHOUT_LOCATION, f"{hop.status} without a Location header")
                    return
                target = urljoin(current, hop.location)
                if urlsplit(target).scheme.lower() not in ("http", "https"):
                    result.error = _error(UNSUPPORTED_SCHEME, f"redirect to {target!r}")
                    return
                problem = malformed_reason(target)
                if problem:
                    result.error = _error(MALFORMED_URL, f"redirect to {target!r}: {problem}")
                    return
                key = urldefrag(target)[0]
                if key in seen:
                    result.error = _error(LOOP, f"{hop.url} redirects back to {target}")
                    return
                seen.add(key)
                current = target
                continue
            if hop.status is not None and hop.status >= 400:
                result.error = _error(HTTP_ERROR, f"{hop.status} {hop.reason}".strip())
            return

    def _visit(self, url: str) -> Hop:
        """One hop: HEAD, then GET if HEAD is refused; failures become `hop.error`."""
        hop = Hop(url=url, method="HEAD")
        started = self.monotonic()
        slot = self.limiter.slot(url)
        with slot:
            try:
                response, body, truncated = self._exchange("HEAD", url, started)
                if response.status_code in HEAD_REFUSED_STATUSES:
                    hop.head_status = response.status_code
                    hop.method = "GET"
                    response, body, truncated = self._exchange("GET", url, started)
                _describe(hop, response)
            except _HopFailed as failure:
                hop.error, hop.message = failure.kind, str(failure)
        hop.duration_ms = _ms(self.monotonic() - started)
        return hop

    def _exchange(self, method: str, url: str, started: float) -> tuple[requests.Response, bytes, bool]:
        timeout = self.settings.timeout
        remaining = round(max(0.001, timeout - (self.monotonic() - started)), 3)
        with self._lock:
            self.requests_sent += 1
        try:
            response = self._session().request(
                method, url, allow_redirects=False, stream=True, timeout=(remaining, remaining),
                proxies=self._proxies_for(url),
            )
        except requests.RequestException as error:
            raise self._failure(error) from None
        try:
            # Reading to the end (nothing, for HEAD) lets the connection serve the next hop.
            body, truncated = self._read_body(response, started)
        except requests.RequestException as error:
            raise self._failure(error) from None
        finally:
            response.close()
        if self.observer is not None:
            self.observer(response, body, truncated)
        return response, body, truncated

    def _proxies_for(self, url: str) -> dict[str, str]:
        """The proxies of the environment (`http_proxy`, `https_proxy`, `no_proxy`) for `url`."""
        if not self._proxies or requests.utils.should_bypass_proxies(url, no_proxy=self._no_proxy):
            return {}
        return self._proxies

    def _failure(self, error: requests.RequestException) -> _HopFailed:
        kind, message = classify(error)
        if kind == TIMEOUT:
            message = f"no answer within {self.settings.timeout:g} s ({message})"
        return _HopFailed(kind, message)

    def _read_body(self, response: requests.Response, started: float) -> tuple[bytes, bool]:
        """At most `body_limit` bytes, within what is left of the hop's time."""
        chunks, size = [], 0
        for chunk in response.iter_content(_CHUNK):
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.settings.body_limit:
                return b"".join(chunks)[: self.settings.body_limit], True
            if self.monotonic() - started > self.settings.timeout:
                raise requests.exceptions.ReadTimeout(f"body not complete after {self.settings.timeout:g} s")
        return b"".join(chunks), False

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self.session_factory()
            # Environment proxies are read once (in __init__), not on every request as
            # requests does with trust_env, and ~/.netrc credentials never go to linked sites.
            session.trust_env = False
            session.headers["User-Agent"] = self.settings.user_agent
            session.headers["Accept-Encoding"] = "identity"
            adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=4, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    # -- many URLs -------------------------------------------------------------------------

    def resolve_all(
        self,
        urls: Iterable[str],
        on_result: Callable[[LinkResult], None],
        stop: threading.Event | None = None,
        tick: Callable[[], None] | None = None,
        tick_seconds: float = 0.5,
    ) -> int:
        """Resolve `urls` concurrently; `on_result` runs in the calling thread, once per URL.

        Hosts are interleaved so the workers spread over sites instead of queueing on one.
        When `stop` is set, no new URL starts and those in flight end after their current hop,
        unreported (a later run resolves them). `tick` runs in the calling thread about every
        `tick_seconds` (progress, periodic flushes). Returns the number of URLs reported.
        """
        stop = self._halt = stop or threading.Event()
        pending = deque(interleave_by_host(urls))
        done = 0
        window = self.settings.concurrency + max(4, self.settings.concurrency // 4)
        with ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="linkcheck") as pool:
            running: set[Future] = set()
            try:
                while running or (pending and not stop.is_set()):
                    while pending and not stop.is_set() and len(running) < window:
                        running.add(pool.submit(self.resolve, pending.popleft()))
                    finished, running = wait(running, timeout=tick_seconds, return_when=FIRST_COMPLETED)
                    for future in finished:
                        if future.cancelled():
                            continue
                        result = future.result()
                        if result.error is None or result.error["type"] != INTERRUPTED:
                            on_result(result)
                            done += 1
                    if stop.is_set():
                        for future in running:
                            future.cancel()
                    if tick is not None:
                        tick()
            finally:
                for future in running:
                    future.cancel()
        self.close()
        return done


def interleave_by_host(urls: Iterable[str]) -> list[str]:
    """URLs in round-robin order of their hosts (first seen first), duplicates dropped."""
    rank_in_host: dict[str, int] = defaultdict(int)
    ranked = []
    for url in dict.fromkeys(urls):
        key = host_key(url)
        ranked.append((rank_in_host[key], len(ranked), url))
        rank_in_host[key] += 1
    return [url for _, _, url in sorted(ranked)]


def host_key(url: str) -> str:
    """scheme://host:port, the unit the per-host bound applies to."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"
    except ValueError:
        return "invalid:"


def malformed_reason(url: str) -> str | None:
    """Why `url` cannot be requested, or None when it is a usable http(s) URL."""
    if not isinstance(url, str) or not url:
        return "empty URL"
    if any(ord(char) < 0x20 or char in " \x7f" for char in url):
        return "contains spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as error:
        return f"cannot be parsed: {error}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"not an http(s) URL (scheme {parts.scheme!r})" if parts.scheme else "no scheme (http:// or https://)"
    if not parts.hostname:
        return "no host name"
    return None


def classify(error: BaseException) -> tuple[str, str]:
    """(error type, message) for a requests exception, looking through its causes."""
    causes = list(_causes(error))

    def found(*types: type) -> bool:
        return any(isinstance(cause, types) for cause in causes)

    message = _message(causes)
    if found(requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
             urllib3.exceptions.LocationParseError, UnicodeError):
        return MALFORMED_URL, message
    if found(urllib3.exceptions.NameResolutionError, socket.gaierror):
        return DNS, message
    if found(requests.exceptions.SSLError, ssl.SSLError, urllib3.exceptions.SSLError):
        return TLS, message
    # urllib3 2 derives NewConnectionError (refused, unreachable) from ConnectTimeoutError.
    if found(ConnectionRefusedError, ConnectionResetError) or (
            found(urllib3.exceptions.NewConnectionError) and not found(TimeoutError, socket.timeout)):
        return CONNECTION, message
    if found(requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError, socket.timeout):
        return TIMEOUT, message
    if found(requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError,
             requests.exceptions.InvalidHeader, urllib3.exceptions.ProtocolError):
        return INVALID_RESPONSE, message
    if found(requests.exceptions.ConnectionError, ConnectionError, OSError):
        return CONNECTION, message
    return REQUEST_ERROR, message


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The exception, its causes and contexts, and exceptions held in args (urllib3 wraps)."""
    stack, seen = [error], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (current.__cause__, current.__context__, getattr(current, "reason", None)):
            if isinstance(linked, BaseException):
                stack.append(linked)
        stack.extend(arg for arg in current.args if isinstance(arg, BaseException))


def _message(causes: list[BaseException]) -> str:
    """The most specific text among the causes (urllib3 wraps the useful one deep inside)."""
    texts = [str(cause) for cause in causes if str(cause)]
    text = texts[-1] if texts else type(causes[0]).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _describe(hop: Hop, response: requests.Response) -> None:
    hop.status = response.status_code
    hop.location = response.headers.get("Location")
    if hop.location is not None:
        hop.location = _decode_header(hop.location)
    hop.headers = {name: response.headers[name] for name in KEPT_HEADERS if name in response.headers}
    hop.reason = response.reason or ""


def _decode_header(value: str) -> str:
    """http.client decodes headers as Latin-1; servers mostly send UTF-8 (as requests assumes)."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _error(kind: str, message: str) -> dict:
    return {"type": kind, "message": message}


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def started_at(response: requests.Response, now: datetime) -> datetime:
    """When the request of `response` was sent (now minus the time to the answer)."""
    return now - response.elapsed
