"""`user-timeline` and `update-usernames`."""

from __future__ import annotations

import argparse

from sfm_archiver.cli.common import add_config_option, not_built


def register(commands: argparse._SubParsersAction) -> None:
    timeline = commands.add_parser("user-timeline", help="harvest timelines once now")
    add_config_option(timeline)
    timeline.add_argument("collections", nargs="*", metavar="COLLECTION", help="timeline collections (default: all)")
    timeline.add_argument("--account", metavar="NAME", help="only this account (username or id)")
    timeline.set_defaults(handler=not_built("user-timeline"))
    usernames = commands.add_parser("update-usernames", help="check every account's name and state once now")
    add_config_option(usernames)
    usernames.add_argument("collections", nargs="*", metavar="COLLECTION", help="timeline collections (default: all)")
    usernames.set_defaults(handler=not_built("update-usernames"))
