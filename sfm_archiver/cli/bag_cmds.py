"""`bag` and `verify`."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfm_archiver.cli.common import add_config_option, not_built


def register(commands: argparse._SubParsersAction) -> None:
    bag = commands.add_parser("bag", help="bag every completed period and hand it to the outbox")
    add_config_option(bag)
    bag.add_argument("collections", nargs="*", metavar="COLLECTION", help="collections (default: all)")
    bag.add_argument("--before", metavar="ISO8601", help="only periods ending at or before this time (default: now minus grace)")
    bag.add_argument("--dry-run", action="store_true", help="list what would be bagged")
    bag.set_defaults(handler=not_built("bag"))
    verify = commands.add_parser("verify", help="fully check bags (BagIt plus every capture file)")
    verify.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    verify.set_defaults(handler=not_built("verify"))
