"""`check-config`."""

from __future__ import annotations

import argparse

from sfm_archiver.cli.common import add_config_option, load
from sfm_archiver.config import Config
from sfm_archiver.platforms import DEFAULT_PLATFORM, platform_named


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "check-config",
        help="validate the configuration and print a short summary",
        description="Validate the configuration: every problem is printed as file:line; exit 0 when valid, 2 when not.",
    )
    add_config_option(parser)
    parser.add_argument("--online", action="store_true", help="also resolve every account against the API")
    parser.set_defaults(handler=check_config)


def check_config(args: argparse.Namespace) -> int:
    config = load(args)
    print(summarize(config))
    if args.online:
        from sfm_archiver.jobs.accounts import check_accounts_online

        problems = check_accounts_online(config)
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    return 0


def summarize(config: Config) -> str:
    """A few lines saying what the daemon would do with this configuration (no secrets)."""
    lines = [
        f"configuration {config.source}: valid",
        f"  archive {config.paths.archive}",
        f"  state   {config.paths.state}",
        f"  outbox  {config.paths.outbox}",
        *(f"  {platform_named(name).summary(config)}"
          for name in dict.fromkeys([DEFAULT_PLATFORM, *(c.platform for c in config.collections)])),
        f"  bagging every {config.bagging.period}, grace {config.bagging.grace}, {'+'.join(config.bagging.checksums)}",
    ]
    lines += notify_summary(config)
    for collection in config.collections:
        if collection.type == "timeline":
            active = sum(1 for a in collection.accounts if a.active)
            detail = f"{len(collection.accounts)} accounts ({active} active), schedule {collection.schedule.text if collection.schedule else 'off'}"
        elif collection.type == "filter_stream":
            detail = f"{len(collection.rules)} rules"
        elif collection.type == "jetstream":
            follows = f"accounts of {', '.join(collection.from_collections)}" if collection.from_collections else ""
            words = f"keywords {', '.join(collection.keywords)}" if collection.keywords else ""
            detail = "; ".join(part for part in (follows, words) if part)
        else:
            detail = "sample stream"
        lines.append(f"  collection {collection.name} [{collection.type}, {collection.platform}]: {detail}")
    return "\n".join(lines)


def notify_summary(config: Config) -> list[str]:
    """Where alerts go (target URLs without credentials) and what metrics are written."""
    from sfm_archiver.notify.delivery import describe, target_ids

    notify, metrics = config.notify, config.metrics
    targets = ", ".join(describe(config, target) for target in target_ids(config)) or "none (alerts only in status and the log)"
    lines = [f"  notify  {targets}; digest {notify.digest} at {notify.digest_at} UTC"]
    if metrics.textfile or metrics.listen:
        where = [str(metrics.textfile)] if metrics.textfile else []
        where += [f"http://{metrics.listen[0]}:{metrics.listen[1]}/metrics"] if metrics.listen else []
        lines.append(f"  metrics {', '.join(where)}")
    return lines
