"""Scenario: what one simulator run is made of (accounts, limits, streams, faults, script).

Loaded from YAML or a dict; every section has defaults, so `Scenario.default()` and a YAML file
holding only `seed: 7` both give a working simulator. Unknown keys are errors naming the key and,
for YAML, its line. The reference is docs/simulator.md.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from sfm_archiver.errors import ScenarioError
from sfm_archiver.simulator.wire import WIRE_STYLES
from sfm_archiver.timeutil import parse_timestamp, rfc3339_ms
from sfm_archiver.yamlsource import YamlSyntaxError, load_located

DEFAULT_LIMITS = {
    "users_by_username": 300, "users_by": 300, "users_id": 300, "users": 300,
    "user_tweets": 1500, "search_stream": 50, "sample_stream": 50, "rules_get": 450, "rules_post": 100,
}
ENDPOINTS = tuple(DEFAULT_LIMITS)
LIMIT_ALIASES = {"users_lookup": ("users_by_username", "users_by", "users_id", "users")}
DEFAULT_WINDOW_SECONDS = 900.0
WINDOW_KINDS = ("rolling", "fixed")  # rolling: a window starts with the first call after the last one ended
LINK_BEHAVIOURS = ("chain", "end", "loop", "head405", "slow", "hang")
STREAM_KINDS = ("search", "sample")

FAULT_KEYS = ("error_rate", "error_status", "latency_ms", "endpoint_latency_ms", "truncate_rate",
              "malformed_rate", "endpoints")

# action -> (required keys, optional keys)
ACTIONS: dict[str, tuple[frozenset, frozenset]] = {
    "rename": (frozenset({"account", "username"}), frozenset()),
    "protect": (frozenset({"account"}), frozenset()),
    "unprotect": (frozenset({"account"}), frozenset()),
    "suspend": (frozenset({"account"}), frozenset()),
    "unsuspend": (frozenset({"account"}), frozenset()),
    "deactivate": (frozenset({"account"}), frozenset()),
    "reactivate": (frozenset({"account"}), frozenset()),
    "reassign_username": (frozenset({"username"}),
                          frozenset({"id", "name", "tweets", "posts_per_second"})),
    "post": (frozenset({"account"}), frozenset({"count"})),
    "stream_disconnect": (frozenset(), frozenset({"kind"})),
    "stream_drop": (frozenset(), frozenset({"kind"})),
    "stream_stall": (frozenset({"seconds"}), frozenset({"kind"})),
    "usage_cap": (frozenset(), frozenset({"token"})),
    "lift_usage_cap": (frozenset(), frozenset({"token"})),
    "faults": (frozenset(), frozenset(FAULT_KEYS)),
}


@dataclass(frozen=True)
class AccountSpec:
    id: str
    username: str
    name: str = ""
    protected: bool = False
    suspended: bool = False
    deactivated: bool = False
    tweets: int = 50
    posts_per_second: float = 0.0
    tweet_interval_seconds: float = field(default=3600.0, metadata={"positive": True})
    description: str = ""
    location: str = ""
    verified: bool = False


@dataclass(frozen=True)
class EndpointLimit:
    limit: int
    window_seconds: float
    windows: str = "rolling"  # or "fixed": windows on a grid of window_seconds from the Unix epoch
    early_reset_seconds: float = 0.0  # a window really ends this long before the reset it announces


@dataclass(frozen=True)
class UsageCapSpec:
    calls: int | None = None
    period_seconds: float = field(default=30 * 86400.0, metadata={"positive": True})


@dataclass(frozen=True)
class StreamSpec:
    messages_per_second: float = 5.0
    message_bytes: int = 3000
    keepalive_seconds: float = field(default=20.0, metadata={"positive": True})
    multi_match_probability: float = field(default=0.2, metadata={"probability": True})
    max_connections: int = 1


@dataclass(frozen=True)
class FaultSpec:
    error_rate: float = field(default=0.0, metadata={"probability": True})
    error_status: int = 503
    latency_ms: float = 0.0
    endpoint_latency_ms: Mapping[str, float] = field(default_factory=dict)
    truncate_rate: float = field(default=0.0, metadata={"probability": True})
    malformed_rate: float = field(default=0.0, metadata={"probability": True})
    endpoints: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkSpec:
    probability: float = field(default=0.5, metadata={"probability": True})
    mix: Mapping[str, float] = field(default_factory=lambda: {
        "chain": 85.0, "end": 6.0, "loop": 3.0, "head405": 5.0, "slow": 1.0, "hang": 0.0})


@dataclass(frozen=True)
class ShortenerSpec:
    latency_ms: float = 0.0


@dataclass(frozen=True)
class ScriptEvent:
    at: float
    action: str
    params: Mapping[str, Any]


DEFAULT_ACCOUNTS = (
    AccountSpec("100001", "sfm_alpha", "Alpha Library", tweets=120, description="News from the stacks"),
    AccountSpec("100002", "sfm_beta", "Beta Archive", tweets=3500, tweet_interval_seconds=600),
    AccountSpec("100003", "sfm_locked", "Locked Account", protected=True, tweets=30),
    AccountSpec("100004", "sfm_banned", "Banned Account", suspended=True, tweets=30),
    AccountSpec("100005", "sfm_gone", "Gone Account", deactivated=True, tweets=30),
)


@dataclass(frozen=True)
class Scenario:
    seed: int = 1
    epoch: str = "2026-11-01T00:00:00Z"
    tokens: tuple[str, ...] = ()
    accounts: tuple[AccountSpec, ...] = DEFAULT_ACCOUNTS
    rate_limits: Mapping[str, EndpointLimit] = field(default_factory=lambda: {
        name: EndpointLimit(limit, DEFAULT_WINDOW_SECONDS) for name, limit in DEFAULT_LIMITS.items()})
    usage_cap: UsageCapSpec = UsageCapSpec()
    streams: StreamSpec = StreamSpec()
    faults: FaultSpec = FaultSpec()
    links: LinkSpec = LinkSpec()
    shortener: ShortenerSpec = ShortenerSpec()
    clock_skew_seconds: float = 0.0
    wire: str = "compact"  # "variant": legal JSON unlike X's bytes (see simulator/wire.py)
    long_posts: float = field(default=0.05, metadata={"probability": True})  # share of posts > 280 characters
    script: tuple[ScriptEvent, ...] = ()

    @classmethod
    def default(cls) -> Scenario:
        return cls()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, source: str = "scenario") -> Scenario:
        """Build from plain data; raises ScenarioError listing every problem."""
        parser = _Parser(source)
        scenario = parser.scenario(data or {})
        if parser.problems:
            raise ScenarioError(parser.problems)
        return scenario

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike) -> Scenario:
        """Load a YAML file (a Path, or a str naming an existing file) or YAML text."""
        source, text = _read_source(path_or_text)
        try:
            document, duplicates = load_located(text)
        except YamlSyntaxError as error:
            raise ScenarioError([f"{source}:{error.line}: {error}"]) from error
        if duplicates:
            raise ScenarioError([f"{source}:{line}: {message}" for line, message in duplicates])
        if document is not None and not isinstance(document, dict):
            raise ScenarioError([f"{source}: the scenario must be a mapping"])
        return cls.from_dict(document, source=source)

    def epoch_ms(self) -> int:
        return int(parse_timestamp(self.epoch).timestamp() * 1000)


def parse_faults(data: Mapping[str, Any], base: FaultSpec, source: str = "faults") -> FaultSpec:
    """Merge fault settings (as given live to the admin endpoint) into `base`."""
    parser = _Parser(source)
    merged = parser.section(FaultSpec, data, "faults", base=base)
    parser.check_endpoints(merged.endpoints, "faults.endpoints")
    parser.check_endpoints(merged.endpoint_latency_ms, "faults.endpoint_latency_ms")
    if parser.problems:
        raise ScenarioError(parser.problems)
    return merged


def check_event(event: Mapping[str, Any], where: str = "event") -> list[str]:
    """Problems of one lifecycle event (`action` plus its keys, `at` excluded)."""
    action = event.get("action")
    if action not in ACTIONS:
        return [f"{where}: unknown action {action!r} (known: {', '.join(ACTIONS)})"]
    required, optional = ACTIONS[action]
    keys = set(event) - {"action", "at"}
    problems = [f"{where}: unknown key {key!r} for action {action!r}" for key in sorted(keys - required - optional)]
    problems += [f"{where}: action {action!r} needs {key!r}" for key in sorted(required - keys)]
    if "kind" in event and event["kind"] not in STREAM_KINDS:
        problems.append(f"{where}: kind must be one of {', '.join(STREAM_KINDS)}")
    if action == "faults" and not problems:
        try:
            parse_faults({k: v for k, v in event.items() if k != "action" and k != "at"}, FaultSpec())
        except ScenarioError as error:
            problems += [f"{where}: {problem}" for problem in error.problems]
    return problems


def _read_source(path_or_text: str | os.PathLike) -> tuple[str, str]:
    text = str(path_or_text)
    if isinstance(path_or_text, os.PathLike) or ("\n" not in text and (
            os.path.isfile(text) or text.endswith((".yaml", ".yml")))):
        path = Path(path_or_text)
        try:
            return str(path), path.read_text(encoding="utf-8")
        except OSError as error:
            raise ScenarioError([f"{path}: cannot read the scenario: {error.strerror}"]) from error
    return "scenario", text


class _Parser:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, source: str):
        self.source = source
        self.problems: list[str] = []

    def problem(self, container: Any, key: Any, message: str) -> None:
        line_of = getattr(container, "line_of", None)
        prefix = f"{self.source}:{line_of(key)}" if line_of else self.source
        self.problems.append(f"{prefix}: {message}")

    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        names = [f.name for f in dataclasses.fields(Scenario)]
        for key in data:
            if key not in names:
                self.problem(data, key, f"unknown key {key!r} (known: {', '.join(names)})")
        kwargs: dict[str, Any] = self.scalars(Scenario, data, "scenario")
        if "epoch" in kwargs:
            try:
                parse_timestamp(kwargs["epoch"])
            except ValueError:
                self.problem(data, "epoch", f"epoch is not a timestamp: {kwargs['epoch']!r}")
        if kwargs.get("wire", "compact") not in WIRE_STYLES:
            self.problem(data, "wire", f"wire must be one of {', '.join(WIRE_STYLES)}, not {kwargs.pop('wire')!r}")
        if "tokens" in data:
            kwargs["tokens"] = self.strings(data, "tokens")
        if "accounts" in data:
            kwargs["accounts"] = self.accounts(data["accounts"])
        if "rate_limits" in data:
            kwargs["rate_limits"] = self.rate_limits(data["rate_limits"])
        for key, cls in (("usage_cap", UsageCapSpec), ("streams", StreamSpec), ("links", LinkSpec),
                         ("shortener", ShortenerSpec), ("faults", FaultSpec)):
            if key in data:
                kwargs[key] = self.section(cls, data[key], key)
        if "faults" in kwargs:
            self.check_endpoints(kwargs["faults"].endpoints, "faults.endpoints")
            self.check_endpoints(kwargs["faults"].endpoint_latency_ms, "faults.endpoint_latency_ms")
        if "links" in kwargs:
            self.check_links(kwargs["links"])
        if "script" in data:
            kwargs["script"] = self.script(data["script"])
        return Scenario(**kwargs)

    def scalars(self, cls: type, data: Mapping[str, Any], where: str) -> dict[str, Any]:
        """Typed values of the scalar fields of `cls` present in `data`."""
        out: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            if spec.name in data and spec.type in _SCALARS:
                value = self.scalar(data, spec, where)
                if value is not _INVALID:
                    out[spec.name] = value
        return out

    def scalar(self, data: Mapping[str, Any], spec: dataclasses.Field, where: str) -> Any:
        value, kind = data[spec.name], spec.type
        label = f"{where}.{spec.name}"
        if value is None and kind.endswith("| None"):
            return None
        base = kind.removesuffix(" | None")
        if base == "str":
            if isinstance(value, datetime):  # YAML reads unquoted timestamps as datetimes
                return rfc3339_ms(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
            if isinstance(value, (str, int)) and not isinstance(value, bool):
                return str(value)
        elif base == "bool":
            if isinstance(value, bool):
                return value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and (
                base == "float" or float(value).is_integer()):
            number = int(value) if base == "int" else float(value)
            if number < 0 and spec.name != "clock_skew_seconds":
                self.problem(data, spec.name, f"{label} must not be negative")
            elif spec.metadata.get("probability") and number > 1:
                self.problem(data, spec.name, f"{label} is a probability between 0 and 1")
            elif spec.metadata.get("positive") and number == 0:
                self.problem(data, spec.name, f"{label} must be more than 0")
            else:
                return number
            return _INVALID
        self.problem(data, spec.name, f"{label} must be {_TYPE_NAMES[base]}, not {value!r}")
        return _INVALID

    def mapping(self, raw: Any, where: str, container: Any = None, key: Any = None) -> Mapping[str, Any]:
        if isinstance(raw, dict):
            return raw
        if raw is not None:
            self.problem(container if container is not None else {}, key, f"{where} must be a mapping")
        return {}

    def section(self, cls: type, raw: Any, where: str, base: Any = None) -> Any:
        data = self.mapping(raw, where)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                self.problem(data, key, f"unknown key {key!r} in {where} (known: {', '.join(names)})")
        kwargs = self.scalars(cls, data, where)
        for spec in dataclasses.fields(cls):
            if spec.name in data and spec.type not in _SCALARS:
                kwargs[spec.name] = self.compound(data, spec.name, f"{where}.{spec.name}")
        return dataclasses.replace(base, **kwargs) if base is not None else cls(**kwargs)

    def compound(self, data: Mapping[str, Any], key: str, label: str) -> Any:
        """Mappings of names to numbers, or lists of names (the non-scalar section fields)."""
        value = data[key]
        if isinstance(value, dict):
            numbers = {}
            for name, number in value.items():
                if isinstance(number, (int, float)) and not isinstance(number, bool) and number >= 0:
                    numbers[str(name)] = float(number)
                else:
                    self.problem(value, name, f"{label}.{name} must be a number not below 0")
            return numbers
        if isinstance(value, list) and key == "endpoints":
            return tuple(str(item) for item in value)
        self.problem(data, key, f"{label} has the wrong type: {value!r}")
        return {} if key != "endpoints" else ()

    def strings(self, data: Mapping[str, Any], key: str) -> tuple[str, ...]:
        value = data[key]
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            self.problem(data, key, f"{key} must be a list of non-empty strings")
            return ()
        return tuple(value)

    def accounts(self, raw: Any) -> tuple[AccountSpec, ...]:
        if not isinstance(raw, list):
            self.problem({}, None, "accounts must be a list")
            return ()
        accounts: list[AccountSpec] = []
        seen_ids: set[str] = set()
        seen_names: set[str] = set()
        for index, item in enumerate(raw):
            where = f"accounts[{index}]"
            data = self.mapping(item, where, raw, index)
            missing = [key for key in ("id", "username") if key not in data]
            if missing:
                self.problem(raw, index, f"{where} needs {' and '.join(missing)}")
                continue
            spec = self.section(AccountSpec, data, where, base=AccountSpec(str(data["id"]), str(data["username"])))
            if not spec.id.isdigit():
                self.problem(data, "id", f"{where}.id must be digits, not {spec.id!r}")
            if spec.id in seen_ids or spec.username.lower() in seen_names:
                self.problem(raw, index, f"{where} repeats the id or username of an earlier account")
            seen_ids.add(spec.id)
            seen_names.add(spec.username.lower())
            accounts.append(spec)
        return tuple(accounts)

    def rate_limits(self, raw: Any) -> dict[str, EndpointLimit]:
        data = self.mapping(raw, "rate_limits")
        window = data.get("window_seconds", DEFAULT_WINDOW_SECONDS)
        if not _is_positive(window):
            self.problem(data, "window_seconds", "rate_limits.window_seconds must be a number above 0")
            window = DEFAULT_WINDOW_SECONDS
        base = self.window_shape(data, EndpointLimit(1, float(window)), "rate_limits")
        limits = {name: dataclasses.replace(base, limit=limit) for name, limit in DEFAULT_LIMITS.items()}
        for key in data:
            if key in _SHAPE_KEYS:
                continue
            targets = LIMIT_ALIASES.get(key, (key,) if key in DEFAULT_LIMITS else ())
            if not targets:
                known = ", ".join((*_SHAPE_KEYS, *LIMIT_ALIASES, *DEFAULT_LIMITS))
                self.problem(data, key, f"unknown key {key!r} in rate_limits (known: {known})")
                continue
            limit = self.endpoint_limit(data, key, base)
            for target in targets:
                if limit is not None:
                    limits[target] = limit
        return limits

    def window_shape(self, data: Mapping[str, Any], base: EndpointLimit, where: str) -> EndpointLimit:
        """`windows` and `early_reset_seconds` of a rate_limits mapping, over `base`."""
        shape = {}
        if "windows" in data:
            if data["windows"] in WINDOW_KINDS:
                shape["windows"] = data["windows"]
            else:
                self.problem(data, "windows", f"{where}.windows must be one of {', '.join(WINDOW_KINDS)}, "
                                              f"not {data['windows']!r}")
        if "early_reset_seconds" in data:
            early = data["early_reset_seconds"]
            if isinstance(early, (int, float)) and not isinstance(early, bool) and 0 <= early < base.window_seconds:
                shape["early_reset_seconds"] = float(early)
            else:
                self.problem(data, "early_reset_seconds",
                             f"{where}.early_reset_seconds must be a number from 0 to below the window")
        return dataclasses.replace(base, **shape)

    def endpoint_limit(self, data: Mapping[str, Any], key: str, base: EndpointLimit) -> EndpointLimit | None:
        value, window = data[key], base.window_seconds
        if isinstance(value, dict):
            known = ("limit", *_SHAPE_KEYS)
            for name in sorted(set(value) - set(known)):
                self.problem(value, name, f"unknown key {name!r} in rate_limits.{key} (known: {', '.join(known)})")
            limit, window = value.get("limit"), value.get("window_seconds", window)
        else:
            limit = value
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1 or not _is_positive(window):
            self.problem(data, key, f"rate_limits.{key} needs a limit of at least 1 and a window above 0")
            return None
        sized = dataclasses.replace(base, limit=limit, window_seconds=float(window))
        return self.window_shape(value, sized, f"rate_limits.{key}") if isinstance(value, dict) else sized

    def check_endpoints(self, names: Any, label: str) -> None:
        for name in names:
            if name not in DEFAULT_LIMITS:
                self.problems.append(f"{self.source}: {label}: unknown endpoint {name!r} "
                                     f"(known: {', '.join(DEFAULT_LIMITS)})")

    def check_links(self, links: LinkSpec) -> None:
        for name in links.mix:
            if name not in LINK_BEHAVIOURS:
                self.problems.append(f"{self.source}: links.mix: unknown behaviour {name!r} "
                                     f"(known: {', '.join(LINK_BEHAVIOURS)})")
        if links.mix and not any(links.mix.values()):
            self.problems.append(f"{self.source}: links.mix needs at least one weight above 0")

    def script(self, raw: Any) -> tuple[ScriptEvent, ...]:
        if not isinstance(raw, list):
            self.problem({}, None, "script must be a list")
            return ()
        events = []
        for index, item in enumerate(raw):
            where = f"script[{index}]"
            data = self.mapping(item, where, raw, index)
            at = data.get("at")
            if not isinstance(at, (int, float)) or isinstance(at, bool) or at < 0:
                self.problem(raw, index, f"{where} needs 'at' (seconds from the start, not below 0)")
                continue
            problems = check_event(data, where)
            for message in problems:
                self.problem(raw, index, message)
            if not problems:
                params = {k: v for k, v in data.items() if k not in ("at", "action")}
                events.append(ScriptEvent(float(at), str(data["action"]), params))
        return tuple(sorted(events, key=lambda event: event.at))


_SHAPE_KEYS = ("window_seconds", "windows", "early_reset_seconds")
_SCALARS = {"str", "bool", "int", "float", "int | None", "float | None"}
_TYPE_NAMES = {"str": "a string", "bool": "true or false", "int": "a whole number", "float": "a number"}
_INVALID = object()


def _is_positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
