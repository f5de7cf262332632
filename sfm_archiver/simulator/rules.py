"""Filtered-stream rules: the GET/POST rules endpoints and the rule set streams match against."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable

from sfm_archiver.simulator import bodies, params
from sfm_archiver.simulator.params import InvalidRequest, Query
from sfm_archiver.simulator.tweets import format_ms, make_id

MAX_RULE_LENGTH = 1024
OPERATORS = frozenset({
    "from", "to", "url", "retweets_of", "context", "entity", "conversation_id", "bio", "bio_name",
    "bio_location", "place", "place_country", "point_radius", "bounding_box", "is", "has", "lang",
    "sample", "followers_count", "tweets_count", "following_count", "listed_count", "url_title",
    "url_description", "url_contains", "source", "in_reply_to_tweet_id", "retweets_of_tweet_id"})
_QUOTED = re.compile(r'"[^"]*"')
_OPERATOR = re.compile(r'(?:^|[\s(])-?([A-Za-z_]+):')

Result = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    id: str
    value: str
    tag: str | None

    def as_json(self, id_last: bool = False) -> dict[str, Any]:
        fields: dict[str, Any] = {"value": self.value}
        if self.tag is not None:
            fields["tag"] = self.tag
        return {**fields, "id": self.id} if id_last else {"id": self.id, **fields}


def rule_problem(value: str) -> str | None:
    """Why X would refuse this rule value, or None (a subset of X's checks, same wording style)."""
    if not value.strip():
        return "Rules must contain at least one positive term (at position 1)"
    if len(value) > MAX_RULE_LENGTH:
        return f"Rule length exceeds {MAX_RULE_LENGTH} characters"
    if value.count('"') % 2:
        return "Unbalanced quotes in the rule (at position 1)"
    unquoted = _QUOTED.sub('""', value)
    depth = 0
    for position, char in enumerate(unquoted, start=1):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return f"Unbalanced parentheses (at position {position})"
    if depth:
        return f"Unbalanced parentheses (at position {len(value)})"
    for match in _OPERATOR.finditer(unquoted):
        if match.group(1) not in OPERATORS:
            return (f"Reference to invalid operator '{match.group(1)}'. Operator is not available in current "
                    f"product or product packaging. (at position {match.start(1) + 1})")
    terms = [term for term in re.split(r"[\s()]+", unquoted) if term and term.upper() != "OR"]
    if terms and all(term.startswith("-") for term in terms):
        return "Rules must contain a non-negation term (at position 1)"
    return None


class RuleSet:
    """Thread-safe rules; `version` changes with every change so streams can refresh."""

    def __init__(self, now_ms: Callable[[], int]):
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._rules: dict[str, Rule] = {}
        self._counter = 0
        self.version = 0

    def snapshot(self) -> tuple[int, tuple[Rule, ...]]:
        with self._lock:
            return self.version, tuple(self._rules.values())

    def get(self, query: Query) -> Result:
        params.check_names(query, ("ids", "max_results", "pagination_token"))
        wanted = params.ids(query, "ids") if "ids" in query else None
        with self._lock:
            rules = [rule for rule in self._rules.values() if wanted is None or rule.id in wanted]
        meta = {"sent": format_ms(self._now_ms()), "result_count": len(rules)}
        if not rules:
            return 200, {"meta": meta}
        return 200, {"data": [rule.as_json() for rule in rules], "meta": meta}

    def post(self, query: Query, body: bytes) -> Result:
        params.check_names(query, ("dry_run", "delete_all"))
        dry_run = params.first(query, "dry_run")
        if dry_run is not None and dry_run.lower() not in ("true", "false"):
            raise InvalidRequest("dry_run", [dry_run], f"The `dry_run` query parameter value [{dry_run}] is not one of [true,false]")
        dry = dry_run is not None and dry_run.lower() == "true"
        request = _parse_body(body)
        if "add" in request:
            return self._add(_add_items(request["add"]), dry)
        return self._delete(_delete_selectors(request["delete"]), dry)

    def _add(self, items: list[tuple[str, str | None]], dry_run: bool) -> Result:
        errors, created = [], []
        problems = [rule_problem(value) for value, _ in items]
        invalid = sum(1 for problem in problems if problem)
        with self._lock:
            by_value = {rule.value: rule for rule in self._rules.values()}
            for (value, tag), problem in zip(items, problems, strict=True):
                if problem:
                    errors.append(bodies.invalid_rule(value, problem))
                elif value in by_value:
                    errors.append(bodies.duplicate_rule(value, by_value[value].id))
                elif not invalid:  # one invalid rule refuses the whole request
                    rule = Rule(self._next_id(), value, tag)
                    by_value[value] = rule
                    created.append(rule)
            if created and not dry_run:
                self._rules.update((rule.id, rule) for rule in created)
                self.version += 1
        summary = {"created": len(created), "not_created": len(items) - len(created),
                   "valid": len(items) - invalid, "invalid": invalid}
        body: dict[str, Any] = {}
        if created:
            body["data"] = [rule.as_json(id_last=True) for rule in created]
        body["meta"] = {"sent": format_ms(self._now_ms()), "summary": summary}
        if errors:
            body["errors"] = errors
        return (201 if created else 200), body

    def _delete(self, selectors: tuple[list[str], list[str]], dry_run: bool) -> Result:
        ids, values = selectors
        with self._lock:
            by_value = {rule.value: rule.id for rule in self._rules.values()}
            targets = ids + [by_value.get(value, "") for value in values]
            found = [rule_id for rule_id in targets if rule_id in self._rules]
            if found and not dry_run:
                for rule_id in found:
                    self._rules.pop(rule_id, None)
                self.version += 1
        missing = len(targets) - len(found)
        body: dict[str, Any] = {"meta": {"sent": format_ms(self._now_ms()),
                                         "summary": {"deleted": len(found), "not_deleted": missing}}}
        if missing:
            body["errors"] = [bodies.rule_not_found() for _ in range(missing)]
        return 200, body

    def _next_id(self) -> str:
        self._counter += 1
        return str(make_id(self._now_ms(), self._counter & 0xFFFFF))


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        request = json.loads(body or b"null")
    except ValueError:
        raise InvalidRequest(None, [], "Request body is not valid JSON") from None
    if not isinstance(request, dict) or len(set(request) & {"add", "delete"}) != 1 or len(request) != 1:
        raise InvalidRequest(None, [], "The request body must hold exactly one of `add` or `delete`")
    return request


def _add_items(raw: Any) -> list[tuple[str, str | None]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("add", [], "`add` must be a non-empty list of rules")
    items = []
    for rule in raw:
        if not isinstance(rule, dict) or not isinstance(rule.get("value"), str) or set(rule) - {"value", "tag"} \
                or not isinstance(rule.get("tag", ""), str):
            raise InvalidRequest("add", [json.dumps(rule)], "Each rule needs a string `value` and may have a string `tag`")
        items.append((rule["value"], rule.get("tag")))
    return items


def _delete_selectors(raw: Any) -> tuple[list[str], list[str]]:
    if not isinstance(raw, dict) or not set(raw) <= {"ids", "values"} or not raw:
        raise InvalidRequest("delete", [], "`delete` must hold `ids` or `values`")
    ids, values = raw.get("ids", []), raw.get("values", [])
    if not isinstance(ids, list) or not isinstance(values, list) or not (ids or values) \
            or not all(isinstance(item, str) for item in [*ids, *values]):
        raise InvalidRequest("delete", [], "`delete.ids` and `delete.values` must be non-empty lists of strings")
    return list(ids), list(values)
