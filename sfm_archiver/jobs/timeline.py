"""`user-timeline`: harvest the new posts of every collectable account of a collection.

For each account, its timeline newest first after its checkpoint (`TimelineClient.timeline_page`;
X: `GET /2/users/:id/tweets` after the post id; Bluesky: the author feed down to the checkpoint's
item, see platforms/bluesky_platform.py), paged to the end (or to the backfill depth on the
first harvest). A bounded pool of workers keeps
enough calls in flight that latency never binds before the rate limit does.

No loss, no duplicates, whatever the moment of a crash: an account's pages are buffered and
written as ONE gzip member (each page one capture line), made durable, and only then is the
checkpoint advanced. The window between the durable write and the checkpoint is covered by a
pending note written before the batch: a run that finds one looks in the recent capture files
for the batch; if it landed the checkpoint is advanced to it, if not the note is dropped and the
posts are fetched again.
"""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sfm_archiver.config import Collection
from sfm_archiver.errors import AuthError, LockBusyError, PlatformError, SfmError, StopRequested, StorageError, UsageCappedError, UsageError
from sfm_archiver.jobs.account_events import Observation, differs
from sfm_archiver.jobs.accounts import AccountSync, UsageCapGate, announcer, open_client, stop_wait, timeline_collection
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.runs import RunRecorder
from sfm_archiver.locks import collection_lock
from sfm_archiver.platforms import platform_of
from sfm_archiver.platforms.base import Platform, TimelineClient, TimelinePage
from sfm_archiver.storage import reader
from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.warc import record_api_calls
from sfm_archiver.storage.writer import CaptureWriter, seal_abandoned_files
from sfm_archiver.timeutil import parse_timestamp

log = logging.getLogger(__name__)

JOB = "user_timeline"
BACKFILL_PROBE = 5  # max_results of the one call that finds the newest id when backfill is 0


@dataclass
class Fetched:
    """What one account's pass brought: capture lines (one per page) and the ids they span."""

    lines: list[bytes] = field(default_factory=list)
    posts: int = 0
    newest: str | None = None
    oldest: str | None = None
    gap: bool = False
    status: str | None = None  # protected / suspended / deactivated: the account was not readable
    author: Observation | None = None  # what the first page with posts showed of the account


@dataclass
class Outcome:
    account_id: str
    username: str
    result: str  # ok, skipped, failed, stopped
    fetched: Fetched | None = None
    message: str = ""


def harvest_timelines(
    ctx: JobContext,
    collection_name: str,
    account: str | None = None,
    *,
    client: TimelineClient | None = None,
    usage_cap_recheck: timedelta | None = None,
) -> dict:
    """One timeline pass over a collection (or one of its accounts); returns the run record.

    Raises LockBusyError when the collection is busy and UsageError for an unknown collection
    or account; every other failure is recorded in the run (result `failed`).
    """
    collection = timeline_collection(ctx.config, collection_name)
    with collection_lock(ctx.config.paths.state, collection_name, "harvest", ctx.lock_wait):
        ctx.store.close_abandoned_runs()  # a killed one-shot run would otherwise stay "running"
        run = RunRecorder(ctx.store, JOB, collection_name)
        try:
            with run, record_api_calls(ctx, collection_name, "timeline", JOB, open_client(ctx, collection, client)) as api:
                try:
                    TimelineHarvest(ctx, collection, run, api, account, usage_cap_recheck).execute()
                except StopRequested:
                    run.interrupted()
        except (LockBusyError, UsageError):
            raise
        except SfmError:
            pass  # recorded as the run's failure
        return ctx.store.run(run.run_id) or {}


