"""Accounts of timeline collections: config → tracked ids, and every change of state, once.

Accounts are tracked by id (DESIGN.md section 5). A configured username is resolved once, by
bulk lookup; from then on renames do not change which account is harvested, and a username that
later belongs to another id is reported (`username_reassigned`), never followed.

Exactly once: every observation goes through account_events.AccountBook, which the timeline
harvest uses too; whichever job sees a change first records it.

    sync_accounts(ctx, name)          config → state: added / removed / paused / resumed
    update_usernames(ctx, name)       lookup of every account: renamed, (un)protected, ...
    check_accounts_online(config)     problems of configured accounts, changing nothing
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Callable, Iterator

from sfm_archiver.config import AccountEntry, Collection, Config
from sfm_archiver.errors import AuthError, PlatformError, SfmError, StopRequested, UsageCappedError, UsageError
from sfm_archiver.jobs.account_events import DEACTIVATED, PROTECTED, SUSPENDED, AccountBook, Observation
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.runs import RunRecorder
from sfm_archiver.locks import collection_lock
from sfm_archiver.platforms import platform_of
from sfm_archiver.platforms.base import AccountLookup, Answer, TimelineClient
from sfm_archiver.ratelimit import RateLimiter, Wait, WaitFn
from sfm_archiver.state import StateStore
from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.warc import record_api_calls
from sfm_archiver.storage.writer import CaptureWriter
from sfm_archiver.timeutil import Clock, parse_timestamp

USAGE_CAP_RECHECK = timedelta(hours=1)


# -- sync: configuration → state ------------------------------------------------------------


@dataclass
class _Wanted:
    """One account the configuration asks for, after resolution."""

    account_id: str
    entry: AccountEntry
    active: bool


def describe_entry(collection: Collection, entry: AccountEntry) -> str:
    name = f"id {entry.id}" if entry.id else f"'{entry.username}'"
    line = f" ({collection.name}, config line {entry.line})" if entry.line else f" ({collection.name})"
    return f"account {name}{line}"


class AccountSync:
    """Brings one collection's tracked accounts in line with its configuration."""

    def __init__(self, ctx: JobContext, collection: Collection, run: RunRecorder, client: TimelineClient,
                 wait: WaitFn | None = None, announce: Callable[[Wait], None] | None = None):
        self.ctx = ctx
        self.collection = collection
        self.run = run
        self.client = client
        self.wait = wait
        self.announce = announce
        self.book = AccountBook(ctx.ledger, ctx.store, ctx.config.paths.state, run.observed_by,
                                platform_of(collection).name)

    def sync(self) -> list[dict]:
        """Resolve new entries, then append added/paused/resumed/removed; returns events."""
        name, store = self.collection.name, self.ctx.store
        with self.book.session() as view:
            members = view.member_ids(name)
        wanted, observations, resolved = self._resolve(members)
        book = self.book
        with book.session() as view:
            current = {m["account_id"]: m for m in store.memberships(name)}
            for seen in observations.values():
                book.apply_observation(view, seen)
            for account_id, want in wanted.items():
                seen = observations.get(account_id)
                if seen is not None:
                    book.add_member(view, name, seen, want.entry.key)
                book.set_active(view, name, account_id, want.active)
                stored = current.get(account_id)
                if stored is None or stored["active"] != want.active or stored["config_key"] != want.entry.key:
                    book.update_store(partial(store.link_account, name, account_id, want.entry.key, want.active))
            for username, account_id in resolved.items():
                if store.resolved_id(name, username) != account_id:
                    book.update_store(partial(store.record_resolution, name, username, account_id))
            for account_id in sorted(view.member_ids(name) - set(wanted)):
                book.remove_member(view, name, account_id)
            for account_id in current:
                if account_id not in wanted:
                    book.update_store(partial(store.remove_membership, name, account_id))
        return book.appended

    def _resolve(self, members: set[str]) -> tuple[dict[str, _Wanted], dict[str, Observation], dict[str, str]]:
        """Ids of every entry (looked up when not yet tracked here), what the lookups showed, and
        the usernames newly resolved (to their ids)."""
        name, store = self.collection.name, self.ctx.store
        wanted: dict[str, _Wanted] = {}
        resolved: dict[str, str] = {}
        by_username: dict[str, AccountEntry] = {}
        by_id: dict[str, AccountEntry] = {}
        for entry in self.collection.accounts:
            account_id = entry.id or store.resolved_id(name, entry.username or "")
            if account_id is None:
                by_username[entry.username.lower()] = entry
                continue
            self._want(wanted, account_id, entry)
            if account_id not in members:
                by_id[account_id] = entry
        observations: dict[str, Observation] = {}
        if by_username:
            result = self.client.lookup_accounts([e.username for e in by_username.values()], "username", self.wait, self.announce)
            self.run.counts["lookup_calls"] += len(result.pages)
            for seen in result.found.values():
                entry = by_username.pop((seen.username or "").lower(), None)
                if entry is None:
                    continue
                observations[seen.account_id] = seen
                resolved[entry.username] = seen.account_id
                self._want(wanted, seen.account_id, entry)
                self._report_protected(entry, seen)
            for entry in by_username.values():
                status = _problem_for(result, entry.username)
                detail = result.failed.get(entry.username) or _unresolvable(status)
                self.run.warn(f"{describe_entry(self.collection, entry)} cannot be resolved: {detail}; "
                              "it is tried again on the next run")
        if by_id:
            result = self.client.lookup_accounts(list(by_id), "id", self.wait, self.announce)
            self.run.counts["lookup_calls"] += len(result.pages)
            for account_id, entry in by_id.items():
                if account_id in result.found:
                    seen = result.found[account_id]
                    self._report_protected(entry, seen)
                elif account_id in result.problems:
                    seen = Observation(account_id, result.problems[account_id])
                    self.run.warn(f"{describe_entry(self.collection, entry)} is {seen.status}: "
                                  "tracked, but not harvested until it comes back")
                else:
                    wanted.pop(account_id, None)
                    detail = result.failed.get(account_id, "no answer for it")
                    self.run.warn(f"{describe_entry(self.collection, entry)} could not be checked: {detail}; "
                                  "it is tried again on the next run")
                    continue
                observations[account_id] = seen
        return wanted, observations, resolved

    def _want(self, wanted: dict[str, _Wanted], account_id: str, entry: AccountEntry) -> None:
        if account_id in wanted:
            wanted[account_id].active = wanted[account_id].active or entry.active
        else:
            wanted[account_id] = _Wanted(account_id, entry, entry.active)

    def _report_protected(self, entry: AccountEntry, seen: Observation) -> None:
        if seen.status == PROTECTED:
            self.run.warn(f"{describe_entry(self.collection, entry)} is protected: tracked, but its posts "
                          "cannot be read until it is public again")


