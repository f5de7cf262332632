"""Handing a finished bag to the outbox, and the site's `on_handoff` command after it.

`complete_handoff` is the roll-forward half of crash recovery too, so every step in it is
idempotent: a rename already done is not repeated, removals tolerate missing files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from sfm_archiver.bagging.fsops import fsync_dirs, remove_empty_dirs, rename_noreplace
from sfm_archiver.bagging.intent import DONE_STATE, Intent
from sfm_archiver.durable import atomic_write, fsync_dir
from sfm_archiver.errors import FinalNameTaken
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import rfc3339_ms

OUTPUT_TAIL = 2000


def rename_into_outbox(intent: Intent) -> bool:
    """The one atomic step that makes the bag visible; False when it had already happened."""
    if not os.path.lexists(intent.staged_item):
        return False
    try:
        rename_noreplace(intent.staged_item, intent.final)
    except FileExistsError:
        raise FinalNameTaken(f"{intent.final} already exists; it is never overwritten (bag {intent.name} not handed off)") from None
    fsync_dir(intent.final.parent)
    fsync_dir(intent.staging_root)
    return True


def payload_elsewhere(intent: Intent) -> bool:
    """True when the payload still exists outside the final bag (tar staging dir, copy originals)."""
    return intent.serialized or intent.mode == "copy"


def finish_after_rename(intent: Intent, pause: Callable[[str], None]) -> None:
    """After the rename: drop staging leftovers and copied originals, mark ready, tidy the archive."""
    if intent.serialized and intent.bag_dir.exists():
        shutil.rmtree(intent.bag_dir)
        fsync_dir(intent.staging_root)
    if intent.mode == "copy":
        removed = set()
        for rel in intent.files:
            original = intent.root / rel
            if os.path.lexists(original):
                original.unlink()
                removed.add(original.parent)
        fsync_dirs(removed)
    if intent.ready_marker and os.path.lexists(intent.final):
        for stale in intent.ready_path.parent.glob(f".{intent.ready_path.name}.tmp-*"):
            stale.unlink(missing_ok=True)  # left by a crash inside an earlier atomic_write
        atomic_write(intent.ready_path, f"{intent.final.name}\n{intent.stats.get('oxum', '')}\n".encode())
    remove_empty_dirs(cleanup_folders(intent.root, intent.folders, intent.stats.get("period_end")))
    pause("cleanup")


def cleanup_folders(root: Path, folders: list[str], period_end: str | None) -> list[Path]:
    """The period's hour folders, plus day/month/year folders whose whole span has ended by then."""
    end = datetime.fromisoformat(period_end) if period_end else None
    found = set()
    for rel in folders:
        parts = rel.split("/")
        found.add(root.joinpath(*parts))
        if end is None or len(parts) != 4:
            continue
        year, month, day = int(parts[0]), int(parts[1]), int(parts[2])
        spans = (
            (parts[:3], _next_day(year, month, day)),
            (parts[:2], _next_month(year, month)),
            (parts[:1], datetime(year + 1, 1, 1, tzinfo=timezone.utc)),
        )
        for prefix, span_end in spans:
            if span_end <= end:
                found.add(root.joinpath(*prefix))
    return sorted(found)


def _next_day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=timezone.utc) + timedelta(days=1)


def _next_month(year: int, month: int) -> datetime:
    return datetime(year + (month == 12), 1 if month == 12 else month + 1, 1, tzinfo=timezone.utc)


def record_done(store: StateStore, intent: Intent, has_command: bool, now: datetime) -> None:
    stats = intent.stats
    store.update_bag(
        intent.name,
        state=DONE_STATE,
        files=stats.get("files"),
        bytes=stats.get("bytes"),
        oxum=stats.get("oxum"),
        duration=stats.get("duration"),
        finished_at=rfc3339_ms(now),
        handoff_state="pending" if has_command else None,
    )


def run_on_handoff(argv: tuple[str, ...], bag: Path, timeout: float) -> str | None:
    """Run the site's command for one bag (no shell, `{bag}` replaced); the error text, or None."""
    args = [arg.replace("{bag}", str(bag)) for arg in argv]
    try:
        process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
    except OSError as error:
        return f"cannot run {args[0]!r}: {error.strerror or error}"
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        process.communicate()
        return f"{args[0]} did not finish within {timeout:g}s and was killed"
    if process.returncode != 0:
        tail = output.decode("utf-8", "replace").strip()[-OUTPUT_TAIL:]
        return f"{args[0]} exited with code {process.returncode}" + (f": {tail}" if tail else "")
    return None


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def hand_off_pending(store: StateStore, collection: str, argv: tuple[str, ...], timeout: float, now: Callable[[], datetime]) -> list[dict]:
    """Run `on_handoff` for every bag of the collection still waiting for it (new or failed)."""
    results = []
    if not argv:
        return results
    for bag in store.bags(state=DONE_STATE, collection=collection):
        if bag["handoff_state"] not in ("pending", "failed"):
            continue
        final = Intent.from_dict(bag["intent"]).final
        if not os.path.lexists(final):
            error = f"{final} is no longer in the outbox"
            store.update_bag(bag["name"], handoff_state="skipped", handoff_error=error, handoff_at=rfc3339_ms(now()))
            results.append({"name": bag["name"], "handoff": "skipped", "error": error})
            continue
        error = run_on_handoff(argv, final, timeout)
        state = "failed" if error else "ok"
        store.update_bag(bag["name"], handoff_state=state, handoff_error=error, handoff_at=rfc3339_ms(now()))
        results.append({"name": bag["name"], "handoff": state, "error": error})
    return results