class TimelineHarvest:
    """One run over one collection."""

    def __init__(self, ctx: JobContext, collection: Collection, run: RunRecorder, client: TimelineClient,
                 account: str | None = None, usage_cap_recheck: timedelta | None = None):
        self.ctx = ctx
        self.collection = collection
        self.name = collection.name
        self.platform = platform_of(collection)
        self.run = run
        self.client = client
        self.account = account
        self.halt = threading.Event()
        self.wait = stop_wait(ctx, self.halt)
        self.announce = announcer(ctx, run)
        gate_args = {"recheck": usage_cap_recheck} if usage_cap_recheck is not None else {}
        self.gate = UsageCapGate(ctx.store, self.platform.name, client.credential, ctx.clock, **gate_args)
        self.writer: CaptureWriter | None = None
        self.committer: GroupCommitter | None = None
        self._fatal: BaseException | None = None
        self._capped: UsageCappedError | None = None
        self.sync = AccountSync(ctx, collection, run, client, self.wait, self.announce)

    # -- the run ---------------------------------------------------------------------------

    def execute(self) -> None:
        for message in recover_pending(self.ctx, self.name):
            self.run.info(message)
        paused = self.gate.paused_until()
        if paused is not None:
            self.run.warn(f"harvesting paused by the API usage cap until {paused.isoformat(timespec='seconds')}")
            return
        if self.account is None or not self._already_tracked():
            try:
                self.sync.sync()
            except UsageCappedError as error:
                self._pause_for_cap(error)
                return
        members = self._selected()
        self.run.counts["accounts"] = len(members)
        if self.ctx.stop.is_set():
            self.run.interrupted()
            return
        self.writer = CaptureWriter(
            self.ctx.config.paths.archive, self.name, "timeline", clock=self.ctx.clock, registry=self.ctx.store,
            rotation=self.ctx.config.storage.rotation, compresslevel=self.ctx.config.storage.compresslevel,
            sync_every_flush=False,
        )
        self.committer = GroupCommitter(self.ctx.store, self.writer, self.name)
        try:
            self._harvest_all(members)
        finally:
            self.writer.close()
        self._finish()

    def _finish(self) -> None:
        counts = self.run.counts
        counts["calls"] = self.client.calls
        counts["retries"] = self.client.retries
        if self._fatal is not None:
            raise self._fatal
        if self._capped is not None:
            self._pause_for_cap(self._capped)
        elif counts["accounts_done"]:
            self.gate.clear()
        if self.ctx.stop.is_set():
            self.run.interrupted()

    def _pause_for_cap(self, error: UsageCappedError) -> None:
        resume_at = self.gate.capped(str(error))
        self.run.warn(f"{error}; harvesting paused until {resume_at.isoformat(timespec='seconds')} "
                      "(then one call checks whether the cap has been lifted)")

    # -- which accounts ----------------------------------------------------------------------

    def _selected(self) -> list[dict]:
        members = self.ctx.store.memberships(self.name)
        if self.account is not None:
            wanted = self.account.lower().lstrip("@")
            members = [m for m in members if m["account_id"] == wanted or (m["username"] or "").lower() == wanted
                       or (m["config_key"] or "").lower() == f"username:{wanted}"]
            if not members:
                raise UsageError(f"no account {self.account!r} in collection {self.name!r}")
        collectable = []
        for member in members:
            status = member["status"] or "active"
            if not member["active"]:
                self.run.counts["accounts_paused"] += 1
            elif status != "active":
                self.run.counts["accounts_skipped"] += 1
                self.run.info(f"skipped: {status}", account=member["username"] or member["account_id"])
            else:
                collectable.append(member)
        return collectable

    def _already_tracked(self) -> bool:
        wanted = (self.account or "").lower().lstrip("@")
        return any(m["account_id"] == wanted or (m["username"] or "").lower() == wanted
                   for m in self.ctx.store.memberships(self.name))

    # -- the pool ----------------------------------------------------------------------------

    def _harvest_all(self, members: list[dict]) -> None:
        workers = max(1, self.client.workers)
        queue = list(reversed(members))
        running: set[Future] = set()
        total = len(members)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"timeline-{self.name}") as pool:
            while queue or running:
                while queue and len(running) < workers and not self._stopping():
                    running.add(pool.submit(self._harvest_one, queue.pop()))
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self._record(future.result())
                counts = self.run.counts
                self.ctx.report(
                    f"{self.name}: {counts['accounts_done'] + counts['accounts_failed'] + counts['accounts_skipped']}"
                    f"/{total} accounts, {counts['posts']} posts, {counts['pages']} pages"
                )

    def _stopping(self) -> bool:
        return self.halt.is_set() or self.ctx.stop.is_set()

    def _record(self, outcome: Outcome) -> None:
        counts, who = self.run.counts, outcome.username or outcome.account_id
        if outcome.result == "ok":
            fetched = outcome.fetched or Fetched()
            counts["accounts_done"] += 1
            counts["posts"] += fetched.posts
            counts["pages"] += len(fetched.lines)
            self.run.info(f"{fetched.posts} new posts in {len(fetched.lines)} pages", account=who)
            if fetched.gap:
                counts["gaps"] += 1
                self.run.warn(
                    f"gap: more posts arrived since the last harvest than the API can reach ({self.client.reach}); "
                    f"posts older than {fetched.oldest} and newer than the previous checkpoint may be missing",
                    account=who,
                )
        elif outcome.result == "skipped":
            counts["accounts_skipped"] += 1
            self.run.info(f"not readable ({outcome.message}): skipped until update-usernames sees it back", account=who)
        elif outcome.result == "failed":
            counts["accounts_failed"] += 1
            self.run.fail_item(outcome.message, account=who)

    # -- one account -------------------------------------------------------------------------

    def _harvest_one(self, member: dict) -> Outcome:
        account_id, username = member["account_id"], member["username"] or ""
        outcome = Outcome(account_id, username, "stopped")
        if self._stopping():
            return outcome
        try:
            fetched = self._fetch(account_id, username)
            if fetched.status is not None:
                self._observe(Observation(account_id, fetched.status))
                return Outcome(account_id, username, "skipped", fetched, fetched.status)
            if fetched.author is not None and differs(fetched.author, member):
                self._observe(fetched.author)
            self._write(account_id, fetched)
            if member["failures"]:
                self.ctx.store.record_account_failure(account_id, None)
            return Outcome(account_id, username, "ok", fetched)
        except StopRequested:
            return outcome
        except UsageCappedError as error:
            self._capped = error
            self.halt.set()
            return outcome
        except (AuthError, StorageError) as error:
            self._fatal = self._fatal or error
            self.halt.set()
            return outcome
        except PlatformError as error:
            self.ctx.store.record_account_failure(account_id, str(error))
            return Outcome(account_id, username, "failed", None, str(error))

    def _fetch(self, account_id: str, username: str) -> Fetched:
        since = self.ctx.store.checkpoint(self.name, account_id)
        backfill = self.collection.backfill
        if since is None and backfill <= 0:
            page = self._page(account_id, None, None, BACKFILL_PROBE)
            return Fetched(newest=page.newest, status=page.problem, author=page.author)
        fetched = Fetched()
        token: str | None = None
        while True:
            if self._stopping():
                raise StopRequested()
            want = 100 if since is not None else min(100, backfill - fetched.posts)
            page = self._page(account_id, since, token, want)
            if page.problem is not None:
                return Fetched(status=page.problem)
            fetched.author = fetched.author or page.author  # a page with nothing new still shows a rename
            if page.count:
                account = {"id": account_id, "username": username or None}
                meta_sfm = sfm_metadata(captured_at=self.ctx.clock(), collection=self.name, job=JOB, url=page.url,
                                        account=account, **self.platform.capture_meta())
                fetched.lines.append(envelope(page.raw, meta_sfm))
                fetched.posts += page.count
                fetched.newest = fetched.newest or page.newest
                fetched.oldest = page.oldest
            token = page.cursor
            if not token or (since is None and fetched.posts >= backfill):
                break
        fetched.gap = since is not None and fetched.posts >= self.client.reach
        return fetched

    def _observe(self, seen: Observation) -> None:
        """Record at once what this run saw change (renamed, protected, ...), once across jobs."""
        for event in self.sync.book.observe([seen]):
            self.run.info(f"{event['event']}: {event['from']} -> {event['to']}", account=event["account_id"])

    def _page(self, account_id: str, since: str | None, cursor: str | None, want: int) -> TimelinePage:
        return self.client.timeline_page(account_id, since, cursor, want, wait=self.wait, announce=self.announce)

    def _write(self, account_id: str, fetched: Fetched) -> None:
        if not fetched.newest:
            return
        if fetched.lines and not self.ctx.disk_ok():
            if not self.halt.is_set():
                self.halt.set()
                self.run.warn("disk space below the minimum: harvest paused, nothing more written in this run")
            raise StopRequested()
        assert self.committer is not None
        self.committer.commit(account_id, fetched.lines, fetched.newest)


