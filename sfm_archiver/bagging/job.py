"""The bag job: recover, then bag every complete period of each collection, then hand off.

Each collection is bagged under its "bag" lock and recorded as one run. A period that fails
is rolled back and reported; the others go on.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from sfm_archiver.bagging.build import BagSettings, stage_bag
from sfm_archiver.bagging.fsops import same_filesystem
from sfm_archiver.bagging.handoff import hand_off_pending
from sfm_archiver.bagging.hashing import INLINE_BELOW_BYTES, HashPool, default_workers
from sfm_archiver.bagging.intent import HANDING_OFF_STATE, STAGING, Intent
from sfm_archiver.bagging.pausepoints import PausePoints
from sfm_archiver.bagging.periods import READY, PeriodState, discover, outbox_items
from sfm_archiver.bagging.provenance import ProvenanceSources
from sfm_archiver.bagging.recovery import recover_all, recover_collection, roll_back, roll_forward
from sfm_archiver.config import Config
from sfm_archiver.durable import makedirs_durable
from sfm_archiver.errors import FinalNameTaken, LockBusyError, OutboxFilesystemError, SfmError, StopRequested, UsageError
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.runs import RunRecorder
from sfm_archiver.locks import collection_lock
from sfm_archiver.state import StateStore, pid_alive
from sfm_archiver.storage import layout
from sfm_archiver.storage.gzmembers import seal

JOB = "bag"
QUIET_STATUSES = ("open", "grace", "later")


def all_collections(config: Config, requested: list[str] | None = None) -> list[str]:
    """Configured collections plus any left in the archive by collections since removed."""
    known = [c.name for c in config.collections]
    archive = config.paths.archive
    if archive.is_dir():
        for entry in sorted(os.listdir(archive)):
            if layout.ARCHIVE_NAME.match(entry) and (archive / entry).is_dir() and entry not in known:
                known.append(entry)
    if not requested:
        return known
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise UsageError(f"unknown collection(s): {', '.join(unknown)} (known: {', '.join(known) or 'none'})")
    return list(dict.fromkeys(requested))


def transfer_mode(collection_root: Path, outbox: Path, copy_allowed: bool) -> str:
    """`move` when archive and outbox share a filesystem; `copy` only when allowed."""
    if not collection_root.exists() or same_filesystem(collection_root, outbox):
        return "move"
    if copy_allowed:
        return "copy"
    raise OutboxFilesystemError(
        f"the outbox {outbox} is on another filesystem than the archive {collection_root}: bags are built by "
        "moving capture files with one rename each, which cannot cross filesystems. Put the outbox on the "
        "archive's filesystem, or set `bagging: {copy: true}` to copy, verify and then delete instead."
    )


def discover_periods(ctx: JobContext, collection: str, before: datetime | None = None) -> list[PeriodState]:
    config = ctx.config
    return discover(
        config.paths.archive, config.paths.outbox, ctx.store, collection, config.bagging.period,
        ctx.clock(), config.bagging.grace, before, config.bagging.empty_periods,
    )


def pending_periods(ctx: JobContext) -> list[dict]:
    """Complete periods not yet bagged, and periods that cannot be (for `status`). Read-only."""
    found = []
    for collection in all_collections(ctx.config):
        for state in discover_periods(ctx, collection):
            if state.status not in QUIET_STATUSES:
                found.append(state.as_dict())
    return found


def recover(ctx: JobContext, pause=None) -> list[str]:
    """Roll every unfinished bag back or forward (the daemon calls this on start)."""
    config = ctx.config
    return recover_all(
        ctx.store, config.paths.state, config.paths.outbox, config.paths.archive,
        bool(config.bagging.on_handoff), ctx.clock, pause or PausePoints(),
    )


def bag_completed_periods(
    ctx: JobContext,
    collection_names: list[str] | None = None,
    before: datetime | None = None,
    dry_run: bool = False,
    *,
    workers: int | None = None,
    inline_below: int = INLINE_BELOW_BYTES,
    pause=None,
) -> list[dict]:
    """Bag every complete period (ending at or before `before`) of the given collections.

    `workers` overrides `bagging.workers`; bags smaller than `inline_below` bytes are hashed
    and validated in this process (starting worker processes would cost more).
    """
    config = ctx.config
    names = all_collections(config, collection_names)
    pause = pause or PausePoints()
    results: list[dict] = []
    with HashPool(workers or default_workers(config.bagging.workers), inline_below) as pool:
        for name in names:
            if ctx.stop.is_set():
                break
            if dry_run:
                results.extend(_dry_run(ctx, name, before))
                continue
            try:
                with collection_lock(config.paths.state, name, JOB, ctx.lock_wait):
                    results.extend(_bag_collection(ctx, name, before, pool, pause))
            except LockBusyError as error:
                ctx.store.record_skipped_run(JOB, name, str(error))
                results.append({"collection": name, "status": "busy", "error": str(error)})
            except OutboxFilesystemError:
                raise
            except (SfmError, OSError) as error:
                # Recorded as a failed run; the other collections are still bagged.
                results.append({"collection": name, "status": "failed", "error": f"{name}: {error}"})
    return results


def _dry_run(ctx: JobContext, collection: str, before: datetime | None) -> list[dict]:
    results = []
    for state in discover_periods(ctx, collection, before):
        if state.status in QUIET_STATUSES:
            continue
        entry = state.as_dict()
        if state.status == READY:
            entry["status"] = "would_bag"
        results.append(entry)
    return results


def _bag_collection(ctx: JobContext, collection: str, before, pool: HashPool, pause) -> list[dict]:
    config = ctx.config
    results = []
    with RunRecorder(ctx.store, JOB, collection) as run:
        outbox = config.paths.outbox
        makedirs_durable(outbox / STAGING)
        has_command = bool(config.bagging.on_handoff)
        for message in recover_collection(ctx.store, outbox, config.paths.archive, collection, has_command, ctx.clock, pause):
            run.warn(f"recovery: {message}")
            run.counts["recovered"] += 1
        for path, removed in seal_dead_writers(ctx.store, collection):
            run.warn(f"sealed {path}, left open by a writer that died ({removed} bytes of torn tail removed)")
        mode = transfer_mode(config.paths.archive / collection, outbox, config.bagging.copy)
        settings = BagSettings.from_config(config, pool.workers, collection)
        for state in discover_periods(ctx, collection, before):
            if state.status in QUIET_STATUSES:
                continue
            if state.status != READY:
                run.warn(f"{state.name}: not bagged: {state.reason}")
                results.append(state.as_dict())
                continue
            if ctx.stop.is_set():
                run.interrupted()
                break
            if not ctx.disk_ok():
                run.warn("free disk space is below the minimum: bagging paused")
                break
            try:
                result = _bag_period(ctx, state, mode, settings, pool, pause, has_command)
            except StopRequested:
                run.interrupted()
                break
            if result["status"] == "failed":
                run.fail_item(result["error"])
                run.counts["failed"] += 1
            else:
                run.info(f"{result['name']}: {result['files']} files, {result['bytes']} bytes in {result['duration']:.1f}s")
                run.counts["bags"] += 1
                run.counts["files"] += result["files"]
            if state.skipped_names:
                run.warn(f"{state.name}: left in the archive (not capture files): {', '.join(state.skipped_names[:5])}")
            results.append(result)
        for handoff in hand_off_pending(ctx.store, collection, config.bagging.on_handoff, config.bagging.handoff_timeout.total_seconds(), ctx.clock):
            if handoff["handoff"] == "failed":
                run.warn(f"{handoff['name']}: on_handoff failed (retried next run): {handoff['error']}")
            _attach_handoff(results, handoff)
    return results


def seal_dead_writers(store: StateStore, collection: str) -> list[tuple[Path, int]]:
    """Seal and release files registered as open by processes that no longer exist.

    Unlike the start-up sealing, files of this very process are left alone: in the daemon the
    bag job runs beside the writers that hold them.
    """
    sealed = []
    for entry in store.open_files(collection):
        if pid_alive(entry["pid"]):
            continue
        path = Path(entry["path"])
        removed = seal(path) if path.exists() else 0
        store.unregister_open_file(path)
        sealed.append((path, removed))
    return sealed


def _bag_period(ctx: JobContext, state: PeriodState, mode: str, settings: BagSettings, pool: HashPool, pause, has_command: bool) -> dict:
    config = ctx.config
    started = time.monotonic()
    intent = Intent(
        name=state.name, collection=state.collection, collection_root=str(config.paths.archive / state.collection),
        outbox=str(config.paths.outbox), mode=mode, serialization=settings.serialization,
        ready_marker=settings.ready_marker, files=list(state.files), folders=list(state.folders),
        profile=settings.profile.name, outbox_stem=settings.profile.outbox_stem(state.name, settings.aptrust),
    )
    base = state.as_dict()
    taken = outbox_items(config.paths.outbox, state.name, (intent.final,))
    if taken:
        return {**base, "status": "failed", "error": f"{taken[0]} exists in the outbox and is never overwritten"}
    ctx.store.begin_bag(state.name, state.collection, state.period.label, state.period.start, state.period.end, intent.as_dict())
    pause("intent")
    sources = ProvenanceSources(config, ctx.store, ctx.ledger)
    try:
        stats = stage_bag(state, intent, settings, sources, pool, pause, ctx.stop.is_set, ctx.clock())
    except StopRequested:
        roll_back(ctx.store, intent, pause)
        raise
    except Exception as error:
        roll_back(ctx.store, intent, pause)
        return {**base, "status": "failed", "error": f"{state.name}: {error}"}
    except BaseException:
        roll_back(ctx.store, intent, pause)
        raise
    intent.stats = {**stats, "duration": round(time.monotonic() - started, 3)}
    ctx.store.update_bag(state.name, state=HANDING_OFF_STATE, intent=intent.as_dict())
    pause("before_rename")
    try:
        finished = roll_forward(ctx.store, intent, has_command, ctx.clock, pause)
    except FinalNameTaken as error:
        return {**base, "status": "failed", "error": str(error)}
    if not finished:
        return {**base, "status": "failed", "error": f"{state.name}: left the outbox before it was recorded; rebuilt next run"}
    duration = round(time.monotonic() - started, 3)
    ctx.store.update_bag(state.name, duration=duration)
    pause("done")
    return {
        **base,
        "status": "bagged",
        "path": str(intent.final),
        "files": stats["files"],
        "bytes": stats["bytes"],
        "oxum": stats["oxum"],
        "duration": duration,
        "empty": stats["empty"],
    }


def _attach_handoff(results: list[dict], handoff: dict) -> None:
    for result in results:
        if result.get("name") == handoff["name"]:
            result["handoff"] = handoff["handoff"]
            result["handoff_error"] = handoff["error"]
            return
    results.append({"name": handoff["name"], "status": "handoff_retry", "handoff": handoff["handoff"], "error": handoff["error"]})
