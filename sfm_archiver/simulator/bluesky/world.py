"""Accounts, their posts and reposts, and their lifecycle: the state AppView answers from.

Each account's history is made at start from the seed (deterministic: same seed, same records,
rkeys and CIDs); posts added later (`post`) take their times from the injected clock. Every
change is also announced to an EventSink (the Jetstream buffer), inside the world's lock, so
events come out in the order the changes happened.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Protocol, Sequence

from sfm_archiver.simulator.bluesky import records
from sfm_archiver.simulator.bluesky.ids import TidClock, cid_of, plc_did, tid
from sfm_archiver.simulator.bluesky.scenario import HANDLE, BlueskyAccountSpec, BlueskyScenario
from sfm_archiver.simulator.lifecycle import EventError
from sfm_archiver.timeutil import rfc3339_ms

ACTIVE, TAKENDOWN, DEACTIVATED, DELETED = "active", "takendown", "deactivated", "deleted"
_STRANGER_NAMES = ("river", "harbour", "maple", "quill", "atlas", "fern", "orbit", "pebble", "lumen", "cedar")


class EventSink(Protocol):
    def commit(self, did: str, operation: str, collection: str, rkey: str,
               record: dict[str, Any] | None, cid: str | None) -> None: ...
    def identity(self, did: str, handle: str) -> None: ...
    def account(self, did: str, active: bool, status: str | None) -> None: ...


@dataclass
class Author:
    """Someone whose posts appear in a feed: a scenario account or a made-up stranger."""

    did: str
    handle: str
    display_name: str
    created_at: str
    description: str = ""
    status: str = ACTIVE


@dataclass
class Post:
    uri: str
    cid: str
    author: Author
    record: dict[str, Any]
    indexed_at: str
    counts: tuple[int, int, int, int]  # replies, reposts, likes, quotes
    parent: Post | None = None
    root: Post | None = None

    @property
    def rkey(self) -> str:
        return self.uri.rsplit("/", 1)[1]


@dataclass
class Item:
    """One entry of an author feed: the author's post, or their repost of someone's post."""

    key: int  # sort position (µs), unique within the feed
    post: Post
    repost_uri: str | None = None
    repost_at: str | None = None

    @property
    def uri(self) -> str:
        return self.repost_uri or self.post.uri


@dataclass
class Account(Author):
    spec: BlueskyAccountSpec | None = None
    items: list[Item] = field(default_factory=list)  # oldest first
    rkeys: TidClock = field(default_factory=lambda: TidClock(0))
    made: int = 0  # posts made so far (seeds each post's randomness)

    def posts_count(self) -> int:
        return sum(1 for item in self.items if item.repost_uri is None)


class World:
    """Thread-safe registry of accounts and posts; `lock` guards reads that span several calls."""

    def __init__(self, scenario: BlueskyScenario, clock: Callable[[], float], events: EventSink):
        self.lock = threading.RLock()
        self._seed = scenario.seed
        self._clock = clock
        self._events = events
        self._accounts: dict[str, Account] = {}  # did -> account
        self._handles: dict[str, str] = {}  # handle -> did (current handles only)
        self._posts: dict[str, Post] = {}  # uri -> post, every post a reply may point at
        end_us = int(min(scenario.epoch_seconds(), clock()) * 1_000_000)
        for index, spec in enumerate(scenario.accounts):
            self._add_account(index, spec, end_us)

    # reading ---------------------------------------------------------------------------------

    def find(self, actor: str) -> Account | None:
        """The account a handle or DID names (deleted ones too), or None."""
        with self.lock:
            did = actor if actor.startswith("did:") else self._handles.get(actor.lower())
            return self._accounts.get(did) if did else None

    def account(self, did: str) -> Account:
        account = self.find(did)
        if account is None:
            raise EventError(f"no account {did!r}")
        return account

    def feed(self, account: Account, before: int | None) -> Iterator[Item]:
        """The account's feed items, newest first, from just below the `before` key (call under `lock`)."""
        for item in reversed(account.items):
            if before is None or item.key < before:
                yield item

    def accounts(self) -> list[Account]:
        with self.lock:
            return list(self._accounts.values())

    # changes ---------------------------------------------------------------------------------

    def post(self, did: str, text: str | None = None, links: Sequence[str] | None = None,
             reply_to: str | None = None) -> str:
        """Publish a post now (a Jetstream commit create); returns its at:// URI."""
        with self.lock:
            account = self._live(did)
            parent = None
            if reply_to is not None:
                parent = self._posts.get(reply_to)
                if parent is None:
                    raise EventError(f"no post {reply_to!r} to reply to")
            now_us = int(self._clock() * 1_000_000)
            post = self._make_post(account, now_us, text=text, links=links, parent=parent)
            key = max(now_us, account.items[-1].key + 1 if account.items else 0)
            account.items.append(Item(key, post))
            self._events.commit(did, "create", records.POST, post.rkey, post.record, post.cid)
            return post.uri

    def delete_post(self, uri: str) -> None:
        """Remove a post (or repost) from its author's feed; a Jetstream commit delete."""
        with self.lock:
            parts = uri.removeprefix("at://").split("/")
            account = self._accounts.get(parts[0]) if len(parts) == 3 else None
            found = [item for item in account.items if item.uri == uri] if account else []
            if not found:
                raise EventError(f"no post {uri!r} to delete")
            account.items.remove(found[0])
            self._posts.pop(uri, None)
            self._events.commit(account.did, "delete", parts[1], parts[2], None, None)

    def newest_post(self, did: str) -> str:
        with self.lock:
            account = self.account(did)
            if not account.items:
                raise EventError(f"{account.handle} has no posts")
            return account.items[-1].uri

    def rename(self, did: str, handle: str) -> None:
        handle = handle.lower()
        if not HANDLE.match(handle):
            raise EventError(f"{handle!r} is not a handle")
        with self.lock:
            account = self._live(did)
            if self._handles.get(handle, did) != did:
                raise EventError(f"the handle {handle} is taken")
            self._handles.pop(account.handle, None)
            account.handle = handle
            self._handles[handle] = did
            self._events.identity(did, handle)

    def set_status(self, did: str, status: str, allowed_from: Sequence[str]) -> None:
        """Move the account to `status` (from one of `allowed_from`); a Jetstream #account event."""
        with self.lock:
            account = self.account(did)
            if account.status not in allowed_from:
                raise EventError(f"{account.handle} is {account.status}, not {' or '.join(allowed_from)}")
            account.status = status
            if status == DELETED:
                self._handles.pop(account.handle, None)
            self._events.account(did, status == ACTIVE, None if status == ACTIVE else status)

    # making ----------------------------------------------------------------------------------

    def _live(self, did: str) -> Account:
        account = self.account(did)
        if account.status == DELETED:
            raise EventError(f"{did} is deleted")
        return account

    def _add_account(self, index: int, spec: BlueskyAccountSpec, end_us: int) -> None:
        rng = random.Random(f"{self._seed}:account:{index}")
        gaps = [max(1.0, rng.expovariate(1 / spec.post_interval_seconds)) for _ in range(spec.posts)]
        start_us = end_us - int(sum(gaps) * 1_000_000) - 86_400_000_000 * rng.randrange(30, 900)
        account = Account(plc_did(self._seed, spec.handle), spec.handle, spec.display_name or spec.handle.split(".")[0].title(),
                          _iso(start_us), spec.description, spec.status, spec=spec, rkeys=TidClock(rng.randrange(1024)))
        self._accounts[account.did] = account
        if spec.status != DELETED:
            self._handles[spec.handle] = account.did
        moment = end_us - int(sum(gaps) * 1_000_000)
        for gap in gaps:
            moment += int(gap * 1_000_000)
            account.items.append(self._history_item(account, rng, moment))

    def _history_item(self, account: Account, rng: random.Random, moment: int) -> Item:
        spec = account.spec
        assert spec is not None
        if rng.random() < spec.reposts:
            subject = self._stranger_post(rng, moment - int(rng.uniform(60, 86_400) * 1_000_000))
            rkey = account.rkeys.next(moment)
            return Item(moment, subject, f"at://{account.did}/{records.REPOST}/{rkey}", _iso(moment + 350_000))
        parent = None
        if rng.random() < spec.replies:
            own = [item.post for item in account.items[-20:] if item.repost_uri is None]
            if own and rng.random() < 0.3:
                parent = rng.choice(own)
            else:
                parent = self._stranger_post(rng, moment - int(rng.uniform(60, 36_000) * 1_000_000))
        return Item(moment, self._make_post(account, moment, parent=parent, rng=rng))

    def _make_post(self, author: Author, moment: int, *, text: str | None = None, links: Sequence[str] | None = None,
                   parent: Post | None = None, rng: random.Random | None = None) -> Post:
        if rng is None:
            assert isinstance(author, Account)
            author.made += 1
            rng = random.Random(f"{self._seed}:{author.did}:live:{author.made}")
        reply = None
        root = None
        if parent is not None:
            root = parent.root or parent
            reply = {"root": {"uri": root.uri, "cid": root.cid}, "parent": {"uri": parent.uri, "cid": parent.cid}}
        share = author.spec.links if isinstance(author, Account) and author.spec else 0.3
        record = records.make_record(rng, _iso(moment), share, text=text, links=links, reply=reply)
        rkey = author.rkeys.next(moment) if isinstance(author, Account) else _stranger_rkey(moment, rng)
        counts = (rng.randrange(6), rng.randrange(12), rng.randrange(80), rng.randrange(3))
        post = Post(f"at://{author.did}/{records.POST}/{rkey}", cid_of(_bytes(record)), author, record,
                    _iso(moment + rng.randrange(50_000, 2_000_000)), counts, parent, root)
        self._posts[post.uri] = post
        return post

    def _stranger_post(self, rng: random.Random, moment: int) -> Post:
        name = f"{rng.choice(_STRANGER_NAMES)}{rng.randrange(1000)}"
        stranger = Author(plc_did(self._seed, f"stranger:{name}"), f"{name}.bsky.social", name.title(),
                          _iso(moment - 400 * 86_400_000_000))
        return self._make_post(stranger, moment, rng=rng)


def _stranger_rkey(moment: int, rng: random.Random) -> str:
    return tid(moment, rng.randrange(1024))


def _bytes(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def _iso(micros: int) -> str:
    return rfc3339_ms(datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc))

