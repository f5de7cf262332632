"""The X API v2 REST calls we make, behind one small interface over tweepy's Client.

tweepy is asked for `requests.Response` objects, so every page keeps its exact bytes, its
status and its headers: the bytes go to the archive unchanged, the headers feed the rate
limiter. Each call is paced by the shared `RateLimiter`, retried with capped backoff on 5xx,
network errors and damaged bodies, and answers are classified into the errors.py exceptions:
AuthError (401/403, never retried), UsageCappedError (usage-capped 429), BadResponseError
(invalid or truncated JSON, missing fields), TransientError (retries exhausted).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import requests
import tweepy

from sfm_archiver.config import USERNAME, XSettings
from sfm_archiver.errors import (
    AuthError,
    BadResponseError,
    PlatformError,
    RequestRefused,
    TransientError,
    UsageCappedError,
)
from sfm_archiver.platforms.base import ACTIVE, PROTECTED, AccountLookup, Answer, Observation, TimelinePage
from sfm_archiver.platforms.paced import Announce, PacedCalls, RateLimited, json_document, public_url
from sfm_archiver.platforms.transport import make_client, redirect_session
from sfm_archiver.platforms.x_fields import lookup_params, post_params, tweepy_arguments
from sfm_archiver.platforms.x_platform import X
from sfm_archiver.ratelimit import RateLimiter, WaitFn, fingerprint

LOOKUP_BATCH = 100
TIMELINE_PAGE = 100
TIMELINE_REACH = 3200

ENDPOINT_TIMELINE = "GET /2/users/:id/tweets"
ENDPOINT_USERS = "GET /2/users"
ENDPOINT_USERS_BY = "GET /2/users/by"

PROBLEM_NOT_FOUND = "resource-not-found"
PROBLEM_NOT_AUTHORIZED = "not-authorized-for-resource"
PROBLEM_USAGE_CAPPED = "usage-capped"


@dataclass(frozen=True)
class ApiPage:
    """One answer: its exact bytes, the parsed document and where it came from."""

    url: str
    status: int
    raw: bytes
    body: dict
    received_at: datetime

    @property
    def errors(self) -> list[dict]:
        return [e for e in self.body.get("errors") or [] if isinstance(e, dict)]


def classify_user_error(error: dict) -> str | None:
    """`protected`, `suspended` or `deactivated` for a partial error about a user, else None."""
    kind = str(error.get("type", ""))
    if error.get("resource_type") not in (None, "user"):
        return None
    if kind.endswith(PROBLEM_NOT_AUTHORIZED):
        return "protected"
    if kind.endswith(PROBLEM_NOT_FOUND):
        detail = str(error.get("detail", "")).lower()
        if error.get("title") == "Forbidden" or "suspended" in detail:
            return "suspended"
        return "deactivated"
    return None


def error_subject(error: dict) -> str | None:
    """The id or username a partial error is about."""
    value = error.get("resource_id", error.get("value"))
    return None if value is None else str(value)


def observation_of_user(user: dict) -> Observation:
    status = PROTECTED if user.get("protected") else ACTIVE
    return Observation(str(user["id"]), status, user.get("username"), user)


def author_observation(body: dict, account_id: str) -> Observation | None:
    """What a timeline page shows of its author (`includes.users`), or None when it shows nothing.

    The profile is left to the lookups (a page's user object may carry fewer fields); the status
    only when the page says `protected` either way.
    """
    includes = body.get("includes")
    users = includes.get("users") if isinstance(includes, dict) else None
    for user in users if isinstance(users, list) else []:
        if well_formed_user(user) and str(user["id"]) == str(account_id):
            protected = user.get("protected")
            status = None if not isinstance(protected, bool) else PROTECTED if protected else ACTIVE
            return Observation(str(account_id), status, user["username"])
    return None


def well_formed_user(user: object) -> bool:
    """A user object with a numeric id and a username X could have issued: only such answers prove
    anything about an account (a damaged answer must never become a `renamed` event)."""
    return (isinstance(user, dict) and str(user.get("id", "")).isdigit()
            and isinstance(user.get("username"), str) and USERNAME.match(user["username"]) is not None)



class _TimeoutSession(requests.Session):
    """A session whose requests time out (tweepy passes no timeout of its own)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout

    def request(self, method, url, **kwargs):  # type: ignore[override]
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, **kwargs)


