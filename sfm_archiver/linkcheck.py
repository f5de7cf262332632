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
from urllib.request import getproxies, proxy_bypass_environment

import requests
import urllib3
import urllib3.exceptions

from sfm_archiver.storage.exchange import HttpExchange, http_version
from sfm_archiver.timeutil import Clock, rfc3339_ms, utcnow

try:
    import certifi
except ImportError:  # pragma: no cover - requests brings certifi; without it, the system CAs
    certifi = None

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

ExchangeObserver = Callable[[HttpExchange], None]
"""Called (in a worker thread) with every request sent and its answer, e.g. to write a WARC."""


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
    """Resolves URLs; safe to call from many threads (they share one connection pool)."""

    def __init__(
        self,
        settings: LinkCheckSettings,
        *,
        observer: ExchangeObserver | None = None,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.observer = observer
        self.clock = clock
        self.monotonic = monotonic
        self.limiter = HostLimiter(settings.per_host)
        self.http = LinkHttp(settings)
        self._lock = threading.Lock()
        self.requests_sent = 0
        self._halt = threading.Event()

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
        with self.limiter.slot(url):
            try:
                exchange = self._exchange("HEAD", url, started)
                if exchange.status in HEAD_REFUSED_STATUSES:
                    hop.head_status = exchange.status
                    hop.method = "GET"
                    exchange = self._exchange("GET", url, started)
                _describe(hop, exchange)
            except _HopFailed as failure:
                hop.error, hop.message = failure.kind, str(failure)
        hop.duration_ms = _ms(self.monotonic() - started)
        return hop

    def _exchange(self, method: str, url: str, started: float) -> HttpExchange:
        remaining = round(max(0.001, self.settings.timeout - (self.monotonic() - started)), 3)
        with self._lock:
            self.requests_sent += 1
        try:
            exchange = self.http.send(method, url, remaining, self.clock(), deadline=started + self.settings.timeout,
                                      monotonic=self.monotonic)
        except Exception as error:  # noqa: BLE001 - whatever a site does is data, never a crash
            raise self._failure(error) from None
        if self.observer is not None:
            self.observer(exchange)
        return exchange

    def _failure(self, error: BaseException) -> _HopFailed:
        kind, message = classify(error)
        if kind == TIMEOUT:
            message = f"no answer within {self.settings.timeout:g} s ({message})"
        return _HopFailed(kind, message)

    def close(self) -> None:
        self.http.close()

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


class LinkHttp:
    """The requests of link checks, over one urllib3 pool shared by the workers.

    urllib3 directly, not requests: a link check is a few header lines, and requests' own
    work per call (sessions, hooks, cookies, environment lookups) cost more CPU than the rest
    of the check. Bodies are read only for GET (HEAD refused) and only up to `body_limit`.
    Proxies come from the environment (`http_proxy`, `https_proxy`, `no_proxy`), read once;
    ~/.netrc is never consulted, so no credential goes to a linked site.
    """

    def __init__(self, settings: LinkCheckSettings):
        self.settings = settings
        self.headers = {"User-Agent": settings.user_agent, "Accept": "*/*", "Accept-Encoding": "identity"}
        options = {"num_pools": 256, "maxsize": settings.per_host, "block": False, "retries": False}
        if certifi is not None:
            options["ca_certs"] = certifi.where()
        self._direct = urllib3.PoolManager(**options)
        environment = getproxies()
        self._no_proxy = environment.get("no")
        self._proxies = {scheme: urllib3.ProxyManager(environment[scheme], **options)
                         for scheme in ("http", "https") if scheme in environment}

    def send(self, method: str, url: str, timeout: float, now: datetime, *, deadline: float,
             monotonic: Callable[[], float]) -> HttpExchange:
        """Send one request without following redirects; read the body within `deadline`."""
        response = self._manager(url).request(
            method, url, headers=self.headers, redirect=False, retries=False, preload_content=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
        )
        truncated = False
        try:
            body, truncated = self._read(response, deadline, monotonic)
        finally:
            if truncated:
                response.close()  # the rest of a large body is never read: drop the connection
            response.release_conn()
        return HttpExchange(
            method=method, url=url, request_headers=[("Host", _host_header(url)), *self.headers.items()],
            status=response.status, reason=response.reason or "", version=http_version(response),
            response_headers=list(response.headers.iteritems()), body=body, sent_at=now,
            truncated="length" if truncated else None,
        )

    def _read(self, response, deadline: float, monotonic: Callable[[], float]) -> tuple[bytes, bool]:
        chunks, size = [], 0
        while True:
            chunk = response.read(_CHUNK)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)
            size += len(chunk)
            if size >= self.settings.body_limit:
                return b"".join(chunks)[: self.settings.body_limit], True
            if monotonic() > deadline:
                raise TimeoutError("the body did not arrive in time")

    def _manager(self, url: str) -> urllib3.PoolManager:
        scheme = urlsplit(url).scheme.lower()
        proxy = self._proxies.get(scheme)
        if proxy is None or proxy_bypass_environment(urlsplit(url).hostname or "", {"no": self._no_proxy or ""}):
            return self._direct
        return proxy

    def close(self) -> None:
        self._direct.clear()
        for proxy in self._proxies.values():
            proxy.clear()


def _host_header(url: str) -> str:
    """The Host header http.client sends: the host, and the port unless it is the default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme.lower() == "https" else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


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


def _describe(hop: Hop, exchange: HttpExchange) -> None:
    hop.status = exchange.status
    headers = {name.lower(): value for name, value in exchange.response_headers}
    hop.location = headers.get("location")
    if hop.location is not None:
        hop.location = _decode_header(hop.location)
    hop.headers = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    hop.reason = exchange.reason


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
