"""Query-parameter validation that fails the way X does: HTTP 400 invalid-request bodies."""

from __future__ import annotations

import re
from typing import Iterable, Mapping

from sfm_archiver.simulator import bodies
from sfm_archiver.timeutil import parse_timestamp

Query = Mapping[str, list[str]]

ID_PATTERN = "^[0-9]{1,19}$"
USERNAME_PATTERN = "^[A-Za-z0-9_]{1,15}$"
_ID = re.compile(ID_PATTERN)
_USERNAME = re.compile(USERNAME_PATTERN)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


class InvalidRequest(Exception):
    """A request X would refuse with HTTP 400; `body` is the wire body."""

    def __init__(self, parameter: str | None, values: list[str], message: str):
        super().__init__(message)
        self.body = bodies.invalid_request(parameter, values, message)


def check_names(query: Query, allowed: Iterable[str]) -> None:
    names = sorted(allowed)
    for name in query:
        if name not in names:
            raise InvalidRequest(name, query[name], f"The query parameter [{name}] is not one of [{','.join(names)}]")


def first(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def csv(query: Query, name: str, allowed: Iterable[str] | None = None) -> list[str]:
    """Comma-separated values of `name` ([] when absent), each checked against `allowed`."""
    raw = first(query, name)
    if raw is None:
        return []
    values = raw.split(",")
    if allowed is not None:
        known = sorted(allowed)
        for value in values:
            if value not in known:
                raise InvalidRequest(name, [raw], f"The `{name}` query parameter value [{value}] is not one of "
                                                  f"[{','.join(known)}]")
    return values


def value_list(query: Query, name: str, pattern: re.Pattern, pattern_text: str) -> list[str]:
    """1 to 100 comma-separated values matching `pattern` (lookups by ids or usernames)."""
    raw = first(query, name)
    if not raw:
        raise InvalidRequest(name, [], f"The `{name}` query parameter can not be empty")
    values = raw.split(",")
    if not 1 <= len(values) <= 100:
        raise InvalidRequest(name, [raw], f"The number of values in the `{name}` query parameter list "
                                          f"[{len(values)}] is not between 1 and 100")
    for value in values:
        check_pattern(name, value, pattern, pattern_text)
    return values


def check_pattern(name: str, value: str, pattern: re.Pattern, pattern_text: str) -> str:
    if not pattern.match(value):
        raise InvalidRequest(name, [value], f"The `{name}` query parameter value [{value}] does not match {pattern_text}")
    return value


def check_id(name: str, value: str) -> str:
    return check_pattern(name, value, _ID, ID_PATTERN)


def check_username(name: str, value: str) -> str:
    return check_pattern(name, value, _USERNAME, USERNAME_PATTERN)


def ids(query: Query, name: str) -> list[str]:
    return value_list(query, name, _ID, ID_PATTERN)


def usernames(query: Query, name: str) -> list[str]:
    return value_list(query, name, _USERNAME, USERNAME_PATTERN)


def optional_id(query: Query, name: str) -> int | None:
    value = first(query, name)
    return None if value is None else int(check_id(name, value))


def integer(query: Query, name: str, low: int, high: int, default: int) -> int:
    value = first(query, name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(name, [value], f"The `{name}` query parameter value [{value}] is not between {low} and {high}")
    return int(value)


def timestamp_ms(query: Query, name: str) -> int | None:
    value = first(query, name)
    if value is None:
        return None
    if not _RFC3339.match(value):
        raise InvalidRequest(name, [value], f"Invalid '{name}':'{value}'. '{name}' must be a valid RFC 3339 timestamp.")
    return int(parse_timestamp(value).timestamp() * 1000)
