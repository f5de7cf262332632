"""Configuration: one YAML file → typed, validated, immutable objects (DESIGN.md section 3).

Every problem is collected (not just the first) and reported as `file:line: what is wrong and
what is allowed`. `${VAR}` (and `${VAR:-default}`) expand from the environment; `*_file` secrets
are read relative to `$CREDENTIALS_DIRECTORY` when systemd provides one. Secrets are kept out of
`repr` and out of `public_dict`, the form that reaches logs, status and bags; which values are
secrets, and how copies of the text are redacted, is config_redact's business.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from sfm_archiver.bagging.profiles import NAMES as PROFILE_NAMES
from sfm_archiver.bagging.profiles import AptrustSettings
from sfm_archiver.bagging.profiles import settings as profile_settings
from sfm_archiver.config_redact import is_secret_key, redact_url_credentials, secret_aliases, secret_values
from sfm_archiver.errors import ConfigError
from sfm_archiver.notify import settings as notify_settings
from sfm_archiver.notify.settings import Metrics, Notify
from sfm_archiver.storage.layout import COLLECTION_NAME, PERIOD_UNITS
from sfm_archiver.timeutil import parse_duration
from sfm_archiver.yamlsource import LocatedDict, LocatedList, YamlSyntaxError, load_located

DEFAULT_CONFIG_PATH = Path("/etc/sfm-archiver/config.yaml")
CONFIG_ENV = "SFM_ARCHIVER_CONFIG"
USERNAME = re.compile(r"^[A-Za-z0-9_]{1,15}$")
ACCOUNT_ID = re.compile(r"^[0-9]{1,20}$")
COLLECTION_TYPES = ("timeline", "filter_stream", "sample_stream")  # of X collections
PLATFORM_TYPES = {"x": COLLECTION_TYPES, "bluesky": ("timeline", "jetstream")}  # collections[].platform -> its types
DEFAULT_PLATFORM = "x"
# atproto handle syntax (atproto.com/specs/handle): dot-separated labels of letters, digits and
# inner hyphens, at least two, the last (the TLD) starting with a letter; 253 characters at most.
HANDLE = re.compile(r"^([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
HANDLE_MAX = 253
# The two DID methods Bluesky accounts use: did:plc (24 characters of base32, lowercase) and did:web (a host name).
DID = re.compile(r"^did:(plc:[a-z2-7]{24}|web:[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(%3A[0-9]+)?)$")
CHECKSUMS = ("md5", "sha1", "sha256", "sha512")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_EVERY = re.compile(r"^every\s+(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}


# -- typed configuration ---------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A crontab line or `every <n><s|m|h|d>`."""

    text: str
    interval: timedelta | None = None

    @property
    def is_interval(self) -> bool:
        return self.interval is not None

    def trigger(self, timezone: str = "UTC"):
        """The apscheduler 3.x trigger for this schedule."""
        from apscheduler.triggers.interval import IntervalTrigger

        if self.interval is not None:
            return IntervalTrigger(seconds=self.interval.total_seconds(), timezone=timezone)
        return crontab_trigger(self.text, timezone)


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_trigger(text: str, timezone: str = "UTC"):
    """An apscheduler CronTrigger that reads a crontab line as cron does.

    apscheduler 3.x numbers the days of the week from Monday = 0 (`from_crontab` keeps those
    numbers), where crontab has Sunday = 0 or 7: "0 3 * * 6" would fire on Sundays, not on
    Saturdays. The day-of-week field is therefore expanded by crontab's rules and handed over
    as day names.
    """
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, weekdays = text.split()
    days = _crontab_weekdays(weekdays)
    names = "*" if len(days) == 7 else ",".join(_CRON_DAYS[d] for d in sorted(days))
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=names, timezone=timezone)


def _crontab_weekdays(field: str) -> set[int]:
    """The days (0 = Sunday) of a crontab day-of-week field: lists, ranges, steps, 0-7 or names."""
    def number(token: str) -> int:
        if token.lower() in _CRON_DAYS:
            return _CRON_DAYS.index(token.lower())
        if not token.isdigit() or int(token) > 7:
            raise ValueError(f"day of week {token!r} is not one of 0-7 (0 and 7: Sunday) or sun-sat")
        return int(token)

    days: set[int] = set()
    for item in field.split(","):
        span, _, step = item.partition("/")
        if span == "*":
            first, last = 0, 6
        elif "-" in span:
            first, last = (number(part) for part in span.split("-", 1))
        else:
            first = last = number(span)
            if step:
                last = 7 if first else 6  # "1/2": from Monday to the end of the week
        if last < first:
            raise ValueError(f"day-of-week range {span!r} runs backwards")
        if step and (not step.isdigit() or int(step) < 1):
            raise ValueError(f"day-of-week step {step!r} must be a whole number of at least 1")
        every = int(step) if step else 1
        days.update(value % 7 for value in range(first, last + 1, every))
    return days


@dataclass(frozen=True)
class Organization:
    name: str = "Unnamed organization"
    contact_email: str = ""
    address: str = ""  # Organization-Address of BTR bags


@dataclass(frozen=True)
class Paths:
    archive: Path
    state: Path
    outbox: Path


@dataclass(frozen=True)
class XSettings:
    api_base_url: str = "https://api.twitter.com"
    bearer_token: str = field(default="", repr=False)
    bearer_token_file: Path | None = None
    workers: int = 4
    max_retries: int = 4
    request_timeout: float = 30.0


@dataclass(frozen=True)
class BlueskySettings:
    """The `bluesky:` section: where the AppView and Jetstream are, and an optional login (the
    public AppView needs none; with one, calls go to `service_url`, which proxies the AppView)."""

    appview_url: str = "https://public.api.bsky.app"
    jetstream_url: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    service_url: str = "https://bsky.social"  # where a login's session is made and used (a PDS or entryway)
    identifier: str = ""  # handle, DID or e-mail of the account that logs in
    app_password: str = field(default="", repr=False)
    app_password_file: Path | None = None


