"""Logging to stderr, one line per event, journald-friendly, with secrets masked.

Under systemd (stderr not a terminal) each line starts with a syslog priority prefix (`<6>`),
which journald turns into the entry's priority; on a terminal the prefix is left out.
"""

from __future__ import annotations

import logging
import sys

from sfm_archiver.config_redact import redact_url_credentials

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_NOISY = ("urllib3", "requests", "tweepy", "apscheduler", "oauthlib", "requests_oauthlib")


class SecretMask(logging.Filter):
    """Replace every known secret in a record's final message with `***`, and URL credentials."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact_url_credentials(message)
        for secret in self.secrets:
            masked = masked.replace(secret, "***")
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JournalFormatter(logging.Formatter):
    def __init__(self, syslog_prefix: bool):
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.syslog_prefix = syslog_prefix

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).replace("\n", " | ")
        if self.syslog_prefix:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{text}"
        return text


def configure_logging(level: str = "INFO", secrets: list[str] | None = None, stream=None) -> None:
    """Send all logging to stderr in the journald-friendly form; quiet noisy libraries."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JournalFormatter(syslog_prefix=not _isatty(stream)))
    handler.addFilter(SecretMask(secrets or []))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)


def add_secrets(secrets: list[str]) -> None:
    """Mask more secrets (after a reload brought a new token)."""
    for handler in logging.getLogger().handlers:
        for existing in handler.filters:
            if isinstance(existing, SecretMask):
                existing.secrets.extend(s for s in secrets if s and len(s) >= 4 and s not in existing.secrets)


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
