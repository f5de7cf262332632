"""BlueskyScenario: accounts, rate limit, Jetstream traffic and script of one Bluesky simulator run.

Built from a dict (or YAML text); every key has a default. Unknown keys and bad values are
collected and raised together as one ScenarioError, as the X scenario does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from sfm_archiver.errors import ScenarioError
from sfm_archiver.simulator.bluesky.wire import WIRE_STYLES
from sfm_archiver.simulator.scenario import EndpointLimit, ScriptEvent
from sfm_archiver.timeutil import parse_timestamp
from sfm_archiver.yamlsource import YamlSyntaxError, load_located

HANDLE = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
STATUSES = ("active", "takendown", "deactivated", "deleted")
# event -> (required keys, optional keys); the account is named by `handle` or `did`
EVENTS: dict[str, tuple[frozenset, frozenset]] = {
    "rename": (frozenset({"to"}), frozenset()),
    "takedown": (frozenset(), frozenset()),
    "restore": (frozenset(), frozenset()),
    "deactivate": (frozenset(), frozenset()),
    "reactivate": (frozenset(), frozenset()),
    "delete_account": (frozenset(), frozenset()),
    "post": (frozenset(), frozenset({"text", "links", "reply_to", "count"})),
    "delete_post": (frozenset(), frozenset({"uri"})),  # no uri: the account's newest post
}


@dataclass(frozen=True)
class BlueskyAccountSpec:
    handle: str
    posts: int = 50
    links: float = 0.3  # share of posts with a link facet (some with an external embed too)
    reposts: float = 0.1  # share of feed items that are reposts of other authors' posts
    replies: float = 0.2  # share of the account's posts that are replies
    display_name: str = ""
    description: str = ""
    status: str = "active"  # or takendown / deactivated / deleted from the start
    post_interval_seconds: float = 3600.0  # mean gap between history posts


@dataclass(frozen=True)
class JetstreamSpec:
    events_per_second: float = 0.0  # background commits from other DIDs; 0 = only scripted/added events
    buffer_seconds: float = 3600.0  # how far back a cursor can replay


@dataclass(frozen=True)
class LoginSpec:
    """The one account that can log in (createSession), as a PDS holds it, and whether the XRPC
    methods need its session."""

    identifier: str = ""  # "" = no account can log in
    password: str = ""
    access_seconds: float = 7200.0  # how long an access token lasts (a refresh token: 90 days)
    required: bool = False  # app.bsky.* without a valid session: 401 AuthenticationRequired


DEFAULT_ACCOUNTS = (
    BlueskyAccountSpec("alice.bsky.test", posts=250, display_name="Alice Library",
                       description="News from the stacks 📚"),
    BlueskyAccountSpec("bob.bsky.test", posts=120, links=0.5, display_name="Bob Archive"),
    BlueskyAccountSpec("carol.bsky.test", posts=40, replies=0.4, display_name="Carol Ünïcödé"),
)


@dataclass(frozen=True)
class BlueskyScenario:
    seed: int = 1
    wire: str = "plain"  # "variant": legal JSON spelled differently, windows that end early
    epoch: str = "2026-11-01T00:00:00Z"  # history ends here (or at the start, when that is earlier)
    accounts: tuple[BlueskyAccountSpec, ...] = DEFAULT_ACCOUNTS
    rate_limit: EndpointLimit = EndpointLimit(3000, 300.0)  # per client IP, across every XRPC method
    jetstream: JetstreamSpec = JetstreamSpec()
    script: tuple[ScriptEvent, ...] = ()
    latency_ms: float = 0.0  # added before each XRPC answer (`BlueskySimulator.set_latency` changes it)
    login: LoginSpec = LoginSpec()

    @classmethod
    def default(cls) -> BlueskyScenario:
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str = "scenario") -> BlueskyScenario:
        """Build from plain data; raises ScenarioError listing every problem."""
        parser = _Parser(source)
        scenario = parser.scenario(data or {})
        if parser.problems:
            raise ScenarioError(parser.problems)
        return scenario

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> BlueskyScenario:
        """A YAML file (a Path) or YAML text."""
        source = str(path_or_text) if isinstance(path_or_text, Path) else "scenario"
        try:
            text = path_or_text.read_text(encoding="utf-8") if isinstance(path_or_text, Path) else path_or_text
            data, duplicates = load_located(text)
        except OSError as error:
            raise ScenarioError([f"{source}: cannot read the scenario: {error.strerror}"]) from error
        except YamlSyntaxError as error:
            raise ScenarioError([f"{source}:{error.line}: {error}"]) from error
        if duplicates:
            raise ScenarioError([f"{source}:{line}: {message}" for line, message in duplicates])
        if data is not None and not isinstance(data, dict):
            raise ScenarioError([f"{source}: the scenario must be a mapping"])
        return cls.from_dict(data, source=source)

    def epoch_seconds(self) -> float:
        return parse_timestamp(self.epoch).timestamp()


def check_event(event: Mapping[str, Any], where: str = "event") -> list[str]:
    """Problems of one lifecycle event: `event`, the account (`handle` or `did`) and its own keys."""
    name = event.get("event")
    if name not in EVENTS:
        return [f"{where}: unknown event {name!r} (known: {', '.join(EVENTS)})"]
    required, optional = EVENTS[name]
    keys = set(event) - {"event", "after_seconds", "handle", "did"}
    problems = [f"{where}: unknown key {key!r} for event {name!r}" for key in sorted(keys - required - optional)]
    problems += [f"{where}: event {name!r} needs {key!r}" for key in sorted(required - keys)]
    if "handle" not in event and "did" not in event and not (name == "delete_post" and "uri" in event):
        problems.append(f"{where}: event {name!r} needs the account's 'handle' or 'did'")
    if name == "rename" and not HANDLE.match(str(event.get("to", "")).lower()):
        problems.append(f"{where}: 'to' is not a handle: {event.get('to')!r}")
    return problems


class _Parser:
    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def problem(self, message: str) -> None:
        self.problems.append(f"{self.source}: {message}")

    def scenario(self, data: Mapping[str, Any]) -> BlueskyScenario:
        kwargs = self.scalars(BlueskyScenario, data, "scenario", skip={"accounts", "rate_limit", "jetstream", "script", "login"})
        if kwargs.get("wire", "plain") not in WIRE_STYLES:
            self.problem(f"wire must be one of {', '.join(WIRE_STYLES)}, not {kwargs.pop('wire')!r}")
        if "epoch" in kwargs:
            try:
                parse_timestamp(kwargs["epoch"])
            except ValueError:
                self.problem(f"epoch is not a timestamp: {kwargs.pop('epoch')!r}")
        if "accounts" in data:
            kwargs["accounts"] = self.accounts(data["accounts"])
        if "rate_limit" in data:
            limits = self.scalars(_RateLimit, self.mapping(data["rate_limit"], "rate_limit"), "rate_limit")
            if limits.get("limit", 1) < 1 or limits.get("window_seconds", 1) <= 0:
                self.problem("rate_limit needs a limit of at least 1 and a window above 0")
            else:
                kwargs["rate_limit"] = EndpointLimit(limits.get("limit", 3000), float(limits.get("window_seconds", 300)))
        if "jetstream" in data:
            kwargs["jetstream"] = JetstreamSpec(**self.scalars(JetstreamSpec, self.mapping(data["jetstream"], "jetstream"),
                                                               "jetstream"))
        if "script" in data:
            kwargs["script"] = self.script(data["script"])
        if "login" in data:
            kwargs["login"] = LoginSpec(**self.scalars(LoginSpec, self.mapping(data["login"], "login"), "login"))
        return BlueskyScenario(**kwargs)

    def mapping(self, raw: Any, where: str) -> Mapping[str, Any]:
        if isinstance(raw, dict):
            return raw
        if raw is not None:
            self.problem(f"{where} must be a mapping")
        return {}

    def scalars(self, cls: type, data: Mapping[str, Any], where: str, skip: frozenset | set = frozenset()) -> dict[str, Any]:
        """Typed values of the fields of `cls` found in `data`; unknown keys and wrong types are problems."""
        specs = {spec.name: spec for spec in fields(cls)}
        out: dict[str, Any] = {}
        for key, value in data.items():
            spec = specs.get(key)
            if spec is None:
                self.problem(f"unknown key {key!r} in {where} (known: {', '.join(specs)})")
            elif key not in skip:
                typed = _typed(value, spec.type)
                if typed is None:
                    self.problem(f"{where}.{key} must be {_TYPE_NAMES[spec.type]}, not {value!r}")
                elif spec.name in _SHARES and not 0 <= typed <= 1:
                    self.problem(f"{where}.{key} is a share between 0 and 1")
                else:
                    out[key] = typed
        return out

    def accounts(self, raw: Any) -> tuple[BlueskyAccountSpec, ...]:
        if not isinstance(raw, list):
            self.problem("accounts must be a list")
            return ()
        accounts, seen = [], set()
        for index, item in enumerate(raw):
            where = f"accounts[{index}]"
            data = self.mapping(item, where)
            handle = str(data.get("handle", "")).lower()
            if not HANDLE.match(handle):
                self.problem(f"{where} needs a handle like name.bsky.social, not {data.get('handle')!r}")
                continue
            if handle in seen:
                self.problem(f"{where} repeats the handle {handle!r}")
            seen.add(handle)
            values = self.scalars(BlueskyAccountSpec, data, where, skip={"handle"})
            if values.get("status", "active") not in STATUSES:
                self.problem(f"{where}.status must be one of {', '.join(STATUSES)}")
                values.pop("status")
            if values.get("posts", 0) < 0 or values.get("post_interval_seconds", 1) <= 0:
                self.problem(f"{where}: posts must not be negative and post_interval_seconds must be above 0")
                continue
            accounts.append(BlueskyAccountSpec(handle, **values))
        return tuple(accounts)

    def script(self, raw: Any) -> tuple[ScriptEvent, ...]:
        if not isinstance(raw, list):
            self.problem("script must be a list")
            return ()
        events = []
        for index, item in enumerate(raw):
            where = f"script[{index}]"
            data = self.mapping(item, where)
            after = data.get("after_seconds")
            if not isinstance(after, (int, float)) or isinstance(after, bool) or after < 0:
                self.problem(f"{where} needs 'after_seconds' (seconds from the start, not below 0)")
                continue
            problems = check_event(data, where)
            self.problems += [f"{self.source}: {problem}" for problem in problems]
            if not problems:
                params = {key: value for key, value in data.items() if key not in ("after_seconds", "event")}
                events.append(ScriptEvent(float(after), str(data["event"]), params))
        return tuple(sorted(events, key=lambda event: event.at))


@dataclass(frozen=True)
class _RateLimit:
    limit: int = 3000
    window_seconds: float = field(default=300.0)


_SHARES = {"links", "reposts", "replies"}
_TYPE_NAMES = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false"}


def _typed(value: Any, kind: str) -> Any:
    """`value` as `kind` ("str", "int", "float" or "bool"), or None when it is not one."""
    if kind == "str":
        return value if isinstance(value, str) else None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if kind == "int":
        return int(value) if float(value).is_integer() else None
    return float(value) if value >= 0 else None
