"""`notify --test` (and `notify --digest`, a preview of the digest)."""

from __future__ import annotations

import argparse

from sfm_archiver.cli.common import add_config_option, load
from sfm_archiver.errors import UsageError


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "notify",
        help="send a test message to every notification target, or print the digest",
        description="--test sends a test message to every target of notify: and reports each result (exit 1 if any failed); "
        "--digest prints the digest as it would be sent now.",
    )
    add_config_option(parser)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--test", action="store_true", help="send a test message to every target")
    what.add_argument("--digest", action="store_true", help="print the digest (plain text) without sending it")
    parser.set_defaults(handler=notify)


def notify(args: argparse.Namespace) -> int:
    config = load(args, check_paths=False)
    if args.digest:
        from sfm_archiver.notify.digest import preview

        print(preview(config))
        return 0
    from sfm_archiver.notify.delivery import send_test

    results = send_test(config)
    if not results:
        raise UsageError(f"{config.source}: notify: has no targets (add notify.targets or notify.smtp)")
    for target, error in results:
        print(f"{target}: {'sent' if error is None else 'FAILED: ' + error}")
    return 1 if any(error for _, error in results) else 0
