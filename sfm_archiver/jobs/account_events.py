"""Account changes, once: compare what an answer showed of an account with the ledger, append events.

Every job that sees accounts uses this one book: `update-usernames` (lookups of every account),
the timeline harvest (a page's `includes.users` carries its author's current username and
`protected` flag; a timeline answer's errors say suspended, deactivated, protected) and the sync
of the configuration. Events are derived by comparing an observation with the ledger's own
record of the account (its projection), under a lock shared by every process, and appended
before the state store is updated. A crash between the two leaves the ledger ahead of the
store; the next run derives nothing new from the same observation and just brings the store up
to date. So whichever job sees a change first records it, and no run or restart repeats it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from sfm_archiver.ledger import Ledger
from sfm_archiver.platforms.base import ACTIVE, DEACTIVATED, PROTECTED, SUSPENDED, Observation
from sfm_archiver.state import StateStore

__all__ = ["ACTIVE", "DEACTIVATED", "PROTECTED", "SUSPENDED", "AccountBook", "Observation", "differs", "status_event"]

AVAILABLE = (ACTIVE, PROTECTED)
MEMBERSHIP_EVENTS = ("added", "removed", "paused", "resumed", "username_reassigned")
STATUS_EVENTS = ("protected", "unprotected", "suspended", "unsuspended", "deactivated", "reactivated")
_EVENTS_LOCK = "accounts.lock"


def differs(seen: Observation, stored: dict) -> bool:
    """True when `seen` shows something the state store does not hold yet (worth a ledger check)."""
    return bool((seen.username and seen.username != stored.get("username"))
                or (seen.status and seen.status != (stored.get("status") or ACTIVE)))


def status_event(before: str, after: str | None) -> str | None:
    """The ledger event for a change of status (from/to are the two statuses), or None."""
    if after is None or before == after:
        return None
    if before in AVAILABLE and after in AVAILABLE:
        return "protected" if after == PROTECTED else "unprotected"
    if after in (SUSPENDED, DEACTIVATED):
        return after
    return "unsuspended" if before == SUSPENDED else "reactivated"


@dataclass
class LedgerView:
    """What the ledger says now: each account's username and status, each membership."""

    accounts: dict[str, dict] = field(default_factory=dict)
    members: dict[tuple[str, str], dict] = field(default_factory=dict)
    reassignments: set[tuple[str, str, str]] = field(default_factory=set)

    @classmethod
    def load(cls, ledger: Ledger) -> LedgerView:
        view = cls()
        for record in ledger.records():
            view.apply(record)  # ids never collide across platforms (X: digits, Bluesky: DIDs)
        return view

    def apply(self, record: dict) -> None:
        account_id, event = str(record.get("account_id")), record.get("event")
        collection = record.get("collection")
        state = self.accounts.setdefault(account_id, {"username": None, "status": ACTIVE})
        if event == "added":
            snapshot = record.get("to") or {}
            state["username"] = snapshot.get("username") or state["username"]
            state["status"] = snapshot.get("status") or state["status"]
            self.members[(collection, account_id)] = {"active": True, "config_key": record.get("config_key")}
        elif event == "renamed":
            state["username"] = record.get("to")
        elif event in STATUS_EVENTS:
            state["status"] = record.get("to")
        elif event == "removed":
            self.members.pop((collection, account_id), None)
        elif event in ("paused", "resumed") and (collection, account_id) in self.members:
            self.members[(collection, account_id)]["active"] = event == "resumed"
        elif event == "username_reassigned":
            moved = record.get("to") or {}
            self.reassignments.add((collection, str(moved.get("username", "")).lower(), str(moved.get("id"))))

    def member_ids(self, collection: str) -> set[str]:
        return {account_id for (name, account_id) in self.members if name == collection}