class GroupCommitter:
    """Makes finished accounts durable in groups, so fsyncs do not serialise the workers.

    Each account's pages become one gzip member; a group costs one transaction noting the
    pending batches, one fdatasync for all members, one transaction advancing the checkpoints.
    The first waiting worker writes the group of everyone queued so far (group commit);
    `commit` returns only when the caller's batch and checkpoint are durable.
    """

    def __init__(self, store, writer: CaptureWriter, collection: str):
        self.store = store
        self.writer = writer
        self.collection = collection
        self._cond = threading.Condition()
        self._queue: list[_Batch] = []
        self._writing = False
        self.groups = 0

    def commit(self, account_id: str, lines: list[bytes], newest: str) -> None:
        batch = _Batch(account_id, lines, newest)
        with self._cond:
            self._queue.append(batch)
            while not batch.done and self._writing:
                self._cond.wait()
            if batch.done:
                return self._result(batch)
            self._writing = True
            group, self._queue = self._queue, []
        try:
            self._write(group)
        except BaseException as error:  # every batch of the group shares the failure
            for member in group:
                member.error = error
            raise
        finally:
            with self._cond:
                for member in group:
                    member.done = True
                self._writing = False
                self._cond.notify_all()
        return None

    def _write(self, group: list[_Batch]) -> None:
        with_lines = [batch for batch in group if batch.lines]
        if with_lines:
            self.writer.rotate_if_due()
            self.store.begin_batches(self.collection, [(b.account_id, b.newest) for b in with_lines], self.writer.path)
            for batch in with_lines:
                self.writer.append(b"".join(batch.lines))  # the account's pages as ONE member
                self.writer.flush()
            self.writer.sync()
        self.store.commit_batches(self.collection, [(b.account_id, b.newest) for b in group])
        self.groups += 1

    @staticmethod
    def _result(batch: _Batch) -> None:
        if batch.error is not None:
            raise StorageError(f"writing the batch of account {batch.account_id} failed: {batch.error}")


