"""Accounts, their posts and their lifecycle: the state the REST endpoints read.

Posts are materialised lazily and deterministically: the initial history the first time an
account is touched, live posts (`posts_per_second`) up to "now" before every read or change.
Every post ever published stays in the account's log, which is what invariant checks compare
an archive against.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable

from sfm_archiver.simulator.scenario import AccountSpec, Scenario
from sfm_archiver.simulator.tweets import ACCOUNT_SLOTS, KIND_NAMES, TweetFactory, UserView, format_ms, id_ms, make_id

INITIAL, LIVE, SCRIPTED = 0, 1, 2
SOURCE_NAMES = {INITIAL: "initial", LIVE: "rate", SCRIPTED: "script"}


class WorldError(ValueError):
    """A lifecycle change that cannot apply (unknown account, username taken, ...)."""


@dataclass
class Account:
    id: str
    username: str
    name: str
    slot: int
    spec: AccountSpec
    history_end_ms: int
    protected: bool = False
    suspended: bool = False
    deactivated: bool = False
    created_ms: int = 0
    pinned_tweet_id: str | None = None
    ids: array = field(default_factory=lambda: array("q"))
    kinds: bytearray = field(default_factory=bytearray)
    sources: bytearray = field(default_factory=bytearray)
    materialised: bool = False
    next_live: int = 1

    @property
    def active(self) -> bool:
        return not (self.suspended or self.deactivated)


class World:
    """Thread-safe account registry; every public method catches posts up to now first."""

    def __init__(self, scenario: Scenario, factory: TweetFactory, clock: Callable[[], float]):
        self.factory = factory
        self.clock = clock
        self._lock = threading.RLock()
        self._clock_start_ms = int(clock() * 1000)
        self.start_ms = max(self._clock_start_ms, scenario.epoch_ms())
        self._epoch_ms = scenario.epoch_ms()
        self._accounts: dict[str, Account] = {}
        self._usernames: dict[str, str] = {}
        for spec in scenario.accounts:
            self._add(spec, self._epoch_ms)

    def now_ms(self) -> int:
        """Simulated wall time: real elapsed time added to max(real start, scenario epoch)."""
        return self.start_ms + int(self.clock() * 1000) - self._clock_start_ms

    # lookups ---------------------------------------------------------------------------------

    def by_id(self, account_id: str) -> Account | None:
        with self._lock:
            account = self._accounts.get(account_id)
            if account:
                self._catch_up(account)
            return account

    def by_username(self, username: str) -> Account | None:
        with self._lock:
            account_id = self._usernames.get(username.lower())
            return self.by_id(account_id) if account_id else None

    def resolve(self, ref: Any) -> Account:
        """An account named by id or by its current username (lifecycle events use either)."""
        text = str(ref)
        account = self.by_id(text) or self.by_username(text)
        if account is None:
            raise WorldError(f"no account with id or username {text!r}")
        return account

    def view(self, account: Account) -> UserView:
        with self._lock:
            return UserView(account.id, account.username, account.name, account.created_ms,
                            account.spec.description, account.spec.location, account.protected,
                            account.spec.verified, len(account.ids), account.pinned_tweet_id)

    def posts(self, account: Account) -> tuple[array, bytearray]:
        """Snapshot of (ids ascending, kinds) of an account."""
        with self._lock:
            self._catch_up(account)
            return array("q", account.ids), bytearray(account.kinds)

    # lifecycle -------------------------------------------------------------------------------

    def set_flag(self, ref: Any, flag: str, value: bool) -> Account:
        with self._lock:
            account = self.resolve(ref)
            setattr(account, flag, value)
            return account

    def rename(self, ref: Any, username: str) -> Account:
        with self._lock:
            account = self.resolve(ref)
            holder = self._usernames.get(username.lower())
            if holder and holder != account.id:
                raise WorldError(f"username {username!r} is taken by account {holder}")
            self._usernames.pop(account.username.lower(), None)
            account.username = username
            self._usernames[username.lower()] = account.id
            return account

    def reassign_username(self, username: str, account_id: str | None = None, name: str | None = None,
                          tweets: int = 0, posts_per_second: float = 0.0) -> Account:
        """Give `username` to a NEW account; its current holder must be suspended or deactivated."""
        with self._lock:
            holder_id = self._usernames.get(username.lower())
            if holder_id and self._accounts[holder_id].active:
                raise WorldError(f"username {username!r} is held by active account {holder_id}")
            new_id = str(account_id) if account_id is not None else str(
                max(int(known) for known in self._accounts) + 1 if self._accounts else 1)
            if new_id in self._accounts or not new_id.isdigit():
                raise WorldError(f"account id {new_id!r} is invalid or already exists")
            spec = AccountSpec(new_id, username, name or username, tweets=int(tweets),
                               posts_per_second=float(posts_per_second))
            self._usernames.pop(username.lower(), None)
            return self._add(spec, self.now_ms())

    def publish(self, ref: Any, count: int = 1) -> list[int]:
        """Post `count` tweets now (script `post` action)."""
        with self._lock:
            account = self.resolve(ref)
            if not account.active:
                raise WorldError(f"account {account.id} is suspended or deactivated and cannot post")
            now = self.now_ms()
            return [self._append(account, now, SCRIPTED) for _ in range(int(count))]

    # records ---------------------------------------------------------------------------------

    def accounts(self) -> list[Account]:
        with self._lock:
            for account in self._accounts.values():
                self._catch_up(account)
            return list(self._accounts.values())

    def published(self) -> dict[str, list[dict[str, str]]]:
        """Every post each account published, oldest first."""
        with self._lock:
            return {account.id: [{"id": str(tweet_id), "created_at": format_ms(id_ms(tweet_id)),
                                  "kind": KIND_NAMES[kind], "source": SOURCE_NAMES[source]}
                                 for tweet_id, kind, source in zip(account.ids, account.kinds, account.sources, strict=True)]
                    for account in self.accounts()}

    # internals -------------------------------------------------------------------------------

    def _add(self, spec: AccountSpec, history_end_ms: int) -> Account:
        slot = len(self._accounts) + 1
        if slot >= ACCOUNT_SLOTS:
            raise WorldError("too many accounts for the id space")
        account = Account(spec.id, spec.username, spec.name or spec.username, slot, spec, history_end_ms,
                          protected=spec.protected, suspended=spec.suspended, deactivated=spec.deactivated)
        self._accounts[spec.id] = account
        self._usernames[spec.username.lower()] = spec.id
        return account

    def _catch_up(self, account: Account) -> None:
        if not account.materialised:
            self._materialise(account)
        rate = account.spec.posts_per_second
        if rate <= 0:
            return
        due = int((self.now_ms() - self.start_ms) * rate / 1000)
        while account.next_live <= due:
            if account.active:
                self._append(account, self.start_ms + int(account.next_live * 1000 / rate), LIVE)
            account.next_live += 1

    def _materialise(self, account: Account) -> None:
        """The initial history: `tweets` posts spread back in time from the history end."""
        rng = self.factory.rng(int(account.id), 7)
        mean_ms = account.spec.tweet_interval_seconds * 1000
        moments = []
        moment = account.history_end_ms
        for _ in range(account.spec.tweets):
            moment -= max(1, int(rng.expovariate(1.0) * mean_ms))
            moments.append(moment)
        account.materialised = True
        oldest = moments[-1] if moments else account.history_end_ms
        account.created_ms = oldest - rng.randrange(86_400_000, 5 * 365 * 86_400_000)
        for moment in reversed(moments):
            self._append(account, moment, INITIAL)
        if account.ids and rng.random() < 0.3:
            account.pinned_tweet_id = str(account.ids[0])

    def _append(self, account: Account, ms: int, source: int) -> int:
        if account.ids:
            ms = max(ms, id_ms(account.ids[-1]) + 1)
        tweet_id = make_id(ms, account.slot)
        account.ids.append(tweet_id)
        account.kinds.append(self.factory.kind_of(tweet_id))
        account.sources.append(source)
        return tweet_id
