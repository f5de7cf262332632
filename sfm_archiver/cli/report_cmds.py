"""`report`."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfm_archiver.cli.common import add_config_option, load
from sfm_archiver.errors import UsageError


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "report",
        help="write the HTML report (charts of posts, streams, accounts, bags, disk, rate limits)",
        description="Write one self-contained HTML file, DIR/index.html (default <state>/report/), from the state store.",
    )
    add_config_option(parser)
    parser.add_argument("--out", metavar="DIR", help="folder for index.html (default: <state>/report)")
    parser.add_argument("--days", type=int, default=30, help="days covered (default 30)")
    parser.set_defaults(handler=report)


def report(args: argparse.Namespace) -> int:
    from sfm_archiver.report import write_report

    if args.days < 1:
        raise UsageError("--days must be 1 or more")
    config = load(args, check_paths=False)
    path = write_report(config, Path(args.out) if args.out else None, args.days)
    print(f"report written: {path}  (open file://{path.resolve()})")
    return 0
