"""What every command shares: loading the configuration, progress output, reporting errors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sfm_archiver.config import Config, load_config, resolve_config_path
from sfm_archiver.logsetup import configure_logging
from sfm_archiver.platforms import secrets_of


def add_config_option(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    """`--config` before or after the command name (after wins)."""
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=None if top_level else argparse.SUPPRESS,
        help="configuration file (default: $SFM_ARCHIVER_CONFIG, then /etc/sfm-archiver/config.yaml)",
    )


def config_path(args: argparse.Namespace) -> Path:
    return resolve_config_path(getattr(args, "config", None))


def load(args: argparse.Namespace, check_paths: bool = True) -> Config:
    """Load the configuration named by the arguments and set up logging from it."""
    config = load_config(config_path(args), check_paths=check_paths)
    configure_logging(config.log_level, secrets=secrets_of(config))
    for warning in config.warnings:
        print(warning, file=sys.stderr)
    return config


class Progress:
    """One status line rewritten in place on a terminal; silent otherwise (cron, systemd)."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = _isatty(self.stream)
        self._width = 0

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        text = message[:160]
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)

    def done(self) -> None:
        if self.enabled and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def not_built(command: str):
    """Handler for a command this version does not provide yet (no fake success)."""
    from sfm_archiver.errors import NotBuiltError

    def handler(args: argparse.Namespace) -> int:
        raise NotBuiltError(f"'{command}' is not available in this version yet")

    return handler
