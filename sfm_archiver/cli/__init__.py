"""Command line: argument parsing only; each command calls one library function.

Each module in this package registers the commands of one area; exit codes come from
`errors.exit_code_for`: 0 success, 1 failure at run time, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys

from sfm_archiver import __version__
from sfm_archiver.cli import (
    bag_cmds,
    config_cmds,
    daemon_cmds,
    export_cmds,
    ledger_cmds,
    notify_cmds,
    report_cmds,
    sim_cmds,
    stream_cmds,
    timeline_cmds,
    url_cmds,
)
from sfm_archiver.cli.common import add_config_option
from sfm_archiver.errors import ConfigError, SfmError, VerificationError, exit_code_for

COMMAND_MODULES = (daemon_cmds, config_cmds, timeline_cmds, stream_cmds, url_cmds, bag_cmds, ledger_cmds, sim_cmds)
COMMAND_MODULES += (export_cmds, notify_cmds, report_cmds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfm-archiver",
        description="Archive X timelines, streams and links unattended; hand validated BagIt bags to preservation.",
    )
    add_config_option(parser, top_level=True)
    parser.add_argument("--version", action="version", version=f"sfm-archiver {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"sfm-archiver: {len(error.problems)} configuration problem(s)", file=sys.stderr)
        return error.exit_code
    except VerificationError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return error.exit_code
    except SfmError as error:
        print(f"sfm-archiver: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("sfm-archiver: interrupted", file=sys.stderr)
        return exit_code_for(KeyboardInterrupt())
    except BrokenPipeError:
        return 1