@dataclass(frozen=True)
class AccountEntry:
    """One configured account: by username or by id (or both); on Bluesky, by handle (kept as
    `username`) or by DID (kept as `id`)."""

    username: str | None = None
    id: str | None = None
    active: bool = True
    line: int = 0

    @property
    def key(self) -> str:
        """How the configuration names the account (id wins: it cannot be reassigned)."""
        return f"id:{self.id}" if self.id else f"username:{self.username.lower()}"


@dataclass(frozen=True)
class StreamRule:
    value: str
    tag: str = ""


@dataclass(frozen=True)
class Collection:
    name: str
    type: str
    schedule: Schedule | None = None
    accounts: tuple[AccountEntry, ...] = ()
    rules: tuple[StreamRule, ...] = ()
    backfill: int = 3200
    backfill_minutes: int = 0
    warc: bool = True
    line: int = 0
    bagging_profile: str | None = None  # collections[].bagging.profile: overrides bagging.profile
    catch_up: bool | None = None  # None: as jobs.catch_up says for timelines
    platform: str = DEFAULT_PLATFORM  # x | bluesky
    from_collections: tuple[str, ...] = ()  # jetstream: the timeline collections whose accounts it follows
    keywords: tuple[str, ...] = ()  # jetstream: words or hashtags a post must hold (any of them)


@dataclass(frozen=True)
class JobSchedules:
    update_usernames: Schedule | None = Schedule("0 3 * * 6")
    fetch_urls: Schedule | None = Schedule("15 1 * * *")
    bag: Schedule | None = Schedule("20 * * * *")
    report: Schedule | None = Schedule("every 1h", timedelta(hours=1))  # notify: the HTML report
    catch_up: tuple[tuple[str, bool], ...] = ()  # (job key or "default", run a missed crontab time at start)

    def catch_up_of(self, job: str, collection: Collection | None = None) -> bool:
        """Whether a crontab time of `job` missed while the daemon was down runs once at start."""
        if collection is not None and collection.catch_up is not None:
            return collection.catch_up
        choices = dict(self.catch_up)
        return choices.get(job, choices.get("default", True))


@dataclass(frozen=True)
class Bagging:
    period: str = "day"
    grace: timedelta = timedelta(hours=2)
    checksums: tuple[str, ...] = ("sha256", "sha512")
    serialization: str = "none"
    ready_marker: bool = False
    copy: bool = False
    empty_periods: bool = True
    on_handoff: tuple[str, ...] = ()
    handoff_timeout: timedelta = timedelta(minutes=30)
    profile_identifier: str | None = None
    workers: int = 0
    profile: str = "none"  # none | btr | aptrust | archivematica (sfm_archiver.bagging.profiles)
    aptrust: AptrustSettings = AptrustSettings()


@dataclass(frozen=True)
class Storage:
    rotation: timedelta = timedelta(hours=1)
    compresslevel: int = 6
    stream_flush_seconds: float = 1.0


@dataclass(frozen=True)
class Urls:
    concurrency: int = 32
    per_host: int = 4
    timeout: float = 10.0
    max_hops: int = 10
    warc: bool = True


@dataclass(frozen=True)
class Streams:
    stall_timeout: float = 30.0
    buffer_messages: int = 100_000


@dataclass(frozen=True)
class Disk:
    warning_free: int = 10 * 10**9
    min_free: int = 2 * 10**9


@dataclass(frozen=True)
class Config:
    source: Path
    paths: Paths
    organization: Organization = Organization()
    x: XSettings = XSettings()
    bluesky: BlueskySettings = BlueskySettings()
    collections: tuple[Collection, ...] = ()
    jobs: JobSchedules = JobSchedules()
    bagging: Bagging = Bagging()
    storage: Storage = Storage()
    urls: Urls = Urls()
    streams: Streams = Streams()
    disk: Disk = Disk()
    notify: Notify = Notify()
    metrics: Metrics = Metrics()
    log_level: str = "INFO"
    warnings: tuple[str, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)  # every secret value, for masking logs

    def collection(self, name: str) -> Collection:
        for collection in self.collections:
            if collection.name == name:
                return collection
        raise KeyError(name)

    def collections_of_type(self, *types: str, platform: str | None = DEFAULT_PLATFORM) -> list[Collection]:
        """The collections of these types on `platform` (None: on any platform)."""
        return [c for c in self.collections if c.type in types and platform in (None, c.platform)]

    def user_agent(self) -> str:
        from sfm_archiver import SOFTWARE

        contact = f"; {self.organization.contact_email}" if self.organization.contact_email else ""
        return f"{SOFTWARE} (+{self.organization.name}{contact})"


# -- loading ---------------------------------------------------------------------------------


def resolve_config_path(explicit: str | Path | None, environ: dict | None = None) -> Path:
    """`--config`, then `$SFM_ARCHIVER_CONFIG`, then /etc/sfm-archiver/config.yaml."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV])
    return DEFAULT_CONFIG_PATH


def load_config(path: str | Path, environ: dict | None = None, check_paths: bool = True, read_secrets: bool = True) -> Config:
    """Load and validate a configuration file; raise ConfigError listing every problem.

    `read_secrets=False` (for `status`, which needs no token) neither reads nor requires them.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([
            f"{path}: cannot read the configuration: {error.strerror or error} "
            f"(name the file with --config PATH or ${CONFIG_ENV})"
        ]) from None
    except UnicodeDecodeError as error:
        raise ConfigError([f"{path}: not UTF-8 text: {error}"]) from None
    return load_config_text(text, path, environ, check_paths, read_secrets)


