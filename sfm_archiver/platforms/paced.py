"""One API call, paced by the shared `RateLimiter`, retried with capped backoff: every platform's client.

A client mixes in `PacedCalls` and hands `paced_call` two functions: `send` (one HTTP request)
and `classify` (the response into the client's page, or an exception: `RateLimited` for a plain
429, TransientError or BadResponseError to retry, anything else to raise). The loop is the same
for every platform; only the headers it reads (`Platform.rate_reading`) and the classification
differ.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests

from sfm_archiver.errors import BadResponseError, StopRequested, TransientError
from sfm_archiver.ratelimit import Quota, RateLimiter, Wait, WaitFn

log = logging.getLogger(__name__)
Announce = Callable[[Wait], None]
Page = TypeVar("Page")


class RateLimited(Exception):
    """A plain 429: the limiter now knows the window; try again when it allows."""


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number `attempt` (0-based): exponential, capped."""
    return min(cap, base * (2 ** attempt))


def public_url(url: str) -> str:
    """The request URL as recorded in captures: no user info (tokens never travel in URLs)."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def json_document(raw: bytes, url: str) -> object:
    """The parsed answer; invalid JSON (a damaged or truncated body) is a BadResponseError, retried."""
    try:
        return json.loads(raw)
    except ValueError as error:
        raise BadResponseError(f"invalid JSON ({len(raw)} bytes, {error}) from {url}") from None


def wait_for(wait: WaitFn, seconds: float) -> bool:
    """Wait `seconds` in slices so a stop is noticed; True when stopped."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if wait(min(left, 1.0)):
            return True


class PacedCalls:
    """The pacing and retry loop; a client calls `init_pacing` in its `__init__`.

    `calls` and `retries` count this client's calls (the run's counts); `sleep` is what backoff
    uses when a call is given no `wait`."""

    def init_pacing(self, credential: str, limiter: RateLimiter | None, max_retries: int,
                    rate_reading: Callable[[Mapping[str, str]], tuple[Quota | None, float | None]],
                    backoff_base: float, backoff_cap: float, sleep: Callable[[float], None]) -> None:
        self.credential = credential
        self.limiter = limiter or RateLimiter()
        self.max_retries = max_retries
        self.rate_reading = rate_reading
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.sleep = sleep
        self.calls = 0
        self.retries = 0

    def paced_call(self, endpoint: str, wait: WaitFn | None, announce: Announce | None,
                   send: Callable[[], requests.Response], classify: Callable[[requests.Response], Page]) -> Page:
        wait = wait or self._plain_wait
        failures = 0
        limited = 0
        while True:
            permit = self.limiter.acquire(self.credential, endpoint, wait, announce)
            if permit is None:
                raise StopRequested()
            self.calls += 1
            try:
                response = send()
            except requests.RequestException as error:
                self.limiter.release(permit)
                problem: Exception = TransientError(f"network error: {type(error).__name__}: {error}")
            except TransientError as error:  # a step before the request (a session to make) failed for now
                self.limiter.release(permit)
                problem = error
            except BaseException:
                self.limiter.release(permit)  # a permit kept would hold up every process sharing the budget
                raise
            else:
                self.limiter.observe(permit, response.status_code, *self.rate_reading(response.headers))
                try:
                    return classify(response)
                except RateLimited:
                    limited += 1
                    if limited > max(self.max_retries, 1) * 4:
                        raise TransientError(f"still rate limited after {limited} tries: {public_url(response.url)}") from None
                    continue
                except (TransientError, BadResponseError) as error:
                    problem = error
            if failures >= self.max_retries:
                raise problem
            delay = retry_delay(failures, self.backoff_base, self.backoff_cap)
            failures += 1
            self.retries += 1
            log.info("retrying in %.1fs after: %s", delay, problem)
            if wait_for(wait, delay):
                raise StopRequested()

    def _plain_wait(self, seconds: float) -> bool:
        self.sleep(seconds)
        return False
