"""The Bluesky AppView XRPC calls we make: author feeds and profiles, over `requests`.

Every answer keeps its exact bytes, status and headers: the bytes go to the archive unchanged,
the headers (`ratelimit-*`, `Date`) feed the shared `RateLimiter`. Calls are paced and retried
by `paced.PacedCalls` as X's are: 5xx, network errors and damaged bodies with capped backoff, a
plain 429 after the window it reports (one budget for every method: the AppView counts calls
per client, not per method).

Without a login the client reads the public AppView (`bluesky.appview_url`) anonymously, and
every budget is kept under the credential `public`. With `bluesky.identifier` and an app
password it calls `bluesky.service_url` instead, with the session `bluesky_session` makes and
renews; budgets are then kept per identifier.

Accounts (HTTP 400 `{"error", "message"}`): `AccountTakedown` is `suspended`,
`AccountDeactivated` is `deactivated`, and `Profile not found` for an account we track (a
deleted one: its DID no longer answers) is `deactivated` too, the ledger's one event for an
account that is gone (as X's "not found"); the answer that tells the two apart is captured by
update-usernames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import requests

from sfm_archiver import SOFTWARE
from sfm_archiver.config import DID, BlueskySettings
from sfm_archiver.errors import AuthError, BadResponseError, PlatformError, RequestRefused, TransientError
from sfm_archiver.platforms.base import ACTIVE, DEACTIVATED, SUSPENDED, AccountLookup, Answer, Observation, TimelinePage
from sfm_archiver.platforms.bluesky_platform import BLUESKY, already_captured, checkpoint_of, feed_items, item_uri
from sfm_archiver.platforms.bluesky_session import is_expired, shared_session
from sfm_archiver.platforms.paced import Announce, PacedCalls, RateLimited, json_document, public_url
from sfm_archiver.ratelimit import RateLimiter, WaitFn

FEED = "app.bsky.feed.getAuthorFeed"
PROFILE = "app.bsky.actor.getProfile"
PROFILES = "app.bsky.actor.getProfiles"
ENDPOINT = "GET /xrpc/*"  # one window for every method
PROFILES_BATCH = 25
FEED_PAGE = 100
# An author feed pages back to the account's first post (the whole repository is public), so there
# is no reach as X's 3,200: this only keeps the timeline job's gap warning for what cannot happen.
FEED_REACH = 1_000_000_000
NARROWING = 4  # re-reads of a page that ends at the checkpoint (each narrower), before paging on
PUBLIC = "public"
WORKERS = 4
MAX_RETRIES = 4
TIMEOUT = 30.0

# XRPC errors that are about the account, not the request: its status
ACCOUNT_ERRORS = {"AccountTakedown": SUSPENDED, "AccountDeactivated": DEACTIVATED}
NOT_FOUND = "Profile not found"


@dataclass(frozen=True)
class XrpcAnswer:
    """One answer: its exact bytes, the parsed document and the request (no credentials)."""

    url: str
    status: int
    raw: bytes
    body: dict

    @property
    def account_status(self) -> str | None:
        """`suspended` / `deactivated` when the answer is an error about the account, else None."""
        if self.status == 200:
            return None
        error, message = self.body.get("error"), self.body.get("message")
        if error in ACCOUNT_ERRORS:
            return ACCOUNT_ERRORS[error]
        return DEACTIVATED if error == "InvalidRequest" and message == NOT_FOUND else None


def well_formed_profile(profile: object) -> bool:
    """A profile with a DID and a handle: only such answers prove anything about an account."""
    return (isinstance(profile, dict) and isinstance(profile.get("did"), str) and DID.match(profile["did"]) is not None
            and isinstance(profile.get("handle"), str) and bool(profile["handle"]))


def observation_of_profile(profile: dict) -> Observation:
    return Observation(profile["did"], ACTIVE, profile["handle"].lower(), profile)


def author_observation(items: list[dict], account_id: str) -> Observation | None:
    """The feed's owner as its page shows it: the author of its own posts, or the `by` of its reposts."""
    for item in items:
        for profile in (item["post"].get("author"), (item.get("reason") or {}).get("by")):
            if well_formed_profile(profile) and profile["did"] == account_id:
                return Observation(account_id, ACTIVE, profile["handle"].lower())
    return None