def load_config_text(
    text: str, source: Path, environ: dict | None = None, check_paths: bool = True, read_secrets: bool = True
) -> Config:
    environ = dict(os.environ if environ is None else environ)
    problems = _Problems(Path(source))
    try:
        document, duplicates = load_located(text)
    except YamlSyntaxError as error:
        raise ConfigError([f"{source}:{error.line}: {error}"]) from None
    for line, message in [*duplicates, *secret_aliases(text)]:
        problems.add(line, message)
    if not isinstance(document, LocatedDict):
        problems.add(getattr(document, "line", 1), "the configuration must be a mapping of sections (paths:, x:, collections:, ...)")
        raise ConfigError(problems.messages)
    document = _expand_env(document, environ, problems)
    config = _Builder(problems, Path(source), environ, check_paths, read_secrets).build(document)
    if problems.messages:
        raise ConfigError(problems.messages)
    # A secret read from a file is in no YAML value: the app password joins the masked values here
    # (X's bearer token is its platform's `secrets`).
    read = [config.bluesky.app_password] if config.bluesky.app_password else []
    return replace(config, secrets=tuple(dict.fromkeys([*secret_values(document), *read])))


class _Problems:
    """Problems and warnings found so far, reported in file order."""

    def __init__(self, source: Path):
        self.source = source
        self._found: list[tuple[int, str]] = []
        self.warnings: list[str] = []

    @property
    def messages(self) -> list[str]:
        ordered = sorted(self._found, key=lambda found: found[0])
        return [f"{self.source}:{line}: {message}" for line, message in ordered]

    def add(self, line: int, message: str) -> None:
        self._found.append((line, message))

    def reported_at(self, line: int) -> bool:
        """True when a problem was already reported at `line` (avoids two messages for one mistake)."""
        return any(found_line == line for found_line, _ in self._found)

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.source}:{line}: warning: {message}")


def _expand_env(value: Any, environ: dict, problems: _Problems, line: int = 1) -> Any:
    """Replace `${VAR}` in every string; an undefined variable is a problem at its line."""
    if isinstance(value, LocatedDict):
        for key in list(value):
            value[key] = _expand_env(value[key], environ, problems, value.line_of(key))
        return value
    if isinstance(value, LocatedList):
        for index, item in enumerate(value):
            value[index] = _expand_env(item, environ, problems, value.line_of(index))
        return value
    if isinstance(value, str) and "${" in value:
        def substitute(match: re.Match) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.add(line, f"environment variable {name} is not set (referenced as ${{{name}}})")
            return ""

        return _ENV_REF.sub(substitute, value)
    return value


_SECTION_KEYS = {
    "top": ("organization", "paths", "x", "bluesky", "collections", "jobs", "bagging", "storage", "urls", "streams", "disk", "log_level", "notify", "metrics"),
    "organization": ("name", "contact_email", "address"),
    "paths": ("archive", "state", "outbox"),
    "x": ("api_base_url", "bearer_token", "bearer_token_file", "workers", "max_retries", "request_timeout"),
    "bluesky": ("appview_url", "jetstream_url", "service_url", "identifier", "app_password", "app_password_file"),
    "collection": (
        "name", "platform", "type", "schedule", "accounts", "rules", "from_collections", "keywords", "backfill",
        "backfill_minutes", "warc", "bagging", "catch_up",
    ),
    "collection_bagging": ("profile",),
    "account": ("username", "id", "active"),
    "bluesky_account": ("handle", "did", "active"),
    "rule": ("value", "tag"),
    "jobs": ("update_usernames", "fetch_urls", "bag", "report", "catch_up"),
    "bagging": (
        "period", "grace", "checksums", "serialization", "ready_marker", "copy", "empty_periods", "on_handoff",
        "handoff_timeout", "profile_identifier", "workers", "profile", "aptrust",
    ),
    "aptrust": ("institution", "access", "storage_option"),
    "storage": ("rotation", "compresslevel", "stream_flush_seconds"),
    "urls": ("concurrency", "per_host", "timeout", "max_hops", "warc"),
    "streams": ("stall_timeout", "buffer_messages"),
    "disk": ("warning_free", "min_free"),
}
_SECTION_KEYS.update(notify_settings.SECTION_KEYS)


