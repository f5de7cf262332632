"""The `notify:` and `metrics:` sections of the configuration (DESIGN.md section 13).

The typed settings live here, beside the code that uses them; `config.py` calls `build_notify`
and `build_metrics` with its builder, so problems are reported at `file:line` like every other
key. Targets are Apprise URLs (they may carry credentials: kept out of `repr`); `smtp:` is a
plain SMTP alternative for sites without Apprise-style mail URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

DIGESTS = ("daily", "weekly", "monthly", "off")
SMTP_SECURITY = ("starttls", "ssl", "none")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_LISTEN = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S+$")

SECTION_KEYS = {
    "notify": ("targets", "smtp", "digest", "digest_at", "stream_down_after", "repeat"),
    "smtp": ("host", "port", "security", "username", "password", "password_file", "from", "to", "timeout"),
    "metrics": ("textfile", "listen", "interval"),
}


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    to: tuple[str, ...] = ()
    timeout: float = 30.0


@dataclass(frozen=True)
class Notify:
    targets: tuple[str, ...] = field(default=(), repr=False)
    smtp: Smtp | None = None
    digest: str = "weekly"
    digest_at: str = "07:00"
    stream_down_after: timedelta = timedelta(minutes=5)
    repeat: timedelta = timedelta(hours=24)

    @property
    def enabled(self) -> bool:
        return bool(self.targets or self.smtp)


@dataclass(frozen=True)
class Metrics:
    textfile: Path | None = None
    listen: tuple[str, int] | None = None
    interval: float = 15.0


def parse_clock(value: Any) -> str:
    """`HH:MM` (UTC), normalised to two digits each."""
    match = _CLOCK.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a time of day like 07:00")
    return f"{int(match.group(1)):02d}:{match.group(2)}"


def parse_listen(value: Any) -> tuple[str, int]:
    match = _LISTEN.match(str(value).strip())
    if not match or not 0 < int(match.group(2)) < 65536:
        raise ValueError(f"{value!r} is not host:port")
    return match.group(1).strip("[]"), int(match.group(2))


def _targets(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise TypeError("expected a list of URLs")
    bad = [redact_url(item) for item in items if not _SCHEME.match(item)]
    if bad:
        raise ValueError(f"not a notification URL: {', '.join(bad)}")
    return tuple(items)


def _addresses(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and "@" in i for i in items):
        raise ValueError("expected e-mail addresses")
    return tuple(items)


def redact_url(url: str) -> str:
    """A target URL fit for a log line: no user, password, query or fragment."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)(?:[^@/?#]*@)?([^/?#]*)([^?#]*)", url)
    if not match:
        return "(unparsable URL)"
    scheme, host, path = match.groups()
    return f"{scheme}{host}{'/…' if path.strip('/') else ''}"


def build_notify(builder, section) -> Notify:
    """`notify:` from the located YAML (`builder` is config._Builder)."""
    from sfm_archiver.config import _choice, _seconds

    defaults = Notify()
    smtp = None
    if section.get("smtp") is not None:
        smtp = _smtp(builder, builder.section(section, "smtp", "smtp"))
    repeat = builder.value(section, "repeat", defaults.repeat.total_seconds(), _seconds, "a duration like 24h")
    down = builder.value(section, "stream_down_after", defaults.stream_down_after.total_seconds(), _seconds, "a duration like 5m")
    return Notify(
        targets=builder.value(section, "targets", (), _targets, "a list of Apprise URLs"),
        smtp=smtp,
        digest=builder.value(section, "digest", defaults.digest, _choice(DIGESTS), "daily, weekly, monthly or off"),
        digest_at=builder.value(section, "digest_at", defaults.digest_at, parse_clock, "a UTC time like 07:00"),
        stream_down_after=timedelta(seconds=down),
        repeat=timedelta(seconds=repeat),
    )


def _smtp(builder, section) -> Smtp | None:
    from sfm_archiver.config import _choice, _int_range, _seconds, _text

    host = builder.value(section, "host", "", _text, "a host name")
    if not host:
        builder.problems.add(section.line or 1, "notify.smtp needs a host")
        return None
    password = builder.value(section, "password", "", _text, "text")
    if section.get("password_file") and builder.read_secrets:
        _path, password = builder.read_secret(section, "password_file", where="notify.smtp")
    to = builder.value(section, "to", (), _addresses, "a list of e-mail addresses")
    if not to:
        builder.problems.add(section.line or 1, "notify.smtp needs 'to:' (one or more e-mail addresses)")
    return Smtp(
        host=host,
        port=builder.value(section, "port", 587, _int_range(1, 65535), "a port number"),
        security=builder.value(section, "security", "starttls", _choice(SMTP_SECURITY), "starttls, ssl or none"),
        username=builder.value(section, "username", "", _text, "text"),
        password=password,
        sender=builder.value(section, "from", "", _text, "an e-mail address"),
        to=to,
        timeout=builder.value(section, "timeout", 30.0, _seconds, "a duration like 30s"),
    )


def build_metrics(builder, section) -> Metrics:
    """`metrics:` from the located YAML."""
    from sfm_archiver.config import _seconds, _text

    textfile = builder.value(section, "textfile", None, _text, "a file path")
    if textfile:
        path = Path(textfile).expanduser()
        textfile = path if path.is_absolute() else builder.base_dir / path
    return Metrics(
        textfile=textfile or None,
        listen=builder.value(section, "listen", None, parse_listen, "host:port, e.g. 127.0.0.1:9464"),
        interval=builder.value(section, "interval", 15.0, _seconds, "a duration like 15s"),
    )
