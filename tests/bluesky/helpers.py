"""Configs of Bluesky collections against a simulator, and the captures read back with gzip + json.

The oracle is what the simulator published (`feed_uris`, `handle_of`), and the captures as
plain JSON: an item is named as the simulator names it (a repost by its repost record's URI).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from sfm_archiver.config import load_config_text
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.storage import reader

COLLECTION = "bsky"


def write_config(tmp_path: Path, appview_url: str, accounts: list[Any], *, name: str = COLLECTION,
                 backfill: int = 3200, extra: dict | None = None, collections: list[dict] | None = None) -> Path:
    document: dict[str, Any] = {
        "paths": {"archive": str(tmp_path / "archive"), "state": str(tmp_path / "state"),
                  "outbox": str(tmp_path / "outbox")},
        "bluesky": {"appview_url": appview_url},
        "collections": [{"name": name, "platform": "bluesky", "type": "timeline", "accounts": accounts,
                         "backfill": backfill}] + (collections or []),
        **(extra or {}),
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def context(path: Path, **kwargs: Any) -> JobContext:
    return JobContext.open(load_config_text(path.read_text(), path), **kwargs)


def lines(archive: Path, collection: str = COLLECTION, kind: str = "timeline") -> list[dict]:
    """Every capture line of a collection's files of `kind`, oldest first, parsed with json.loads."""
    out = []
    for path in reader.capture_files(archive, collection, [kind]):
        with gzip.open(path, "rb") as handle:
            out.extend(json.loads(line) for line in handle)
    return sorted(out, key=lambda line: line["__sfm"]["captured_at"])  # files of one second: any order


def item_name(item: dict) -> str:
    reason = item.get("reason") or {}
    return reason["uri"] if reason.get("$type") == "app.bsky.feed.defs#reasonRepost" else item["post"]["uri"]


def captured(archive: Path, collection: str = COLLECTION) -> dict[str, Counter]:
    """How many times each feed item was captured, by the account whose page held it."""
    by_account: dict[str, Counter] = {}
    for line in lines(archive, collection):
        account = line["__sfm"]["account"]["id"]
        by_account.setdefault(account, Counter()).update(item_name(item) for item in line["feed"])
    return by_account


def assert_each_once(archive: Path, sim, dids: list[str], also: dict[str, set[str]] | None = None) -> None:
    """Every item the simulator's feeds hold now (plus `also`: items deleted since) was captured once."""
    by_account = captured(archive)
    for did in dids:
        counts = by_account.get(did, Counter())
        assert [uri for uri, n in counts.items() if n > 1] == [], did
        assert set(counts) == set(sim.feed_uris(did)) | (also or {}).get(did, set()), did


def ledger_events(ctx: JobContext) -> list[tuple]:
    """(account, event, from, to) of every ledger record but `added`."""
    return [(r["account_id"], r["event"], r["from"], r["to"]) for r in ctx.ledger.records() if r["event"] != "added"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sfm_archiver", *args], capture_output=True, text=True,
                          timeout=timeout)