def _problem_for(result: AccountLookup, username: str) -> str | None:
    for subject, status in result.problems.items():
        if subject.lower() == username.lower():
            return status
    return None


def _unresolvable(status: str | None) -> str:
    if status == SUSPENDED:
        return "the account is suspended"
    return "no such account (deleted, deactivated or misspelt)"


# -- update-usernames: look at every account ------------------------------------------------


class UsernameUpdate:
    """Looks up every account of a collection by id, and every configured username."""

    def __init__(self, sync: AccountSync, writer: CaptureWriter):
        self.sync = sync
        self.ctx = sync.ctx
        self.run = sync.run
        self.writer = writer

    def execute(self) -> None:
        ctx, name = self.ctx, self.sync.collection.name
        self.sync.sync()
        if self._stopped():
            return
        members = [m["account_id"] for m in ctx.store.memberships(name)]
        self.run.counts["accounts"] = len(members)
        result = self.sync.client.lookup_accounts(members, "id", self.sync.wait, self.sync.announce, self._capture)
        observations = []
        for account_id in members:
            if account_id in result.found:
                observations.append(result.found[account_id])
            elif account_id in result.problems:
                observations.append(Observation(account_id, result.problems[account_id]))
            elif account_id in result.failed:
                self.run.fail_item(f"lookup failed: {result.failed[account_id]}", account=account_id)
            else:  # neither found nor refused: the answer says nothing about it, so no event either
                self.run.fail_item("the lookup answer did not mention this account", account=account_id)
        self.run.counts["accounts_checked"] = len(observations)
        before = len(self.sync.book.appended)
        self.sync.book.observe(observations)
        for event in self.sync.book.appended[before:]:
            self.run.info(f"{event['event']}: {event['from']} -> {event['to']}", account=event["account_id"])
        if not self._stopped():
            self._check_usernames()
        self.run.counts["events"] = len(self.sync.book.appended)

    def _check_usernames(self) -> None:
        """A configured username now held by another id is reported, never followed."""
        ctx, name = self.ctx, self.sync.collection.name
        configured = {}
        for entry in self.sync.collection.accounts:
            if entry.username and not entry.id:
                account_id = ctx.store.resolved_id(name, entry.username)
                if account_id:
                    configured[entry.username.lower()] = (entry.username, account_id)
        if not configured:
            return
        result = self.sync.client.lookup_accounts([u for u, _ in configured.values()], "username", self.sync.wait,
                        self.sync.announce, self._capture)
        with self.sync.book.session() as view:
            for seen in result.found.values():
                key = (seen.username or "").lower()
                if key not in configured:
                    continue
                username, tracked = configured[key]
                if seen.account_id != tracked:
                    event = self.sync.book.report_reassignment(view, name, tracked, username, seen.account_id)
                    if event:
                        self.run.warn(f"username '{username}' now belongs to account {seen.account_id}; still following "
                                      f"account {tracked}, not the new holder", account=tracked)

    def _capture(self, page: Answer) -> None:
        meta = sfm_metadata(captured_at=self.ctx.clock(), collection=self.sync.collection.name,
                            job="update_usernames", url=page.url, **platform_of(self.sync.collection).capture_meta())
        if not self.ctx.disk_ok():
            self.run.warn("disk space low: lookup page not captured")
            return
        self.writer.write_batch([envelope(page.raw, meta)])
        self.run.counts["pages"] += 1

    def _stopped(self) -> bool:
        if self.ctx.stop.is_set():
            self.run.interrupted()
            return True
        return False


