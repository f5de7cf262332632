"""Helpers for the timeline and account tests: configs against a simulator, reading captures back."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from sfm_archiver.config import Config, load_config_text
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.platforms.x import XClient
from sfm_archiver.ratelimit import RateLimiter
from sfm_archiver.storage import reader
from tests.polling import wait_for  # noqa: F401  (re-exported for the tests here)

TOKEN = "timeline-test-token"
COLLECTION = "tl"


def write_config(tmp_path: Path, base_url: str, accounts: list[Any], *, name: str = COLLECTION,
                 workers: int = 4, max_retries: int = 2, backfill: int = 3200, **x: Any) -> Path:
    """A config file with one timeline collection; returns its path (edit and reload to change it)."""
    document = {
        "paths": {"archive": str(tmp_path / "archive"), "state": str(tmp_path / "state"),
                  "outbox": str(tmp_path / "outbox")},
        "x": {"bearer_token": TOKEN, "api_base_url": base_url, "workers": workers, "max_retries": max_retries, **x},
        "collections": [{"name": name, "type": "timeline", "accounts": accounts, "backfill": backfill}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def load(path: Path) -> Config:
    return load_config_text(path.read_text(), path)


def context(path: Path, **kwargs: Any) -> JobContext:
    return JobContext.open(load(path), **kwargs)


def fast_client(config: Config, backoff: float = 0.01, limiter: RateLimiter | None = None) -> XClient:
    """A client whose retries back off in milliseconds (the tests' scaled time)."""
    return XClient(config.x, limiter=limiter or RateLimiter(), backoff_base=backoff, backoff_cap=0.05)


def captured(archive: Path, collection: str = COLLECTION, kind: str = "timeline") -> list[dict]:
    """Every capture line of a collection, oldest file first."""
    problems: list[Any] = []
    records = [record for path in reader.capture_files(archive, collection, [kind])
               for _, record in reader.read_records(path, problems.append)]
    assert not problems, problems
    return records


def captured_ids(archive: Path, collection: str = COLLECTION) -> Counter:
    """How many times each tweet id was captured."""
    return Counter(post["id"] for page in captured(archive, collection) for post in page.get("data", []))


def captured_by_account(archive: Path, collection: str = COLLECTION) -> dict[str, set[str]]:
    by_account: dict[str, set[str]] = {}
    for page in captured(archive, collection):
        account = page["__sfm"]["account"]["id"]
        by_account.setdefault(account, set()).update(post["id"] for post in page.get("data", []))
    return by_account


def published_ids(simulator, account_id: str) -> set[str]:
    return {post["id"] for post in simulator.published()["posts"][account_id]}


def events(ctx: JobContext) -> list[tuple]:
    """(account, event, from, to) of every ledger record (the snapshot of `added` reduced to its status)."""
    out = []
    for record in ctx.ledger.records():
        to = record["to"]
        if record["event"] == "added":
            to = (to["username"], to["status"])
        out.append((record["account_id"], record["event"], record["from"], to))
    return out