@contextmanager
def events_lock(state_dir: Path) -> Iterator[None]:
    """Serialise deriving-and-appending events (several jobs and processes share one ledger)."""
    path = Path(state_dir) / "locks" / _EVENTS_LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class AccountBook:
    """Applies observations and the configuration to the ledger and the state store."""

    def __init__(self, ledger: Ledger, store: StateStore, state_dir: Path, observed_by: dict, platform: str):
        self.ledger = ledger
        self.platform = platform  # the `platform` of every event appended (accounts of one collection)
        self.store = store
        self.state_dir = Path(state_dir)
        self.observed_by = observed_by
        self.appended: list[dict] = []
        self._lock = threading.Lock()
        self._store_updates: list[Callable[[], None]] = []

    @contextmanager
    def session(self) -> Iterator[LedgerView]:
        """The ledger's current view, held under the events lock for one batch of changes.

        Events are appended as they are found; the store follows in one transaction at the end
        (it may lag the ledger, never lead it, and the database is not held during the appends).
        """
        with self._lock, events_lock(self.state_dir):
            try:
                yield LedgerView.load(self.ledger)
            finally:
                updates, self._store_updates = self._store_updates, []
                if updates:
                    with self.store.transaction():
                        for update in updates:
                            update()

    def update_store(self, update: Callable[[], None]) -> None:
        """Run `update` against the store when the current session ends."""
        self._store_updates.append(update)

    def observe(self, observations: list[Observation]) -> list[dict]:
        """Record what was seen of accounts we track; returns the events appended."""
        with self.session() as view:
            return [event for seen in observations for event in self.apply_observation(view, seen)]

    def apply_observation(self, view: LedgerView, seen: Observation) -> list[dict]:
        """Events for one observation of an account the ledger knows; then update the store."""
        events = []
        known = view.accounts.get(seen.account_id)
        if known is not None:
            # an account added while unreadable has no name in the ledger: the store learnt it later
            before = known["username"] or (self.store.account(seen.account_id) or {}).get("username")
            if seen.username and before and seen.username != before:
                events.append(self._append(view, seen.account_id, "renamed", before, seen.username))
            name = status_event(known["status"], seen.status)
            if name:
                events.append(self._append(view, seen.account_id, name, known["status"], seen.status))
        self.update_store(lambda: self.store.upsert_account(
            seen.account_id, username=seen.username, status=seen.status, profile=seen.profile))
        return events

    def add_member(self, view: LedgerView, collection: str, seen: Observation, config_key: str) -> dict | None:
        if (collection, seen.account_id) in view.members:
            return None
        snapshot = {"username": seen.username, "status": seen.status, "profile": seen.profile}
        return self._append(view, seen.account_id, "added", None, snapshot, collection=collection, config_key=config_key)

    def set_active(self, view: LedgerView, collection: str, account_id: str, active: bool) -> dict | None:
        member = view.members.get((collection, account_id))
        if member is None or member["active"] == active:
            return None
        if active:
            return self._append(view, account_id, "resumed", "paused", "active", collection=collection)
        return self._append(view, account_id, "paused", "active", "paused", collection=collection)

    def remove_member(self, view: LedgerView, collection: str, account_id: str) -> dict | None:
        member = view.members.get((collection, account_id))
        if member is None:
            return None
        return self._append(view, account_id, "removed", member.get("config_key"), None, collection=collection)

    def report_reassignment(self, view: LedgerView, collection: str, account_id: str, username: str,
                            new_id: str) -> dict | None:
        if (collection, username.lower(), new_id) in view.reassignments:
            return None
        return self._append(
            view, account_id, "username_reassigned", {"username": username, "id": account_id},
            {"username": username, "id": new_id}, collection=collection,
        )

    def _append(self, view: LedgerView, account_id: str, event: str, from_: object, to: object, **details) -> dict:
        record = self.ledger.append(
            account_id=account_id, event=event, observed_by=self.observed_by, from_=from_, to=to,
            platform=self.platform, **details,
        )
        view.apply(record)
        self.appended.append(record)
        return record