# -- usage cap -------------------------------------------------------------------------------


class UsageCapGate:
    """Pauses the jobs of one credential after a usage-capped answer, and shows it in status.

    X does not say when a cap ends (the billing period is the account's), so the pause lasts
    `recheck`; the next run after it tries one call, and either clears the cap or pauses again.
    """

    def __init__(self, store: StateStore, platform: str, credential: str, clock: Clock,
                 recheck: timedelta = USAGE_CAP_RECHECK):
        self.store = store
        self.scope = f"{platform}:{credential}"
        self.clock = clock
        self.recheck = recheck

    def paused_until(self) -> datetime | None:
        for cap in self.store.usage_caps():
            if cap["scope"] == self.scope and cap["resume_at"]:
                resume_at = parse_timestamp(cap["resume_at"])
                if resume_at > self.clock():
                    return resume_at
        return None

    def capped(self, detail: str) -> datetime:
        resume_at = self.clock() + self.recheck
        self.store.set_usage_cap(self.scope, resume_at, detail)
        return resume_at

    def clear(self) -> None:
        if any(cap["scope"] == self.scope for cap in self.store.usage_caps()):
            self.store.clear_usage_cap(self.scope)


# -- entry points ----------------------------------------------------------------------------


def timeline_collection(config: Config, name: str) -> Collection:
    try:
        collection = config.collection(name)
    except KeyError:
        known = ", ".join(c.name for c in config.collections_of_type("timeline", platform=None)) or "none"
        raise UsageError(f"no collection named {name!r} (timeline collections: {known})") from None
    if collection.type != "timeline":
        raise UsageError(f"collection {name!r} is a {collection.type} collection, not a timeline collection")
    return collection


def shared_limiter(ctx: JobContext) -> RateLimiter:
    """The limiter of this process: jobs sharing a JobContext share every budget."""
    if ctx.rate_limiter is None:
        ctx.rate_limiter = RateLimiter(store=ctx.store)
    return ctx.rate_limiter


def open_client(ctx: JobContext, collection: Collection, client: TimelineClient | None = None) -> TimelineClient:
    """The client of the collection's platform, sharing this process's limiter."""
    return client or platform_of(collection).open_client(ctx.config, shared_limiter(ctx), ctx.config.user_agent())


def stop_wait(ctx: JobContext, halt: threading.Event | None = None) -> WaitFn:
    """A wait that sleeps in short slices and gives up when the job must stop."""

    def wait(seconds: float) -> bool:
        deadline = seconds
        while deadline > 0:
            if ctx.stop.is_set() or (halt is not None and halt.is_set()):
                return True
            step = min(deadline, 0.2)
            (halt or ctx.stop).wait(step)
            deadline -= step
        return ctx.stop.is_set() or (halt is not None and halt.is_set())

    return wait


def announcer(ctx: JobContext, run: RunRecorder) -> Callable[[Wait], None]:
    """Rate-limit waits: one log line per wait; on a terminal a countdown of the time left."""

    def announce(wait: Wait) -> None:
        if wait.first:
            run.counts["rate_limit_waits"] += 1
            run.info(f"rate limit {wait.endpoint}: {wait.reason}, waiting {wait.seconds:.1f}s until the window resets")
        left = max(0.0, wait.until - time.time())
        ctx.report(f"{run.collection}: rate limit {wait.endpoint}: {wait.reason}, waiting, {left:.0f}s left")

    return announce


