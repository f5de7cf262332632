"""Filtered-stream rules kept equal to the configuration (tags `<collection>:<tag>`).

The server holds one rule set per app, shared by every filter_stream collection. A sync deletes
what the configuration no longer has, then adds what is missing; a rule X refuses (invalid, or
a duplicate) is reported with its text and the collections that asked for it, and the other
rules are applied all the same. A value used by several collections becomes one rule whose tag
names each of them (`a:x|b:y`), since X keeps only one rule per value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Iterable

from sfm_archiver.config import Collection
from sfm_archiver.platforms.x_stream import RulesClient, describe_rule_problem, rule_problems
from sfm_archiver.streams.connection import collections_of_tag

log = logging.getLogger(__name__)


@dataclass
class RuleProblem:
    value: str
    collections: list[str]
    message: str


@dataclass
class RulesSync:
    added: list[dict] = field(default_factory=list)
    deleted: list[dict] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    active: list[dict] = field(default_factory=list)


def desired_rules(collections: Iterable[Collection]) -> dict[str, str]:
    """value → tag for every rule of the filter_stream collections."""
    tags: dict[str, list[str]] = {}
    for collection in collections:
        if collection.type != "filter_stream":
            continue
        for rule in collection.rules:
            tag = f"{collection.name}:{rule.tag}"
            if tag not in tags.setdefault(rule.value, []):
                tags[rule.value].append(tag)
    return {value: "|".join(sorted(parts)) for value, parts in tags.items()}


def plan(current: list[dict], desired: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """(rules to delete, rules to add) to make `current` equal to `desired`."""
    keep, delete = set(), []
    for rule in current:
        value, tag = rule.get("value"), rule.get("tag") or ""
        if desired.get(value) == tag and value not in keep:
            keep.add(value)
        else:
            delete.append(rule)
    add = [{"value": value, "tag": tag} for value, tag in desired.items() if value not in keep]
    return delete, add


def sync_rules(client: RulesClient, desired: dict[str, str]) -> RulesSync:
    """Make the server's rules equal to `desired`; raises StreamFailure when X cannot be reached."""
    result = RulesSync()
    current = client.list()
    delete, add = plan(current, desired)
    if delete:
        client.delete([str(rule["id"]) for rule in delete])
        result.deleted = delete
    if add:
        result.added, problems = _add(client, add)
        result.problems = [
            RuleProblem(problem.get("value", ""), collections_of_tag(desired.get(problem.get("value"), "")),
                        describe_rule_problem(problem))
            for problem in problems
        ]
    result.active = [rule for rule in current if rule not in delete] + result.added
    for problem in result.problems:
        log.error("stream rules: %s (collections: %s)", problem.message, ", ".join(problem.collections) or "-")
    if result.added or result.deleted:
        log.info("stream rules: %d added, %d deleted, %d refused", len(result.added), len(result.deleted),
                 len(result.problems))
    return result


def _add(client: RulesClient, add: list[dict]) -> tuple[list[dict], list[dict]]:
    """Add rules; X refuses a whole request holding an invalid rule, so retry without those."""
    body = client.add(add)
    created = [rule for rule in body.get("data") or [] if isinstance(rule, dict)]
    problems = rule_problems(body)
    refused = {problem.get("value") for problem in problems}
    created_values = {rule.get("value") for rule in created}
    retry = [rule for rule in add if rule["value"] not in refused and rule["value"] not in created_values]
    if retry and problems:
        body = client.add(retry)
        created += [rule for rule in body.get("data") or [] if isinstance(rule, dict)]
        problems += rule_problems(body)
    return created, problems
