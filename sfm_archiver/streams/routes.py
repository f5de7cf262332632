"""Which collections a filtered-stream message belongs to, read from its `matching_rules`.

A rule's tag is `<collection>:<tag>`, or `a:x|b:y` for a value several collections share
(streams/rules.py). The answer must be what a full `json.loads` of the message gives, for
every legal serialisation of it. The fast path reads X's compact form from the end of the line,
`,"matching_rules":[...]}`, and decodes only that array; whenever the line is not in that form
(other spacing, key order, an array that does not decode alone) the whole line is parsed.

Why the fast path is exact for valid JSON: `,"` cannot occur inside a string (the `"` would end
it and leave `matching_rules` bare), so `,"matching_rules":` is always a key; when the bytes
from its `[` to the line's last `}` decode as one array, that array is its whole value and the
`}` closes the object holding it, which is therefore the message itself; being the last such
key, it is also the one `json.loads` keeps when a key is repeated.
"""

from __future__ import annotations

import json
from typing import Any

RULES_KEY = b',"matching_rules":['
_ARRAY_AT = len(RULES_KEY) - 1
_CACHE_LIMIT = 4096


def collections_of_tag(tag: str) -> list[str]:
    """`climate:cc` → [climate]; a rule shared by collections has `a:x|b:y` → [a, b]."""
    names = []
    for piece in tag.split("|"):
        name, colon, _ = piece.partition(":")
        if colon and name and name not in names:
            names.append(name)
    return names


def collections_of_rules(rules: Any) -> tuple[str, ...]:
    """The collections named by the tags of a `matching_rules` value, in order, once each."""
    names: list[str] = []
    for rule in rules if isinstance(rules, list) else ():
        tag = rule.get("tag") if isinstance(rule, dict) else None
        for name in collections_of_tag(tag if isinstance(tag, str) else ""):
            if name not in names:
                names.append(name)
    return tuple(names)


def routes_of_document(document: Any) -> tuple[str, ...] | None:
    """A parsed message's collections; None when it has no `matching_rules` (an error message)."""
    if not isinstance(document, dict) or "matching_rules" not in document:
        return None
    return collections_of_rules(document["matching_rules"])


def parsed_routes(line: bytes) -> tuple[str, ...] | None:
    """The slow path, always right: the whole line parsed. Not JSON: None, like an error message."""
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return routes_of_document(document)


class RouteReader:
    """`routes(line)`: the fast path with a cache of rule arrays, else `parsed_routes`."""

    def __init__(self, cache_limit: int = _CACHE_LIMIT) -> None:
        self._cache: dict[bytes, tuple[str, ...]] = {}
        self._cache_limit = cache_limit

    def routes(self, line: bytes) -> tuple[str, ...] | None:
        end = len(line) - 1 if line.endswith(b"\r") else len(line)
        if line.endswith(b"]}", 0, end):
            at = line.rfind(RULES_KEY, 0, end)
            if at >= 0:
                array = line[at + _ARRAY_AT:end - 1]
                found = self._cache.get(array)
                if found is None:
                    found = _lone_array_routes(array)
                    if found is not None:
                        if len(self._cache) >= self._cache_limit:
                            self._cache.clear()
                        self._cache[array] = found
                if found is not None:
                    return found
        return parsed_routes(line)


def _lone_array_routes(array: bytes) -> tuple[str, ...] | None:
    """The collections of `array` when it is exactly one JSON array, else None (not sure)."""
    try:
        rules = json.loads(array)
    except ValueError:
        return None
    return collections_of_rules(rules) if isinstance(rules, list) else None
