"""What a jetstream collection follows: the DIDs of its `from_collections`, and its keywords.

The accounts are those of the named bluesky timeline collections (active ones): a DID is taken
as written; a handle is resolved once (`com.atproto.identity.resolveHandle`) and the answer
kept in the state store beside the timeline's own resolutions, so a later rename does not
change which account is followed. The collection's own membership in the ledger (`added`,
`removed`) follows the DIDs, so its bags carry the accounts' history like a timeline's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property

from sfm_archiver.config import Collection, Config
from sfm_archiver.errors import PlatformError
from sfm_archiver.jobs.account_events import AccountBook, Observation
from sfm_archiver.platforms.bluesky_jetstream import (
    ACCOUNT,
    COMMIT,
    IDENTITY,
    WANTED_COLLECTIONS,
    WANTED_DIDS_MAX,
    JetstreamEvent,
    KeywordMatcher,
    resolve_handle,
)
from sfm_archiver.state import StateStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Follows:
    """The DIDs (with the handle each was configured by, if any, and its config key) and keywords."""

    handles: dict[str, str | None] = field(default_factory=dict)  # did -> handle (None: configured as a DID)
    config_keys: dict[str, str] = field(default_factory=dict)
    keywords: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @cached_property
    def matcher(self) -> KeywordMatcher:
        return KeywordMatcher(self.keywords)

    @property
    def dids(self) -> frozenset[str]:
        return frozenset(self.handles)

    @property
    def subscribed_dids(self) -> tuple[str, ...]:
        """The `wantedDids` to ask for: none with keywords (they are matched on every post)."""
        if self.keywords or len(self.handles) > WANTED_DIDS_MAX:
            return ()
        return tuple(sorted(self.handles))

    def wants(self, event: JetstreamEvent) -> bool:
        """Whether the event belongs to the collection: a post (or its deletion), a handle or
        account change of a followed DID, or a new post holding one of the keywords."""
        if event.did in self.handles:
            return event.kind in (IDENTITY, ACCOUNT) or (event.kind == COMMIT and event.collection in WANTED_COLLECTIONS)
        return self.matcher.matches(event)

    def same_subscription(self, other: Follows) -> bool:
        return (self.dids, self.keywords) == (other.dids, other.keywords)


def follows_of(config: Config, store: StateStore, collection: Collection) -> Follows:
    """The follows of a jetstream collection, resolving handles not resolved before."""
    handles: dict[str, str | None] = {}
    keys: dict[str, str] = {}
    problems: list[str] = []
    for source in collection.from_collections:
        try:
            timeline = config.collection(source)
        except KeyError:
            problems.append(f"from_collections names {source!r}, which is not in the configuration")
            continue
        for entry in timeline.accounts:
            if not entry.active:
                continue
            did = entry.id or store.resolved_id(source, entry.username or "")
            if did is None:
                try:
                    did = resolve_handle(config.bluesky.appview_url, entry.username or "", config.user_agent())
                except PlatformError as error:
                    problems.append(f"{source}: {error}; not followed until the next start or reload")
                    continue
                store.record_resolution(source, entry.username or "", did)
            handles.setdefault(did, entry.username)
            keys.setdefault(did, entry.key)
    return Follows(handles, keys, tuple(collection.keywords), tuple(problems))


def sync_members(book: AccountBook, store: StateStore, collection: str, follows: Follows) -> list[dict]:
    """Bring the collection's membership in the ledger and the store in line with `follows`."""
    with book.session() as view:
        for did in sorted(follows.dids):
            if book.add_member(view, collection, Observation(did, None, username=follows.handles[did]),
                               follows.config_keys[did]):
                book.update_store(lambda did=did: store.link_account(collection, did, follows.config_keys[did]))
        for did in sorted(view.member_ids(collection) - follows.dids):
            book.remove_member(view, collection, did)
            book.update_store(lambda did=did: store.remove_membership(collection, did))
    return book.appended


def observation_of(event: JetstreamEvent, status: str | None) -> Observation:
    """What an identity (the handle now) or account event (the status now) shows of its DID."""
    return Observation(event.did, status, username=event.handle if event.kind == IDENTITY else None)
