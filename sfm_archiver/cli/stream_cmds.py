"""`stream` and `organize`."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from sfm_archiver.cli.common import Progress, add_config_option, load


def register(commands: argparse._SubParsersAction) -> None:
    stream = commands.add_parser("stream", help="run one stream collection in the foreground")
    add_config_option(stream)
    stream.add_argument("collection", metavar="COLLECTION")
    stream.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    stream.set_defaults(handler=stream_command)
    organize = commands.add_parser("organize", help="sort legacy SFM stream files into YYYY/MM/DD/HH folders")
    organize.add_argument("source", type=Path, metavar="SRC")
    organize.add_argument("dest", type=Path, metavar="DEST")
    organize.add_argument("--all", action="store_true", help="include files modified within the last 30 minutes")
    organize.set_defaults(handler=organize_command)


def stream_command(args: argparse.Namespace) -> int:
    from sfm_archiver.diskguard import DiskGuard
    from sfm_archiver.jobs.context import JobContext
    from sfm_archiver.streams.supervisor import run_stream

    config = load(args)
    progress = Progress()
    ctx = JobContext.open(config, progress=progress, disk_ok=DiskGuard(lambda: config).ok)

    def request_stop(signum, frame) -> None:
        ctx.stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run = run_stream(ctx, args.collection, args.duration)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        progress.done()
    counts = run.get("counts") or {}
    print(
        f"{args.collection}: {run['result']}: {counts.get('messages', 0)} messages, "
        f"{counts.get('dropped', 0)} dropped, {counts.get('connects', 0)} connects, "
        f"{counts.get('disconnects', 0)} disconnects"
    )
    for warning in run.get("warnings") or []:
        print(f"warning: {warning}", file=sys.stderr)
    for error in run.get("errors") or []:
        print(f"error: {error}", file=sys.stderr)
    return 1 if run["result"] == "failed" else 0


def organize_command(args: argparse.Namespace) -> int:
    from sfm_archiver.jobs.organize import organize

    progress = Progress()
    try:
        report = organize(args.source, args.dest, include_recent=args.all, progress=progress)
    finally:
        progress.done()
    summary = report.summary()
    print(", ".join(f"{key} {value}" for key, value in summary.items()))
    for path in report.recent:
        print(f"skipped (modified within 30 minutes; use --all): {path}", file=sys.stderr)
    for path in report.unrecognised:
        print(f"left in place (not a legacy stream file name): {path}", file=sys.stderr)
    for path, problem in report.corrupt:
        print(f"left in place (damaged): {path}: {problem}", file=sys.stderr)
    for path, problem in report.errors:
        print(f"left in place (error): {path}: {problem}", file=sys.stderr)
    return 0 if report.ok else 1