class _Builder:
    """Turns the located YAML into typed objects, reporting each problem at its line."""

    def __init__(self, problems: _Problems, source: Path, environ: dict, check_paths: bool, read_secrets: bool = True):
        self.problems = problems
        self.source = source
        self.base_dir = source.parent.resolve() if str(source) else Path.cwd()
        self.environ = environ
        self.check_paths = check_paths
        self.read_secrets = read_secrets

    # generic helpers ----------------------------------------------------------------------

    def section(self, document: LocatedDict, key: str, kind: str, required: bool = False) -> LocatedDict:
        value = document.get(key)
        if value is None:
            if required:
                self.problems.add(document.line or 1, f"missing section '{key}:'")
            empty = LocatedDict()
            empty.line = document.line_of(key)
            return empty
        if not isinstance(value, LocatedDict):
            self.problems.add(document.line_of(key), f"'{key}' must be a mapping, not {_type_name(value)}")
            empty = LocatedDict()
            empty.line = document.line_of(key)
            return empty
        self.unknown_keys(value, kind, key)
        return value

    def unknown_keys(self, mapping: LocatedDict, kind: str, where: str) -> bool:
        """Report keys not allowed in `mapping`; True when there were any."""
        allowed = _SECTION_KEYS[kind]
        found = False
        for key in mapping:
            if key not in allowed:
                found = True
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
                self.problems.add(
                    mapping.line_of(key),
                    f"unknown key '{key}' in {where}{suggestion} (allowed: {', '.join(allowed)})",
                )
        return found

    def value(self, mapping: LocatedDict, key: str, default: Any, convert: Callable[[Any], Any], what: str) -> Any:
        if key not in mapping or mapping[key] is None:
            return default
        try:
            return convert(mapping[key])
        except (ValueError, TypeError) as error:
            detail = "not valid (the value is a secret: not shown)" if is_secret_key(key) else error or what
            self.problems.add(mapping.line_of(key), f"'{key}': {detail} (expected {what})")
            return default

    # sections -----------------------------------------------------------------------------

    def build(self, document: LocatedDict) -> Config:
        self.unknown_keys(document, "top", "the top level")
        organization = self.organization(self.section(document, "organization", "organization"))
        paths = self.paths(self.section(document, "paths", "paths", required=True), present=isinstance(document.get("paths"), LocatedDict))
        collections = self.collections(document)
        needs_token = any(collection.platform == "x" for collection in collections)
        x = self.x(self.section(document, "x", "x"), needs_token)
        bluesky = self.bluesky(self.section(document, "bluesky", "bluesky"))
        log_level = self.value(document, "log_level", "INFO", _choice(("DEBUG", "INFO", "WARNING", "ERROR"), upper=True), "DEBUG, INFO, WARNING or ERROR")
        config = Config(
            source=self.source,
            paths=paths,
            organization=organization,
            x=x,
            bluesky=bluesky,
            collections=collections,
            jobs=self.jobs(self.section(document, "jobs", "jobs")),
            bagging=self.bagging(self.section(document, "bagging", "bagging")),
            storage=self.storage(self.section(document, "storage", "storage")),
            urls=self.urls(self.section(document, "urls", "urls")),
            streams=self.streams(self.section(document, "streams", "streams")),
            disk=self.disk(self.section(document, "disk", "disk")),
            notify=notify_settings.build_notify(self, self.section(document, "notify", "notify")),
            metrics=notify_settings.build_metrics(self, self.section(document, "metrics", "metrics")),
            log_level=log_level,
            warnings=tuple(self.problems.warnings),
        )
        for line, message in profile_settings.config_problems(config, document):
            if not self.problems.reported_at(line):
                self.problems.add(line, message)
        return config

    def organization(self, section: LocatedDict) -> Organization:
        name = self.value(section, "name", Organization.name, _text, "text")
        email = self.value(section, "contact_email", "", _email, "an e-mail address like archives@example.edu")
        address = self.value(section, "address", "", _text, "a postal address on one line")
        return Organization(name=name, contact_email=email, address=address)

    def paths(self, section: LocatedDict, present: bool = True) -> Paths:
        """The three folders; `present` is False when the whole section is missing (reported once)."""
        resolved = {}
        for key in ("archive", "state", "outbox"):
            if key not in section or section[key] in (None, ""):
                if present:
                    self.problems.add(section.line_of(key) or 1, f"missing 'paths.{key}' (a folder path)")
                resolved[key] = Path(f"/nonexistent/{key}")
                continue
            path = Path(str(section[key])).expanduser()
            path = path if path.is_absolute() else self.base_dir / path
            resolved[key] = path
            if self.check_paths:
                problem = _writable_problem(path)
                if problem:
                    self.problems.add(section.line_of(key), f"paths.{key}: {problem}")
        return Paths(**resolved)

    def x(self, section: LocatedDict, needs_token: bool) -> XSettings:
        base_url = self.value(section, "api_base_url", XSettings.api_base_url, _url, "an http(s) URL")
        token = self.value(section, "bearer_token", "", _text, "text")
        token_file = None
        if section.get("bearer_token_file") and self.read_secrets:
            token_file, token_from_file = self.read_secret(section, "bearer_token_file")
            if token and token_from_file:
                self.problems.add(section.line_of("bearer_token"), "give either bearer_token or bearer_token_file, not both")
            token = token or token_from_file
        token_lines = [section.line_of(key) for key in ("bearer_token", "bearer_token_file") if key in section]
        if needs_token and self.read_secrets and not token and not any(self.problems.reported_at(line) for line in token_lines):
            self.problems.add(
                section.line or 1,
                "missing credentials: set x.bearer_token (e.g. ${SFM_X_BEARER_TOKEN}) or x.bearer_token_file",
            )
        return XSettings(
            api_base_url=base_url.rstrip("/"),
            bearer_token=token,
            bearer_token_file=token_file,
            workers=self.value(section, "workers", XSettings.workers, _int_range(1, 64), "a whole number 1-64"),
            max_retries=self.value(section, "max_retries", XSettings.max_retries, _int_range(0, 20), "a whole number 0-20"),
            request_timeout=self.value(section, "request_timeout", XSettings.request_timeout, _seconds, "a duration like 30s"),
        )

    def bluesky(self, section: LocatedDict) -> BlueskySettings:
        """`bluesky:`; the app password is read as X's bearer token is (given, or from a file)."""
        password = self.value(section, "app_password", "", _text, "text")
        password_file = None
        if section.get("app_password_file") and self.read_secrets:
            password_file, from_file = self.read_secret(section, "app_password_file", "bluesky")
            if password and from_file:
                self.problems.add(section.line_of("app_password"), "give either app_password or app_password_file, not both")
            password = password or from_file
        identifier = self.value(section, "identifier", "", _text, "a handle, DID or e-mail address")
        given = [key for key in ("app_password", "app_password_file") if section.get(key) not in (None, "")]
        if identifier and not given and not any(
                self.problems.reported_at(section.line_of(key)) for key in ("app_password", "app_password_file") if key in section):
            self.problems.add(section.line_of("identifier"), "bluesky.identifier needs bluesky.app_password or bluesky.app_password_file")
        if given and not identifier:
            self.problems.add(section.line_of(given[0]), "a bluesky app password needs bluesky.identifier (the handle or DID that logs in)")
        return BlueskySettings(
            appview_url=self.value(section, "appview_url", BlueskySettings.appview_url, _url, "an http(s) URL").rstrip("/"),
            jetstream_url=self.value(section, "jetstream_url", BlueskySettings.jetstream_url, _ws_url, "a ws(s) URL"),
            service_url=self.value(section, "service_url", BlueskySettings.service_url, _url, "an http(s) URL").rstrip("/"),
            identifier=identifier,
            app_password=password,
            app_password_file=password_file,
        )

    def read_secret(self, section: LocatedDict, key: str, where: str = "x") -> tuple[Path | None, str]:
        line = section.line_of(key)
        path = Path(str(section[key])).expanduser()
        credentials = self.environ.get("CREDENTIALS_DIRECTORY")
        if credentials and (not path.is_absolute() or not path.exists()):
            candidate = Path(credentials) / (path.name if path.is_absolute() else path)
            path = candidate if candidate.exists() or not path.is_absolute() else path
        elif not path.is_absolute():
            path = self.base_dir / path
        try:
            mode = path.stat().st_mode
            secret = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            self.problems.add(line, f"{where}.{key}: cannot read {path}: {error.strerror or error}")
            return path, ""
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.problems.warn(line, f"secret file {path} is readable by group or others (chmod 600 it)")
        if not secret:
            self.problems.add(line, f"{where}.{key}: {path} is empty")
        return path, secret

    def collections(self, document: LocatedDict) -> tuple[Collection, ...]:
        items = document.get("collections")
        if items is None:
            return ()
        if not isinstance(items, LocatedList):
            self.problems.add(document.line_of("collections"), "'collections' must be a list of collections")
            return ()
        built, seen = [], {}
        for index, item in enumerate(items):
            line = items.line_of(index)
            if not isinstance(item, LocatedDict):
                self.problems.add(line, f"collection {index + 1} must be a mapping with name: and type:")
                continue
            collection = self.collection(item)
            if collection is None:
                continue
            if collection.name in seen:
                self.problems.add(line, f"duplicate collection name '{collection.name}' (first at line {seen[collection.name]})")
                continue
            seen[collection.name] = line
            built.append(collection)
        self.jetstream_sources(items, built)
        return tuple(built)

    def collection(self, item: LocatedDict) -> Collection | None:
        """One collection; every part is checked even when its name or type is wrong (None then)."""
        self.unknown_keys(item, "collection", "a collection")
        name = item.get("name")
        name_ok = isinstance(name, str) and bool(COLLECTION_NAME.match(name)) and len(name) <= 64
        if not name_ok:
            self.problems.add(
                item.line_of("name"),
                f"collection name {name!r} is invalid: use 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit",
            )
        platform = item.get("platform", DEFAULT_PLATFORM)
        platform_ok = platform in PLATFORM_TYPES
        if not platform_ok:
            self.problems.add(item.line_of("platform"), f"collection '{name}': platform {platform!r} is invalid (allowed: {', '.join(PLATFORM_TYPES)})")
            platform = "bluesky" if item.get("type") == "jetstream" else DEFAULT_PLATFORM  # check the rest as the type suggests
        allowed = PLATFORM_TYPES[platform]
        kind = item.get("type")
        kind_ok = kind in allowed
        if not kind_ok:
            self.problems.add(item.line_of("type"), f"collection '{name}': {self.type_problem(kind, platform)}")
        kinds = (kind,) if kind_ok else tuple(
            t for t in allowed if (t != "filter_stream" or "rules" in item)
            and (t != "jetstream" or "from_collections" in item or "keywords" in item))
        collection = self.collection_parts(item, str(name), kind, kinds, platform)
        return collection if name_ok and kind_ok and platform_ok else None

    @staticmethod
    def type_problem(kind: Any, platform: str) -> str:
        """Why `kind` is no type of a `platform` collection (a type of another platform is named as such)."""
        allowed = PLATFORM_TYPES[platform]
        other = [name for name, types in PLATFORM_TYPES.items() if name != platform and kind in types]
        if other:
            return (f"type {kind!r} is a type of {other[0]} collections, not of {platform} collections "
                    f"(allowed with platform: {platform}: {', '.join(allowed)})")
        hint = difflib.get_close_matches(str(kind), allowed, n=1)
        suggestion = f"; did you mean '{hint[0]}'?" if hint else ""
        return f"type {kind!r} is invalid{suggestion} (allowed: {', '.join(allowed)})"

    def collection_parts(self, item: LocatedDict, name: str, kind: str, kinds: tuple[str, ...],
                         platform: str = DEFAULT_PLATFORM) -> Collection:
        """The parts of a collection that may be one of `kinds` (all of them when its type is wrong)."""
        schedule = None
        if "timeline" in kinds:
            schedule = self.schedule(item, "schedule", Schedule("0 */6 * * *"))
        elif "schedule" in item:
            self.problems.add(item.line_of("schedule"), f"collection '{name}': streams run continuously and take no schedule")
        accounts = self.accounts(item, name, platform) if "timeline" in kinds else ()
        if "timeline" not in kinds and "accounts" in item:
            self.problems.add(item.line_of("accounts"), f"collection '{name}': only timeline collections have accounts")
        rules = self.rules(item, name) if "filter_stream" in kinds else ()
        if "filter_stream" not in kinds and "rules" in item:
            self.problems.add(item.line_of("rules"), f"collection '{name}': only filter_stream collections have rules")
        from_collections, keywords = self.jetstream(item, name) if "jetstream" in kinds else ((), ())
        for key in ("from_collections", "keywords"):
            if "jetstream" not in kinds and key in item and kinds == (kind,):  # a wrong type: its message says it
                self.problems.add(item.line_of(key), f"collection '{name}': only bluesky jetstream collections have {key}")
        return Collection(
            name=name,
            type=kind,
            schedule=schedule,
            accounts=accounts,
            rules=rules,
            backfill=self.value(item, "backfill", 3200, _int_range(0, 3200), "a whole number 0-3200 (posts fetched on the first harvest)"),
            backfill_minutes=self.value(item, "backfill_minutes", 0, _int_range(0, 5), "a whole number of minutes 0-5"),
            warc=self.value(item, "warc", kind == "timeline", _bool, "true or false"),
            line=item.line,
            bagging_profile=self.value(self.section(item, "bagging", "collection_bagging"), "profile", None, _choice(PROFILE_NAMES), " | ".join(PROFILE_NAMES)),
            catch_up=self.collection_catch_up(item, name, kind),
            platform=platform,
            from_collections=from_collections,
            keywords=keywords,
        )

    def jetstream(self, item: LocatedDict, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """`from_collections` and `keywords` of a jetstream collection (at least one of them; the
        named collections are checked once every collection is known: `jetstream_sources`)."""
        lists = {}
        for key, what in (("from_collections", "collection names"), ("keywords", "words or hashtags")):
            value = item.get(key)
            if value is None:
                lists[key] = ()
                continue
            if not isinstance(value, LocatedList) or not all(isinstance(v, str) and v.strip() for v in value):
                self.problems.add(item.line_of(key), f"collection '{name}': {key} must be a list of {what}")
                lists[key] = ()
                continue
            lists[key] = tuple(dict.fromkeys(v.strip() for v in value))
        if not any(key in item for key in lists):
            self.problems.add(item.line, f"collection '{name}': a jetstream collection needs from_collections, keywords or both")
        return lists["from_collections"], lists["keywords"]

    def jetstream_sources(self, items: LocatedList, built: list[Collection]) -> None:
        """Each name in a jetstream's `from_collections` is a bluesky timeline collection of this file."""
        by_name = {collection.name: collection for collection in built}
        for collection in built:
            if collection.type != "jetstream":
                continue
            item = next(i for i in items if isinstance(i, LocatedDict) and i.line == collection.line)
            names = item.get("from_collections")
            for index, source in enumerate(names if isinstance(names, LocatedList) else ()):
                target = by_name.get(str(source).strip())
                if target is None or target.platform != "bluesky" or target.type != "timeline":
                    what = "no collection of this file" if target is None else f"a {target.platform} {target.type} collection"
                    self.problems.add(names.line_of(index), f"collection '{collection.name}': from_collections names "
                                      f"{source!r}, {what}; it takes bluesky timeline collections")

    def collection_catch_up(self, item: LocatedDict, name: str, kind: str) -> bool | None:
        if kind != "timeline" and "catch_up" in item:
            self.problems.add(item.line_of("catch_up"), f"collection '{name}': only timeline collections have a schedule to catch up")
            return None
        return self.value(item, "catch_up", None, _bool, "true or false")

    def accounts(self, item: LocatedDict, collection: str, platform: str = DEFAULT_PLATFORM) -> tuple[AccountEntry, ...]:
        entries = item.get("accounts")
        if entries is None:
            return ()
        if not isinstance(entries, LocatedList):
            self.problems.add(item.line_of("accounts"), f"collection '{collection}': accounts must be a list")
            return ()
        built, seen = [], {}
        for index, entry in enumerate(entries):
            line = entries.line_of(index)
            account = self.bluesky_account(entry, line, collection) if platform == "bluesky" else self.account(entry, line, collection)
            if account is None:
                continue
            if account.key in seen:
                self.problems.add(account.line, f"collection '{collection}': account {account.key} is listed twice (first at line {seen[account.key]})")
                continue
            seen[account.key] = account.line
            built.append(account)
        return tuple(built)

    def bluesky_account(self, entry: Any, line: int, collection: str) -> AccountEntry | None:
        """A Bluesky account: a handle or a DID, or {handle: ..., did: ..., active: ...}."""
        if isinstance(entry, str):
            text = entry.strip().lstrip("@")
            entry_map = LocatedDict(did=text) if text.startswith("did:") else LocatedDict(handle=text)
            entry_map.line = line
        elif isinstance(entry, LocatedDict):
            entry_map = entry
            if self.unknown_keys(entry_map, "bluesky_account", f"an account of '{collection}'") and not (
                "handle" in entry_map or "did" in entry_map
            ):
                return None
        else:
            self.problems.add(line, f"collection '{collection}': an account is a handle, a DID or {{handle: ..., did: ..., active: ...}}")
            return None
        handle, did = entry_map.get("handle"), entry_map.get("did")
        if handle is None and did is None:
            self.problems.add(line, f"collection '{collection}': an account needs a handle or a DID")
            return None
        valid = True
        if handle is not None:
            handle = str(handle).strip().lstrip("@").lower()
            if len(handle) > HANDLE_MAX or not HANDLE.match(handle):
                self.problems.add(entry_map.line_of("handle"), f"collection '{collection}': invalid handle {handle!r} "
                                  "(a domain name like alice.bsky.social: dot-separated labels of a-z, 0-9 and '-', "
                                  "the last not a number, 253 characters at most)")
                valid = False
        if did is not None:
            did = str(did).strip()
            if not DID.match(did):
                self.problems.add(entry_map.line_of("did"), f"collection '{collection}': invalid DID {did!r} "
                                  "(did:plc: and 24 of a-z, 2-7, or did:web: and a host name)")
                valid = False
        active = self.value(entry_map, "active", True, _bool, "true or false")
        return AccountEntry(username=handle, id=did, active=active, line=line) if valid else None

    def account(self, entry: Any, line: int, collection: str) -> AccountEntry | None:
        if isinstance(entry, (str, int)) and not isinstance(entry, bool):
            entry_map = LocatedDict(username=str(entry))
            entry_map.line = line
        elif isinstance(entry, LocatedDict):
            entry_map = entry
            if self.unknown_keys(entry_map, "account", f"an account of '{collection}'") and not (
                "username" in entry_map or "id" in entry_map
            ):
                return None  # a misspelt username/id key: that message says it all
        else:
            self.problems.add(line, f"collection '{collection}': an account is a username or {{username: ..., id: ..., active: ...}}")
            return None
        username = entry_map.get("username")
        account_id = entry_map.get("id")
        if username is None and account_id is None:
            self.problems.add(line, f"collection '{collection}': an account needs a username or an id")
            return None
        valid = True
        if username is not None:
            username = str(username).lstrip("@")
            if not USERNAME.match(username):
                self.problems.add(entry_map.line_of("username"), f"collection '{collection}': invalid username {username!r} (1-15 of A-Z, a-z, 0-9 and _)")
                valid = False
        if account_id is not None:
            account_id = str(account_id)
            if not ACCOUNT_ID.match(account_id):
                self.problems.add(entry_map.line_of("id"), f"collection '{collection}': invalid account id {account_id!r} (digits only; quote it in YAML)")
                valid = False
        active = self.value(entry_map, "active", True, _bool, "true or false")
        return AccountEntry(username=username, id=account_id, active=active, line=line) if valid else None

    def rules(self, item: LocatedDict, collection: str) -> tuple[StreamRule, ...]:
        entries = item.get("rules")
        if not isinstance(entries, LocatedList) or not entries:
            self.problems.add(
                item.line_of("rules") if "rules" in item else item.line,
                f"collection '{collection}': a filter_stream needs a list of rules ({{value: ..., tag: ...}})",
            )
            return ()
        built = []
        for index, entry in enumerate(entries):
            line = entries.line_of(index)
            if isinstance(entry, str):
                entry = LocatedDict(value=entry)
                entry.line = line
            if not isinstance(entry, LocatedDict):
                self.problems.add(line, f"collection '{collection}': a rule is {{value: ..., tag: ...}}")
                continue
            self.unknown_keys(entry, "rule", f"a rule of '{collection}'")
            value = entry.get("value")
            value_ok = isinstance(value, str) and bool(value.strip()) and len(value) <= 1024
            if not value_ok:
                self.problems.add(entry.line_of("value"), f"collection '{collection}': a rule needs a non-empty value of at most 1024 characters")
            tag = str(entry.get("tag") or f"rule{index + 1}")
            if ":" in tag:
                self.problems.add(entry.line_of("tag"), f"collection '{collection}': rule tag {tag!r} may not contain ':'")
                continue
            if not value_ok:
                continue
            built.append(StreamRule(value=value.strip(), tag=tag))
        return tuple(built)

    def schedule(self, mapping: LocatedDict, key: str, default: Schedule | None) -> Schedule | None:
        if key not in mapping:
            return default
        text = mapping[key]
        if text is None or text is False or text == "off":
            return None
        try:
            return parse_schedule(str(text))
        except ValueError as error:
            self.problems.add(mapping.line_of(key), f"'{key}': {error}")
            return default

    def jobs(self, section: LocatedDict) -> JobSchedules:
        defaults = JobSchedules()
        return JobSchedules(
            update_usernames=self.schedule(section, "update_usernames", defaults.update_usernames),
            fetch_urls=self.schedule(section, "fetch_urls", defaults.fetch_urls),
            bag=self.schedule(section, "bag", defaults.bag),
            catch_up=self.catch_up(section),
            report=self.schedule(section, "report", defaults.report),
        )

    def catch_up(self, section: LocatedDict) -> tuple[tuple[str, bool], ...]:
        """`catch_up: true|false` for every job, or a mapping of job keys (and `default`) to true|false."""
        value = section.get("catch_up")
        if value is None:
            return ()
        if isinstance(value, bool):
            return (("default", value),)
        jobs = ("default", "timeline") + tuple(key for key in _SECTION_KEYS["jobs"] if key != "catch_up")
        if not isinstance(value, LocatedDict):
            self.problems.add(section.line_of("catch_up"), f"jobs.catch_up must be true, false or a mapping of {', '.join(jobs)} to true/false")
            return ()
        choices = []
        for key in value:
            if key not in jobs:
                self.problems.add(value.line_of(key), f"unknown job '{key}' in jobs.catch_up (allowed: {', '.join(jobs)})")
            elif not isinstance(value[key], bool):
                self.problems.add(value.line_of(key), f"jobs.catch_up.{key}: expected true or false, got {value[key]!r}")
            else:
                choices.append((str(key), value[key]))
        return tuple(choices)

    def bagging(self, section: LocatedDict) -> Bagging:
        handoff = section.get("on_handoff") or ()
        if handoff and (not isinstance(handoff, list) or not all(isinstance(a, (str, int, float)) for a in handoff)):
            self.problems.add(section.line_of("on_handoff"), "bagging.on_handoff must be a list of arguments, e.g. [rsync, -a, '{bag}', 'host:/ingest/']")
            handoff = ()
        return Bagging(
            period=self.value(section, "period", "day", _choice(PERIOD_UNITS), "hour, day or month"),
            grace=self.value(section, "grace", Bagging.grace, parse_duration, "a duration like 2h"),
            checksums=self.value(section, "checksums", Bagging.checksums, _checksums, f"a list of {', '.join(CHECKSUMS)}"),
            serialization=self.value(section, "serialization", "none", _choice(("none", "tar")), "none or tar"),
            ready_marker=self.value(section, "ready_marker", False, _bool, "true or false"),
            copy=self.value(section, "copy", False, _bool, "true or false"),
            empty_periods=self.value(section, "empty_periods", True, _bool, "true or false"),
            on_handoff=tuple(str(a) for a in handoff),
            handoff_timeout=self.value(section, "handoff_timeout", Bagging.handoff_timeout, parse_duration, "a duration like 30m"),
            profile_identifier=self.value(section, "profile_identifier", None, _text, "a URI"),
            workers=self.value(section, "workers", 0, _int_range(0, 64), "a whole number; 0 means one per core"),
            profile=self.value(section, "profile", "none", _choice(PROFILE_NAMES), " | ".join(PROFILE_NAMES)),
            aptrust=self.aptrust(self.section(section, "aptrust", "aptrust")),
        )

    def aptrust(self, section: LocatedDict) -> AptrustSettings:
        """`bagging.aptrust`; allowed values come from APTrust's shipped profile document."""
        return AptrustSettings(
            institution=self.value(section, "institution", "", profile_settings.institution, "an institution identifier like example.edu"),
            access=self.value(section, "access", AptrustSettings.access, profile_settings.aptrust_choice("Access"), "an APTrust Access value"),
            storage_option=self.value(
                section, "storage_option", AptrustSettings.storage_option, profile_settings.aptrust_choice("Storage-Option"),
                "an APTrust Storage-Option value",
            ),
        )

    def storage(self, section: LocatedDict) -> Storage:
        return Storage(
            rotation=self.value(section, "rotation", Storage.rotation, _rotation, "a duration that divides an hour, like 1h or 10m"),
            compresslevel=self.value(section, "compresslevel", 6, _int_range(1, 9), "a whole number 1-9"),
            stream_flush_seconds=self.value(section, "stream_flush_seconds", 1.0, _seconds, "a duration like 1s"),
        )

    def urls(self, section: LocatedDict) -> Urls:
        return Urls(
            concurrency=self.value(section, "concurrency", Urls.concurrency, _int_range(1, 1024), "a whole number 1-1024"),
            per_host=self.value(section, "per_host", Urls.per_host, _int_range(1, 256), "a whole number 1-256"),
            timeout=self.value(section, "timeout", Urls.timeout, _seconds, "a duration like 10s"),
            max_hops=self.value(section, "max_hops", Urls.max_hops, _int_range(1, 50), "a whole number 1-50"),
            warc=self.value(section, "warc", True, _bool, "true or false"),
        )

    def streams(self, section: LocatedDict) -> Streams:
        return Streams(
            stall_timeout=self.value(section, "stall_timeout", Streams.stall_timeout, _seconds, "a duration like 30s"),
            buffer_messages=self.value(section, "buffer_messages", Streams.buffer_messages, _int_range(0, 10**8), "a whole number"),
        )

    def disk(self, section: LocatedDict) -> Disk:
        disk = Disk(
            warning_free=self.value(section, "warning_free", Disk.warning_free, parse_size, "a size like 10GB"),
            min_free=self.value(section, "min_free", Disk.min_free, parse_size, "a size like 2GB"),
        )
        if disk.min_free > disk.warning_free:
            self.problems.add(section.line_of("min_free"), "disk.min_free must not be larger than disk.warning_free")
        return disk


# -- value converters ------------------------------------------------------------------------


def parse_schedule(text: str) -> Schedule:
    """`every 30s` / `every 6h`, or a five-field crontab line (validated by apscheduler)."""
    text = text.strip()
    match = _EVERY.match(text)
    if match:
        seconds = parse_duration(match.group(1) + match.group(2)).total_seconds()
        if seconds <= 0:
            raise ValueError(f"schedule {text!r} must be longer than zero")
        return Schedule(text, timedelta(seconds=seconds))
    if text.startswith("every"):
        raise ValueError(f"invalid schedule {text!r}: write 'every <number><s|m|h|d>', e.g. 'every 30s' or 'every 6h'")
    if len(text.split()) != 5:
        raise ValueError(f"invalid schedule {text!r}: use a crontab line of five fields ('0 */6 * * *') or 'every 6h'")
    try:
        crontab_trigger(text)
    except (ValueError, TypeError) as error:
        raise ValueError(f"invalid crontab {text!r}: {error}") from None
    return Schedule(text)


def parse_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower() if match.group(2) else None])


