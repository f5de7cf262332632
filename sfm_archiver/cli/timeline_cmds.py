"""`user-timeline` and `update-usernames`: one pass now, with progress on a terminal."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from sfm_archiver.cli.common import Progress, add_config_option, load
from sfm_archiver.config import Config
from sfm_archiver.errors import UsageError
from sfm_archiver.jobs.context import JobContext


def register(commands: argparse._SubParsersAction) -> None:
    timeline = commands.add_parser(
        "user-timeline", help="harvest timelines once now",
        description="Harvest the new posts of every collectable account once; exit 0 when done, 1 when a run failed.",
    )
    add_config_option(timeline)
    timeline.add_argument("collections", nargs="*", metavar="COLLECTION", help="timeline collections (default: all)")
    timeline.add_argument("--account", metavar="NAME", help="only this account (username or id)")
    timeline.set_defaults(handler=user_timeline)
    usernames = commands.add_parser(
        "update-usernames", help="check every account's name and state once now",
        description="Look up every account of the timeline collections and record renames and state changes "
                    "in the ledger; exit 0 when done, 1 when a run failed.",
    )
    add_config_option(usernames)
    usernames.add_argument("collections", nargs="*", metavar="COLLECTION", help="timeline collections (default: all)")
    usernames.set_defaults(handler=update_usernames)


def user_timeline(args: argparse.Namespace) -> int:
    from sfm_archiver.jobs.timeline import harvest_timelines

    config = load(args)
    names = _collections(config, args.collections)
    if args.account:
        names = _with_account(config, names, args.account)
    return _run_each(config, names, lambda ctx, name: harvest_timelines(ctx, name, args.account))


def update_usernames(args: argparse.Namespace) -> int:
    from sfm_archiver.jobs.accounts import update_usernames as update

    config = load(args)
    return _run_each(config, _collections(config, args.collections), update)


def _run_each(config: Config, names: list[str], job: Callable[[JobContext, str], dict]) -> int:
    progress = Progress()
    if progress.enabled and config.log_level != "DEBUG":
        # on a terminal the progress line tells what the per-account log lines would
        logging.getLogger("sfm_archiver.jobs").setLevel(logging.WARNING)
    ctx = JobContext.open(config, progress=progress)
    failed = False
    with _stop_on_signals(ctx.stop):
        for name in names:
            if ctx.stop.is_set():
                break
            record = job(ctx, name)
            progress.done()
            print(summarize(record))
            failed = failed or record.get("result") in ("failed", "interrupted")
    return 1 if failed or ctx.stop.is_set() else 0


def summarize(record: dict) -> str:
    """One line per run, then its errors (warnings are in the log and in `status`)."""
    counts = record.get("counts", {})
    parts = [f"{key}={counts[key]}" for key in sorted(counts)]
    lines = [f"{record.get('collection')}: {record.get('job')} {record.get('result')} ({' '.join(parts)})"]
    lines += [f"  error: {error}" for error in record.get("errors", [])]
    lines += [f"  warning: {warning}" for warning in record.get("warnings", [])]
    return "\n".join(lines)


def _collections(config: Config, requested: list[str]) -> list[str]:
    timelines = [c.name for c in config.collections_of_type("timeline", platform=None)]
    if not requested:
        if not timelines:
            raise UsageError("the configuration has no timeline collections")
        return timelines
    unknown = [name for name in requested if name not in timelines]
    if unknown:
        raise UsageError(f"not a timeline collection: {', '.join(unknown)} (timeline collections: {', '.join(timelines) or 'none'})")
    return list(dict.fromkeys(requested))


def _with_account(config: Config, names: list[str], account: str) -> list[str]:
    """The collections that configure `account` (by username or id)."""
    wanted = account.lower().lstrip("@")
    chosen = [
        name for name in names
        if any(wanted in ((entry.username or "").lower(), entry.id or "") for entry in config.collection(name).accounts)
    ]
    return chosen or names


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and a first Ctrl-C stop at the next safe point; a second Ctrl-C interrupts."""

    def request_stop(signum, frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
