"""`run`, `status`, `demo` and `backup`."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfm_archiver.cli.common import add_config_option, not_built


def register(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="run the daemon in the foreground (what systemd starts)")
    add_config_option(run)
    run.set_defaults(handler=not_built("run"))
    status = commands.add_parser("status", help="health and progress; exit 0 ok, 1 warning, 2 critical")
    add_config_option(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=not_built("status"))
    demo = commands.add_parser("demo", help="simulator + daemon end to end on a demo configuration")
    demo.add_argument("--dir", type=Path, default=Path("sfm-archiver-demo"), help="where the demo writes (default: ./sfm-archiver-demo)")
    demo.add_argument("--minutes", type=float, default=2.0, help="how long to run (default: 2)")
    demo.set_defaults(handler=not_built("demo"))
    backup = commands.add_parser("backup", help="consistent snapshot of state, ledger and config")
    add_config_option(backup)
    backup.add_argument("dest", type=Path, metavar="DEST")
    backup.set_defaults(handler=not_built("backup"))