def _text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise TypeError(f"got {_type_name(value)}")
    return str(value)


def _email(value: Any) -> str:
    text = _text(value)
    if text and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", text):
        raise ValueError(f"{text!r} is not an e-mail address")
    return text


def _url(value: Any) -> str:
    text = _text(value)
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", text):
        raise ValueError(f"{text!r} is not an http(s) URL")
    return text


def _ws_url(value: Any) -> str:
    text = _text(value)
    if not re.match(r"^wss?://[^/\s]+(/\S*)?$", text):
        raise ValueError(f"{text!r} is not a ws(s) URL")
    return text


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise TypeError(f"got {value!r}")


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"got {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range")
        return value

    return convert


def _seconds(value: Any) -> float:
    seconds = parse_duration(value).total_seconds()
    if seconds <= 0:
        raise ValueError(f"{value!r} must be longer than zero")
    return seconds


def _rotation(value: Any) -> timedelta:
    duration = parse_duration(value)
    if duration.total_seconds() <= 0 or 3600 % duration.total_seconds():
        raise ValueError(f"{value!r} does not divide an hour")
    return duration


def _choice(allowed: tuple[str, ...], upper: bool = False) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        text = str(value).upper() if upper else str(value)
        if text not in allowed:
            raise ValueError(f"{value!r} is not allowed")
        return text

    return convert