class XClient(PacedCalls):
    """User lookups and user timelines, paced, retried and classified.

    `limiter` is shared by every worker (and may be shared by jobs) so the budget of one token
    is never overshot. `sleep` is what backoff uses when no `wait` is given to a call.
    """

    reach = TIMELINE_REACH
    platform = "x"

    def __init__(
        self,
        settings: XSettings,
        *,
        limiter: RateLimiter | None = None,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        user_agent: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not settings.bearer_token:
            raise AuthError("no bearer token configured: set x.bearer_token_file (or x.bearer_token)")
        self.settings = settings
        self.workers = settings.workers
        self.init_pacing(fingerprint(settings.bearer_token), limiter, settings.max_retries, X.rate_reading,
                         backoff_base, backoff_cap, sleep)
        self._client = make_client(settings.bearer_token, settings.api_base_url, return_type=requests.Response)
        self._client.session = redirect_session(_TimeoutSession(settings.request_timeout), settings.api_base_url)
        if user_agent:
            self._client.user_agent = f"{user_agent} {self._client.user_agent}"

    @property
    def session(self) -> requests.Session:
        """The session every call goes through (for recording exchanges, e.g. to WARC)."""
        return self._client.session

    # -- calls -----------------------------------------------------------------------------

    def users_by_ids(self, ids: list[str], wait: WaitFn | None = None, announce: Announce | None = None) -> ApiPage:
        """Look up 1-100 users by id (`data` holds those found, `errors` the others)."""
        self._check_batch(ids)
        return self._call(
            ENDPOINT_USERS, wait, announce,
            lambda: self._client.get_users(ids=list(ids), **tweepy_arguments(lookup_params())),
            ("data", "errors"),
        )

    def users_by_usernames(
        self, usernames: list[str], wait: WaitFn | None = None, announce: Announce | None = None
    ) -> ApiPage:
        """Look up 1-100 users by username."""
        self._check_batch(usernames)
        return self._call(
            ENDPOINT_USERS_BY, wait, announce,
            lambda: self._client.get_users(usernames=list(usernames), **tweepy_arguments(lookup_params())),
            ("data", "errors"),
        )

    def lookup_accounts(self, values: list[str], by: str, wait: WaitFn | None = None,
                        announce: Announce | None = None,
                        on_page: Callable[[Answer], None] | None = None) -> AccountLookup:
        """`TimelineClient.lookup_accounts`: users by id or username, 100 per call; a user is
        found only in a well-formed answer, and the partial errors name the others."""
        result = AccountLookup()
        for start in range(0, len(values), LOOKUP_BATCH):
            batch = values[start:start + LOOKUP_BATCH]
            try:
                look = self.users_by_ids if by == "id" else self.users_by_usernames
                page = look(batch, wait=wait, announce=announce)
            except (AuthError, UsageCappedError):
                raise
            except PlatformError as error:
                result.failed.update((value, str(error)) for value in batch)
                continue
            result.pages.append(page)
            if on_page is not None:
                on_page(page)
            users = page.body.get("data") or []
            users = users if isinstance(users, list) else [users]
            if not all(well_formed_user(user) for user in users):
                # a damaged answer proves nothing about any account of the batch (no false events)
                detail = f"damaged answer (a user without a numeric id or a username): {page.url}"
                result.failed.update((value, detail) for value in batch)
                continue
            for user in users:
                result.found[str(user["id"])] = observation_of_user(user)
            for error in page.errors:
                subject, status = error_subject(error), classify_user_error(error)
                if subject is not None and status is not None:
                    result.problems[subject] = status
        return result

    def user_timeline(
        self,
        user_id: str,
        *,
        since_id: str | None = None,
        pagination_token: str | None = None,
        max_results: int = TIMELINE_PAGE,
        wait: WaitFn | None = None,
        announce: Announce | None = None,
    ) -> ApiPage:
        """One page of a user's posts, newest first."""
        params: dict[str, Any] = {"max_results": max(5, min(100, max_results)), **tweepy_arguments(post_params())}
        if since_id:
            params["since_id"] = since_id
        if pagination_token:
            params["pagination_token"] = pagination_token
        return self._call(
            ENDPOINT_TIMELINE, wait, announce, lambda: self._client.get_users_tweets(user_id, **params), ("meta", "errors")
        )

    def timeline_page(self, account_id: str, after: str | None, cursor: str | None, want: int,
                      wait: WaitFn | None = None, announce: Announce | None = None) -> TimelinePage:
        """`TimelineClient.timeline_page`: `since_id` is the checkpoint, `pagination_token` the cursor."""
        page = self.user_timeline(account_id, since_id=after, pagination_token=cursor, max_results=want,
                                  wait=wait, announce=announce)
        problem = account_problem(page, account_id)
        if problem is not None:
            return TimelinePage(page.raw, page.url, 0, None, None, None, problem)
        meta = page_meta(page)
        return TimelinePage(page.raw, page.url, len(page.body.get("data") or []), meta.get("newest_id"),
                            meta.get("oldest_id"), meta.get("next_token"), None,
                            author_observation(page.body, account_id))

    # -- one call with pacing, retries and classification -----------------------------------

    def _call(self, endpoint: str, wait: WaitFn | None, announce: Announce | None,
              send: Callable[[], requests.Response], required: tuple[str, ...]) -> ApiPage:
        return self.paced_call(endpoint, wait, announce, lambda: self._send(send),
                               lambda response: self._classify(response, required))

    def _send(self, send: Callable[[], requests.Response]) -> requests.Response:
        try:
            return send()
        except tweepy.errors.HTTPException as error:
            return error.response

    def _classify(self, response: requests.Response, required: tuple[str, ...]) -> ApiPage:
        status, url = response.status_code, public_url(response.url)
        if status in (401, 403):
            raise AuthError(
                f"the API refused the bearer token (HTTP {status}) at {url}: check x.bearer_token_file "
                "(or x.bearer_token) and the app's access level"
            )
        if status == 429:
            body = _json_or_none(response.content)
            if isinstance(body, dict) and str(body.get("type", "")).endswith(PROBLEM_USAGE_CAPPED):
                raise UsageCappedError(f"usage cap reached: {body.get('detail', 'usage capped')} ({url})")
            raise RateLimited()
        if status >= 500:
            raise TransientError(f"HTTP {status} from {url}")
        if status != 200:
            raise RequestRefused(f"HTTP {status} from {url}: {response.content[:300]!r}")
        raw = response.content
        body = json_document(raw, url)
        if not isinstance(body, dict) or not any(key in body for key in required):
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            raise BadResponseError(f"answer without {' or '.join(required)} (got {keys}) from {url}")
        return ApiPage(url, status, raw, body, datetime.now(timezone.utc))

    def _check_batch(self, values: list[str]) -> None:
        if not 1 <= len(values) <= LOOKUP_BATCH:
            raise ValueError(f"lookups take 1-{LOOKUP_BATCH} values, got {len(values)}")

def account_problem(page: ApiPage, account_id: str) -> str | None:
    """`protected`/`suspended`/`deactivated` when a timeline answer says the account is not readable."""
    if page.body.get("data"):
        return None
    for error in page.errors:
        if error_subject(error) == str(account_id) and error.get("section") in (None, "data"):
            status = classify_user_error(error)
            if status is not None:
                return status
    return None


def page_meta(page: ApiPage) -> dict:
    """The page's `meta`, checked: posts need newest/oldest ids, each post an id."""
    meta, data = page.body.get("meta"), page.body.get("data")
    if not isinstance(meta, dict) or not isinstance(meta.get("result_count", 0), int):
        raise BadResponseError(f"timeline answer without a usable meta object: {page.url}")
    if data is None:
        return meta
    if not isinstance(data, list) or not all(isinstance(post, dict) and str(post.get("id", "")).isdigit() for post in data):
        raise BadResponseError(f"timeline answer whose data is not a list of posts with ids: {page.url}")
    ids = {str(post["id"]) for post in data}
    if data and not (meta.get("newest_id") in ids and meta.get("oldest_id") in ids):
        # the checkpoint becomes newest_id: it must name a post this page really holds
        raise BadResponseError(f"timeline answer whose meta.newest_id/oldest_id are not among its posts: {page.url}")
    return meta


# -- crash recovery ----------------------------------------------------------------------------


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def open_client(settings: XSettings, limiter: RateLimiter | None = None, user_agent: str | None = None) -> XClient:
    """The client the jobs use (one per run, sharing the limiter it is given)."""
    return XClient(settings, limiter=limiter, user_agent=user_agent)