class BlueskyClient(PacedCalls):
    """Author feeds and profile lookups of the AppView, paced, retried and classified."""

    reach = FEED_REACH
    platform = "bluesky"

    def __init__(self, settings: BlueskySettings, *, limiter: RateLimiter | None = None,
                 backoff_base: float = 1.0, backoff_cap: float = 60.0, user_agent: str | None = None,
                 sleep: Callable[[float], None] = time.sleep, workers: int = WORKERS,
                 max_retries: int = MAX_RETRIES, timeout: float = TIMEOUT):
        self.settings = settings
        agent = f"{user_agent} {SOFTWARE}" if user_agent else SOFTWARE
        self.login = (shared_session(settings.service_url, settings.identifier, settings.app_password, timeout=timeout,
                                     user_agent=agent) if settings.identifier and settings.app_password else None)
        self.base_url = self.login.service_url if self.login else settings.appview_url.rstrip("/")
        self.workers = workers
        credential = f"login:{settings.identifier.lower()}" if self.login else PUBLIC
        self.init_pacing(credential, limiter, max_retries, BLUESKY.rate_reading, backoff_base, backoff_cap, sleep)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.trust_env = False  # as X's: no proxy from the environment
        self.session.headers["User-Agent"] = agent
        self.session.headers["Accept"] = "application/json"

    # -- timelines ------------------------------------------------------------------------

    def author_feed(self, actor: str, cursor: str | None, limit: int, wait: WaitFn | None = None,
                    announce: Announce | None = None) -> XrpcAnswer:
        """One page of the account's posts and reposts, newest first."""
        params = [("actor", actor), ("limit", str(max(1, min(FEED_PAGE, limit))))]
        if cursor:
            params.append(("cursor", cursor))
        return self._get(FEED, params, ("feed",), wait, announce)

    def timeline_page(self, account_id: str, after: str | None, cursor: str | None, want: int,
                      wait: WaitFn | None = None, announce: Announce | None = None) -> TimelinePage:
        """`TimelineClient.timeline_page`: the author feed down to the checkpoint `after`.

        The AppView has no "since": a page that reaches the checkpoint is read again with a
        limit of just the new items before it, so a capture holds no item already captured. If
        posts arrived between the two reads (only on the first page: a cursor names a position),
        the narrower page holds only new items and paging goes on from it.
        """
        limit = max(1, min(FEED_PAGE, want))
        expected: list[str] | None = None  # the new items a narrowed read should hold, in order
        for _ in range(NARROWING + 1):
            answer = self.author_feed(account_id, cursor, limit, wait, announce)
            if answer.account_status is not None:
                return TimelinePage(answer.raw, answer.url, 0, None, None, None, answer.account_status)
            items = self._checked_items(answer)
            author = author_observation(items, account_id)
            seen = next((index for index, item in enumerate(items) if after and already_captured(item, after)), None)
            if seen == 0:
                return TimelinePage(answer.raw, answer.url, 0, None, None, None, None, author)
            if seen is None:
                uris = [item_uri(item) for item in items]
                ended = uris == expected  # exactly the new items: the checkpoint comes next
                next_cursor = None if ended or not items else answer.body.get("cursor")
                return TimelinePage(answer.raw, answer.url, len(items), checkpoint_of(items[0]) if items else None,
                                    checkpoint_of(items[-1]) if items else None,
                                    next_cursor if isinstance(next_cursor, str) and next_cursor else None, None, author)
            expected, limit = [item_uri(item) for item in items[:seen]], seen
        raise TransientError(f"the feed of {account_id} kept changing while it was read; it is read again next run")

    def _checked_items(self, answer: XrpcAnswer) -> list[dict]:
        feed = answer.body.get("feed")
        if not isinstance(feed, list):
            raise BadResponseError(f"feed answer whose feed is not a list: {answer.url}")
        items = feed_items(answer.body)
        if len(items) != len(feed):
            raise BadResponseError(f"feed answer with items that hold no post URI: {answer.url}")
        return items

    # -- accounts -------------------------------------------------------------------------

    def lookup_accounts(self, values: list[str], by: str, wait: WaitFn | None = None,
                        announce: Announce | None = None,
                        on_page: Callable[[Answer], None] | None = None) -> AccountLookup:
        """`TimelineClient.lookup_accounts`: profiles of DIDs (`id`) or handles (`username`), 25
        per getProfiles call; those it leaves out (taken down, deactivated, gone) are asked for
        one by one with getProfile, whose error says which."""
        result = AccountLookup()

        def keep(answer: XrpcAnswer) -> None:
            result.pages.append(answer)
            if on_page is not None:
                on_page(answer)

        for start in range(0, len(values), PROFILES_BATCH):
            batch = values[start:start + PROFILES_BATCH]
            try:
                answer = self._get(PROFILES, [("actors", value) for value in batch], ("profiles",), wait, announce)
            except AuthError:
                raise
            except PlatformError as error:
                result.failed.update((value, str(error)) for value in batch)
                continue
            keep(answer)
            profiles = answer.body.get("profiles")
            if not isinstance(profiles, list) or not all(well_formed_profile(p) for p in profiles):
                detail = f"damaged answer (a profile without a DID or a handle): {answer.url}"
                result.failed.update((value, detail) for value in batch)
                continue
            shown = {_key(profile["did"] if by == "id" else profile["handle"]): profile for profile in profiles}
            for value in batch:
                profile = shown.get(_key(value))
                if profile is not None:
                    result.found[profile["did"]] = observation_of_profile(profile)
                else:
                    self._ask_why(value, result, keep, wait, announce)
        return result

    def _ask_why(self, value: str, result: AccountLookup, keep: Callable[[XrpcAnswer], None],
                 wait: WaitFn | None, announce: Announce | None) -> None:
        try:
            answer = self._get(PROFILE, [("actor", value)], ("did",), wait, announce)
        except AuthError:
            raise
        except PlatformError as error:
            result.failed[value] = str(error)
            return
        keep(answer)
        if answer.account_status is not None:
            result.problems[value] = answer.account_status
        elif well_formed_profile(answer.body):  # back between the two calls
            result.found[answer.body["did"]] = observation_of_profile(answer.body)
        else:
            result.failed[value] = f"damaged answer (a profile without a DID or a handle): {answer.url}"

    # -- one call -------------------------------------------------------------------------

    def _get(self, nsid: str, params: list[tuple[str, str]], required: tuple[str, ...],
             wait: WaitFn | None, announce: Announce | None) -> XrpcAnswer:
        url = f"{self.base_url}/xrpc/{nsid}"
        return self.paced_call(ENDPOINT, wait, announce,
                               lambda: self.session.get(url, params=params, timeout=self.timeout, headers=self._auth()),
                               lambda response: self._classify(response, required))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": self.login.authorization()} if self.login else {}

    def _classify(self, response: requests.Response, required: tuple[str, ...]) -> XrpcAnswer:
        status, url, raw = response.status_code, public_url(response.url), response.content
        if status in (401, 403):
            advice = ("check bluesky.identifier and its app password" if self.login
                      else "check bluesky.appview_url (a service that needs a login needs bluesky.identifier)")
            raise AuthError(f"the Bluesky service refused the request (HTTP {status}) at {url}: {advice}")
        if status == 429:
            raise RateLimited()
        if status >= 500 and status != 501:
            raise TransientError(f"HTTP {status} from {url}")
        if status not in (200, 400):
            raise RequestRefused(f"HTTP {status} from {url}: {raw[:300]!r}")
        body = json_document(raw, url)
        if not isinstance(body, dict):
            raise BadResponseError(f"answer that is not a JSON object ({type(body).__name__}) from {url}")
        answer = XrpcAnswer(url, status, raw, body)
        if self.login and is_expired(status, body):
            self.login.renew(response.request.headers.get("Authorization", ""))
            raise TransientError(f"the session of {self.login.identifier} expired at {url}; renewed")
        if status == 400:
            if answer.account_status is None:
                raise RequestRefused(f"HTTP 400 from {url}: {body.get('error')}: {body.get('message')}")
            return answer
        if not any(key in body for key in required):
            raise BadResponseError(f"answer without {' or '.join(required)} (got {sorted(body)}) from {url}")
        return answer


def _key(value: str) -> str:
    """DIDs and handles as lookups compare them (handles are case-insensitive)."""
    return value if value.startswith("did:") else value.lower()