def _checksums(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise TypeError("expected a list")
    bad = [item for item in items if item not in CHECKSUMS]
    if bad:
        raise ValueError(f"unsupported algorithm(s) {bad}")
    return tuple(dict.fromkeys(items))


def _type_name(value: Any) -> str:
    return {dict: "a mapping", LocatedDict: "a mapping", list: "a list", LocatedList: "a list"}.get(type(value), type(value).__name__)


def _writable_problem(path: Path) -> str | None:
    """Why `path` cannot be used as a writable folder, or None when it can (or can be created)."""
    if path.exists():
        if not path.is_dir():
            return f"{path} is not a folder"
        return None if os.access(path, os.W_OK | os.X_OK) else f"{path} is not writable by this user"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"{path} does not exist and cannot be created ({parent} is not writable)"
    return None


def public_dict(config: Config) -> dict:
    """The configuration as plain data with every secret removed (for status, logs and bags)."""
    return {
        "source": str(config.source),
        "organization": {"name": config.organization.name, "contact_email": config.organization.contact_email},
        "paths": {k: str(getattr(config.paths, k)) for k in ("archive", "state", "outbox")},
        "x": {"api_base_url": redact_url_credentials(config.x.api_base_url),
              "workers": config.x.workers, "bearer_token": "(set)" if config.x.bearer_token else "(missing)"},
        "bluesky": {"appview_url": redact_url_credentials(config.bluesky.appview_url),
                    "jetstream_url": redact_url_credentials(config.bluesky.jetstream_url),
                    "service_url": redact_url_credentials(config.bluesky.service_url),
                    "identifier": config.bluesky.identifier,
                    "app_password": "(set)" if config.bluesky.app_password else "(none)"},
        "collections": [collection_public_dict(c) for c in config.collections],
    }


def collection_public_dict(collection: Collection) -> dict:
    """One collection's configuration as plain data (it holds no secrets)."""
    names = ("handle", "did") if collection.platform == "bluesky" else ("username", "id")
    return {
        "name": collection.name,
        "platform": collection.platform,
        "type": collection.type,
        "schedule": collection.schedule.text if collection.schedule else None,
        "accounts": [
            {k: v for k, v in ((names[0], a.username), (names[1], a.id), ("active", a.active)) if v is not None}
            for a in collection.accounts
        ],
        "rules": [{"value": r.value, "tag": r.tag} for r in collection.rules],
        **({"from_collections": list(collection.from_collections), "keywords": list(collection.keywords)}
           if collection.type == "jetstream" else {}),
        "backfill": collection.backfill,
        "warc": collection.warc,
    }
