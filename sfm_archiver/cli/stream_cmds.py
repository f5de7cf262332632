"""`stream` and `organize`."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfm_archiver.cli.common import add_config_option, not_built


def register(commands: argparse._SubParsersAction) -> None:
    stream = commands.add_parser("stream", help="run one stream collection in the foreground")
    add_config_option(stream)
    stream.add_argument("collection", metavar="COLLECTION")
    stream.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    stream.set_defaults(handler=not_built("stream"))
    organize = commands.add_parser("organize", help="sort legacy SFM stream files into YYYY/MM/DD/HH folders")
    organize.add_argument("source", type=Path, metavar="SRC")
    organize.add_argument("dest", type=Path, metavar="DEST")
    organize.add_argument("--all", action="store_true", help="include files modified within the last 30 minutes")
    organize.set_defaults(handler=not_built("organize"))