def sync_accounts(ctx: JobContext, collection_name: str, *, client: TimelineClient | None = None) -> None:
    """Bring the tracked accounts of a collection in line with the configuration (a run of its own).

    What the daemon calls on reload. Raises LockBusyError when a harvest holds the collection
    (that harvest syncs first anyway); other failures are recorded in the run, not raised.
    """
    collection = timeline_collection(ctx.config, collection_name)
    with collection_lock(ctx.config.paths.state, collection_name, "harvest"):
        run = RunRecorder(ctx.store, "sync_accounts", collection_name)
        try:
            with run, record_api_calls(ctx, collection_name, "users", "sync_accounts", open_client(ctx, collection, client)) as api:
                try:
                    events = AccountSync(ctx, collection, run, api, stop_wait(ctx), announcer(ctx, run)).sync()
                except StopRequested:
                    run.interrupted()
                    return
                run.counts["events"] = len(events)
        except SfmError:
            pass  # recorded as the run's failure


def update_usernames(ctx: JobContext, collection_name: str, *, client: TimelineClient | None = None) -> dict:
    """One account-state pass: lookups of every account, captured, with every change in the ledger."""
    collection = timeline_collection(ctx.config, collection_name)
    with collection_lock(ctx.config.paths.state, collection_name, "harvest", ctx.lock_wait):
        ctx.store.close_abandoned_runs()
        run = RunRecorder(ctx.store, "update_usernames", collection_name)
        try:
            with run:
                sync = AccountSync(ctx, collection, run, open_client(ctx, collection, client), stop_wait(ctx),
                                   announcer(ctx, run))
                gate = UsageCapGate(ctx.store, platform_of(collection).name, sync.client.credential, ctx.clock)
                paused = gate.paused_until()
                if paused is not None:
                    run.warn(f"paused by the API usage cap until {paused.isoformat(timespec='seconds')}")
                else:
                    with _writer(ctx, collection_name, "users") as writer, \
                            record_api_calls(ctx, collection_name, "users", "update_usernames", sync.client):
                        try:
                            UsernameUpdate(sync, writer).execute()
                            gate.clear()
                        except StopRequested:
                            run.interrupted()
                        except UsageCappedError as error:
                            resume_at = gate.capped(str(error))
                            run.warn(f"{error}; paused until {resume_at.isoformat(timespec='seconds')}")
        except SfmError:
            pass  # recorded as the run's failure
        return ctx.store.run(run.run_id) or {}


def check_accounts_online(config: Config, *, client: TimelineClient | None = None) -> list[str]:
    """Problems with the configured accounts of every timeline collection; changes nothing."""
    problems: list[str] = []
    clients: dict[str, TimelineClient] = {}
    for collection in config.collections_of_type("timeline", platform=None):
        platform = platform_of(collection)
        try:
            if platform.name not in clients:
                clients[platform.name] = client or platform.open_client(config, user_agent=config.user_agent())
        except AuthError as error:
            return problems + [str(error)]
        found_by = clients[platform.name]
        usernames = sorted({e.username for e in collection.accounts if e.username and not e.id}, key=str.lower)
        ids = sorted({e.id for e in collection.accounts if e.id})
        try:
            by_name = found_by.lookup_accounts(usernames, "username") if usernames else AccountLookup()
            by_id = found_by.lookup_accounts(ids, "id") if ids else AccountLookup()
        except PlatformError as error:
            return problems + [f"cannot check accounts online: {error}"]
        found_names = {(seen.username or "").lower(): seen for seen in by_name.found.values()}
        for entry in collection.accounts:
            where = describe_entry(collection, entry)
            if entry.id:
                user, status, failed = by_id.found.get(entry.id), by_id.problems.get(entry.id), by_id.failed.get(entry.id)
            else:
                user = found_names.get(entry.username.lower())
                status, failed = _problem_for(by_name, entry.username), by_name.failed.get(entry.username)
            if failed:
                problems.append(f"{where}: could not be checked: {failed}")
            elif user is not None and user.status == PROTECTED:
                problems.append(f"{where}: protected (its posts cannot be read)")
            elif user is None:
                problems.append(f"{where}: {_unresolvable(status) if status != DEACTIVATED else 'not found (deleted or deactivated)'}")
    return problems


@contextmanager
def _writer(ctx: JobContext, collection: str, kind: str) -> Iterator[CaptureWriter]:
    writer = CaptureWriter(
        ctx.config.paths.archive, collection, kind, clock=ctx.clock, registry=ctx.store,
        rotation=ctx.config.storage.rotation, compresslevel=ctx.config.storage.compresslevel,
        sync_every_flush=False,
    )
    try:
        yield writer
    finally:
        writer.close()
