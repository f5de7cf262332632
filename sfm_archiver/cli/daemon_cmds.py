"""`run`, `status`, `demo` and `backup`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sfm_archiver.cli.common import add_config_option, config_path, load


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="run the daemon in the foreground (what systemd starts)",
        description="Run the scheduler, the stream supervisor and the bagger until SIGTERM. "
        "SIGHUP re-reads the configuration; an invalid one is refused and the daemon keeps running.",
    )
    add_config_option(run)
    run.set_defaults(handler=run_command)
    status = commands.add_parser(
        "status",
        help="health and progress; exit 0 ok, 1 warning, 2 critical",
        description="Report the daemon, collections, accounts, rate limits, disk and bags from the state "
        "store and folder listings only. Exit 0 ok, 1 warning, 2 critical.",
    )
    add_config_option(status)
    status.add_argument("--json", action="store_true", help="machine-readable output (stable keys)")
    status.set_defaults(handler=status_command)
    demo = commands.add_parser(
        "demo",
        help="simulator + daemon end to end on a demo configuration",
        description="Start the built-in X API simulator and the daemon on a demo configuration, then show "
        "captures, ledger events, link expansions, bags and the status table. Exit 0 when all of them appeared.",
    )
    demo.add_argument("--dir", type=Path, default=Path("demo-output"), help="where the demo writes (default: ./demo-output; emptied by the next demo)")
    demo.add_argument("--minutes", type=float, default=2.0, help="at most this long; the demo ends as soon as every step was seen (default: 2)")
    demo.set_defaults(handler=demo_command)
    backup = commands.add_parser(
        "backup",
        help="consistent snapshot of state, ledger and config",
        description="Copy the state database (SQLite online backup), the ledger and the configuration "
        "(secrets left out) into a timestamped folder under DEST; safe while the daemon runs.",
    )
    add_config_option(backup)
    backup.add_argument("dest", type=Path, metavar="DEST")
    backup.set_defaults(handler=backup_command)


def run_command(args: argparse.Namespace) -> int:
    from sfm_archiver.daemon import run_daemon

    return run_daemon(load(args))


def status_command(args: argparse.Namespace) -> int:
    from sfm_archiver import status

    config, problems = status.load_for_reading(config_path(args))
    report = status.collect(config, config_problems=problems)
    print(json.dumps(report, indent=2, sort_keys=False) if args.json else status.render_text(report))
    return status.exit_code(report)


def demo_command(args: argparse.Namespace) -> int:
    from sfm_archiver.demo import run_demo

    return run_demo(args.dir, minutes=args.minutes)


def backup_command(args: argparse.Namespace) -> int:
    from sfm_archiver.backup import backup
    from sfm_archiver.status import load_without_secrets

    folder = backup(load_without_secrets(config_path(args)), args.dest)
    print(folder)
    return 0

