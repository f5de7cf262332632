"""What the archive needs of a platform: the seam between its neutral duties and one API.

Captures, the ledger, bags, exports and the daemon are the same for every platform; what
differs is behind a `Platform` (one per platform module, registered in `platforms/__init__.py`
under the name `collections[].platform` takes). Code outside `platforms/` reaches a platform's
particulars only through this interface (tests/test_architecture.py keeps it so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, Protocol

if TYPE_CHECKING:
    from sfm_archiver.config import Config
    from sfm_archiver.ratelimit import Quota, Wait, WaitFn

# The account statuses every platform's answers are read as (the ledger's words).
ACTIVE, PROTECTED, SUSPENDED, DEACTIVATED = "active", "protected", "suspended", "deactivated"


@dataclass(frozen=True)
class Observation:
    """One account as an answer showed it; status/username/profile are None when not visible."""

    account_id: str
    status: str | None
    username: str | None = None
    profile: dict | None = None


@dataclass(frozen=True)
class TimelinePage:
    """One page of an account's posts, newest first, as the timeline job needs it of any platform."""

    raw: bytes  # the answer's exact bytes: the capture line's payload
    url: str  # the request, without credentials
    count: int  # posts on the page
    newest: str | None  # what the account's checkpoint becomes once the page is durable
    oldest: str | None
    cursor: str | None  # the next (older) page; None at the end
    problem: str | None = None  # protected / suspended / deactivated: the account is not readable
    author: Observation | None = None  # what the page shows of its author (a rename, a lock)


class Answer(Protocol):
    """One API answer as it is captured: its exact bytes and the request (no credentials)."""

    url: str
    raw: bytes


@dataclass
class AccountLookup:
    """What lookups of accounts showed: the accounts found (by stable id), the problems (by the
    id or handle asked for: suspended, deactivated, ...), the answers (captured by
    update-usernames) and the values whose batch failed (their state is unknown, never guessed)."""

    found: dict[str, Observation] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    pages: list[Answer] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class TimelineClient(Protocol):
    """The calls the timeline harvest and the account jobs make."""

    reach: int  # how far back the platform lets a timeline be read (posts)
    calls: int  # calls made, and retries among them (the run's counts)
    retries: int
    credential: str  # a fingerprint of the credential (budgets and usage caps are per credential)
    workers: int  # accounts harvested side by side

    def lookup_accounts(self, values: list[str], by: str, wait: WaitFn | None = None,
                        announce: Callable[[Wait], None] | None = None,
                        on_page: Callable[[Answer], None] | None = None) -> AccountLookup:
        """The accounts of `values`, by `id` (stable ids) or `username` (handles), in the batches
        the platform allows; a failed batch is noted in `failed`, not raised (AuthError and
        UsageCappedError are raised: they concern every batch)."""
        ...

    def timeline_page(self, account_id: str, after: str | None, cursor: str | None, want: int,
                      wait=None, announce=None) -> TimelinePage:
        """A page of the account's posts newer than the checkpoint `after` (None: from the newest)."""
        ...


class Platform(Protocol):
    name: str

    def secrets(self, config: Config) -> list[str]:
        """The credentials of this platform in `config`: scrubbed from logs and WARC records."""
        ...

    def summary(self, config: Config) -> str:
        """check-config's line for the platform: where its API is and whether a credential is
        set (never the credential)."""
        ...

    def capture_meta(self) -> dict:
        """What each capture line's `__sfm` says of the platform (`{"platform": name}`; X's
        captures are older than the key and carry none, so an X line still means X)."""
        ...

    def rate_reading(self, headers: Mapping[str, str]) -> tuple[Quota | None, float | None]:
        """The rate-limit window a response reports, and its `Date` (for `RateLimiter.observe`)."""
        ...

    def record_posts(self, record: dict) -> Iterator[dict]:
        """The posts of one capture line (a page's items, a stream message, referenced posts)."""
        ...

    def page_newest(self, record: dict) -> str | None:
        """The checkpoint a captured timeline page leads to (its newest post), as `TimelinePage.newest`."""
        ...

    def post_id(self, post: dict) -> str | None:
        """The post's stable id (X: its id; Bluesky: its at:// URI), as link results name it."""
        ...

    def post_links(self, post: dict) -> Iterator[str]:
        """The links a post carries, as the platform expanded them (what fetch-urls resolves)."""
        ...

    def open_client(self, config: Config, limiter=None, user_agent: str | None = None) -> TimelineClient:
        """The platform's API client for the jobs (its HTTP stack imported only now)."""
        ...