@dataclass
class _Batch:
    account_id: str
    lines: list[bytes]
    newest: str
    done: bool = False
    error: BaseException | None = None


def recover_pending(ctx: JobContext, collection: str) -> list[str]:
    """Settle batches a dead run was writing: advance the checkpoint if the batch landed, else drop it."""
    store = ctx.store
    seal_abandoned_files(store, collection)
    messages = []
    for pending in store.pending_batches(collection):
        account_id, newest = pending["account_id"], pending["newest"]
        started = parse_timestamp(pending["started_at"])
        candidates = _recent_files(ctx, collection, started, pending["path"])
        if any(_holds_batch(path, platform_of(collection, ctx.config), account_id, newest) for path in candidates):
            store.commit_batches(collection, [(account_id, newest)])
            messages.append(f"account {account_id}: a batch written before a crash was found; checkpoint set to {newest}")
        else:
            store.drop_pending_batch(collection, account_id)
            messages.append(f"account {account_id}: a batch cut short by a crash was not written; it is fetched again")
    return messages


def _recent_files(ctx: JobContext, collection: str, started, hint: str | None) -> list[Path]:
    """Timeline files that may hold a batch begun at `started` (modified since)."""
    files = reader.capture_files(ctx.config.paths.archive, collection, ["timeline"], start=started - timedelta(hours=1))
    cutoff = started.timestamp() - 2
    chosen = [path for path in files if path.stat().st_mtime >= cutoff]
    if hint and Path(hint).exists() and Path(hint) not in chosen:
        chosen.append(Path(hint))
    return chosen


def _holds_batch(path: Path, platform: Platform, account_id: str, newest: str) -> bool:
    needle = account_id.encode()  # in every line of the account's pages (`__sfm.account.id`, written by us)
    for _, line in reader.read_lines(path, lambda problem: None):
        if needle not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if (record.get("__sfm", {}).get("account", {}).get("id") == account_id
                and platform.page_newest(record) == newest):
            return True
    return False
