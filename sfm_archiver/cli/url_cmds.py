"""`fetch-urls`."""

from __future__ import annotations

import argparse

from sfm_archiver.cli.common import add_config_option, not_built


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("fetch-urls", help="expand the links of captured posts")
    add_config_option(parser)
    parser.add_argument("collections", nargs="*", metavar="COLLECTION", help="collections (default: all)")
    parser.add_argument("--start", metavar="DATE", help="first capture date, UTC (default: yesterday)")
    parser.add_argument("--end", metavar="DATE", help="last capture date, inclusive (default: --start)")
    parser.add_argument("--refetch", action="store_true", help="resolve URLs again even if cached")
    parser.set_defaults(handler=not_built("fetch-urls"))
