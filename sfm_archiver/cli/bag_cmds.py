"""`bag` and `verify`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sfm_archiver.cli.common import Progress, add_config_option, load
from sfm_archiver.errors import UsageError, VerificationError
from sfm_archiver.timeutil import parse_timestamp


def register(commands: argparse._SubParsersAction) -> None:
    bag = commands.add_parser("bag", help="bag every completed period and hand it to the outbox")
    add_config_option(bag)
    bag.add_argument("collections", nargs="*", metavar="COLLECTION", help="collections (default: all)")
    bag.add_argument("--before", metavar="ISO8601", help="only periods ending at or before this time (default: now minus grace)")
    bag.add_argument("--dry-run", action="store_true", help="list what would be bagged")
    bag.add_argument("--json", action="store_true", help="one JSON object per period")
    bag.set_defaults(handler=run_bag)
    verify = commands.add_parser("verify", help="fully check bags (BagIt plus every capture file)")
    verify.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    verify.set_defaults(handler=run_verify)


def run_bag(args: argparse.Namespace) -> int:
    from sfm_archiver.bagging import bag_completed_periods, recover
    from sfm_archiver.jobs.context import JobContext

    before = _parse_before(args.before)
    config = load(args)
    progress = Progress()
    ctx = JobContext.open(config, progress=progress)
    if not args.dry_run:
        for message in recover(ctx):
            print(f"recovery: {message}", file=sys.stderr)
    results = bag_completed_periods(ctx, args.collections or None, before=before, dry_run=args.dry_run)
    progress.done()
    for result in results:
        print(json.dumps(result, default=str) if args.json else format_result(result))
    if not results and not args.json:
        print("nothing to bag")
    if any(r["status"] == "failed" or r.get("handoff") == "failed" for r in results):
        return 1
    if any(r["status"] == "busy" for r in results):
        return 2
    return 0


def format_result(result: dict) -> str:
    status = result["status"]
    name = result.get("name") or result.get("collection")
    if status == "bagged":
        line = f"bagged {result['path']}: {result['files']} files, {result['bytes']} bytes, {result['duration']:.1f}s"
        if result.get("handoff"):
            line += f"; on_handoff {result['handoff']}" + (f": {result['handoff_error']}" if result.get("handoff_error") else "")
        return line
    if status == "would_bag":
        return f"would bag {name}: {result['files']} files, {result['bytes']} bytes"
    if status == "failed":
        return f"FAILED {name}: {result['error']}"
    if status == "busy":
        return f"busy {name}: {result['error']}"
    if status == "handoff_retry":
        return f"on_handoff {result['handoff']} for {name}" + (f": {result['error']}" if result.get("error") else "")
    return f"not bagged {name} ({status}): {result.get('reason', '')}"


def run_verify(args: argparse.Namespace) -> int:
    from sfm_archiver.bagging import verify_paths

    problems = verify_paths(args.paths)
    if problems:
        raise VerificationError(problems + [f"verify: {len(problems)} problem(s) found"])
    for path in args.paths:
        print(f"{path}: valid")
    sys.stdout.flush()
    return 0


def _parse_before(text: str | None):
    if text is None:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        raise UsageError(f"--before {text!r} is not an ISO 8601 time (e.g. 2026-11-27T00:00:00Z)") from None
