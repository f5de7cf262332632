"""`fetch-urls`."""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import contextmanager
from datetime import date
from typing import Iterator

from sfm_archiver.cli.common import Progress, add_config_option, load
from sfm_archiver.errors import LockBusyError, UsageError


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "fetch-urls",
        help="expand the links of captured posts",
        description="Resolve every link of the timeline and stream captures made in a range of UTC dates "
        "(whole redirect chains, failures included) and write one kind=urls capture line per link. "
        "A link resolved by an earlier run is not requested again unless --refetch is given.",
    )
    add_config_option(parser)
    parser.add_argument("collections", nargs="*", metavar="COLLECTION", help="collections (default: all)")
    parser.add_argument("--start", metavar="DATE", help="first capture date, UTC (default: yesterday)")
    parser.add_argument("--end", metavar="DATE", help="last capture date, inclusive (default: --start)")
    parser.add_argument("--refetch", action="store_true", help="resolve URLs again even if cached")
    parser.set_defaults(handler=fetch_urls_command)


def fetch_urls_command(args: argparse.Namespace) -> int:
    from sfm_archiver.jobs.context import JobContext
    from sfm_archiver.jobs.urls import fetch_urls, yesterday

    config = load(args)
    names = args.collections or [collection.name for collection in config.collections]
    unknown = [name for name in names if name not in {c.name for c in config.collections}]
    if unknown:
        raise UsageError(f"unknown collection(s): {', '.join(unknown)}")
    progress = Progress()
    ctx = JobContext.open(config, progress=progress)
    start = parse_date(args.start, "--start") if args.start else yesterday(ctx.clock())
    end = parse_date(args.end, "--end") if args.end else start
    if end < start:
        raise UsageError(f"--end {end} is before --start {start}")
    exit_code = 0
    with stop_on_signals(ctx.stop):
        for name in names:
            if ctx.stop.is_set():
                break
            try:
                run = fetch_urls(ctx, name, start, end, refetch=args.refetch)
            except LockBusyError as error:
                progress.done()
                print(f"sfm-archiver: {name}: {error}", file=sys.stderr)
                exit_code = max(exit_code, error.exit_code)
                continue
            progress.done()
            print(summary(name, run))
            if run["result"] not in ("ok", "warning"):
                exit_code = max(exit_code, 1)
    return exit_code


def summary(name: str, run: dict) -> str:
    counts = run.get("counts") or {}
    text = (
        f"{name}: {counts.get('urls', 0)} links in {counts.get('posts', 0)} posts of {counts.get('files', 0)} files; "
        f"{counts.get('resolved', 0)} resolved ({counts.get('requests', 0)} requests, "
        f"{counts.get('failed', 0)} failed), {counts.get('cached', 0)} from the cache; run {run['run_id']} {run['result']}"
    )
    if counts.get("already_recorded"):
        text += f"; {counts['already_recorded']} cached links already have a line for each of their posts"
    if counts.get("damaged"):
        text += f"; {counts['damaged']} damaged capture lines skipped (see the run's warnings)"
    return text


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date like 2026-11-27") from None


@contextmanager
def stop_on_signals(stop) -> Iterator[None]:
    """SIGINT/SIGTERM ask the job to stop at its next safe point; a second one ends the process."""

    def request_stop(signum, frame) -> None:
        stop.set()
        for number, handler in previous.items():
            signal.signal(number, handler)

    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    for number in previous:
        signal.signal(number, request_stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
