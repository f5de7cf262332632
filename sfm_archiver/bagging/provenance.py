"""`data/provenance/` of a bag: how the period's captures came to be.

- `collection.json`: the collection's configuration (no secrets) as it stands at bagging time
- `accounts.json`: the collection's accounts (also removed ones) as the state store knows them
- `ledger.jsonl`: ledger events of those accounts up to the period end (hash-chain fields kept)
- `runs.json`: the collection's job runs that started within the period
- `bag.json`: what this bag holds (period, file count, whether the collection found nothing)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sfm_archiver import SOFTWARE
from sfm_archiver.bagging.tagfiles import write_text
from sfm_archiver.config import Config, collection_public_dict
from sfm_archiver.ledger import Ledger
from sfm_archiver.state import StateStore
from sfm_archiver.storage.layout import Period
from sfm_archiver.timeutil import rfc3339_ms

PROVENANCE_DIR = "provenance"
BAG_JOB = "bag"


@dataclass(frozen=True)
class ProvenanceSources:
    config: Config
    store: StateStore
    ledger: Ledger


def harvest_runs(store: StateStore, collection: str, period: Period) -> list[dict]:
    """Runs of the collection that started in the period, without the bagger's own runs."""
    return [
        run
        for run in store.runs(collection=collection, start=period.start, end=period.end)
        if run["job"] != BAG_JOB
    ]


def collection_config(config: Config, collection: str) -> dict:
    try:
        return collection_public_dict(config.collection(collection))
    except KeyError:
        return {"name": collection, "note": "not in the configuration at bagging time"}


def write_provenance(
    sources: ProvenanceSources, collection: str, period: Period, folder: Path, capture_files: int, bag_name: str
) -> list[Path]:
    """Write the provenance files into `folder` (created); return them."""
    folder.mkdir(parents=True, exist_ok=True)
    members = sources.store.memberships(collection, include_removed=True)
    account_ids = {m["account_id"] for m in members}
    events = sources.ledger.history(account_ids, until=period.end) if account_ids else []
    runs = harvest_runs(sources.store, collection, period)
    documents = {
        "collection.json": _json(collection_config(sources.config, collection)),
        "accounts.json": _json(members),
        "ledger.jsonl": "".join(json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events),
        "runs.json": _json(runs),
        "bag.json": _json(
            {
                "bag": bag_name,
                "collection": collection,
                "period": period.unit,
                "period_start": rfc3339_ms(period.start),
                "period_end": rfc3339_ms(period.end),
                "capture_files": capture_files,
                "empty": capture_files == 0,
                "runs": len(runs),
                "software": SOFTWARE,
            }
        ),
    }
    written = []
    for name, text in documents.items():
        write_text(folder / name, text)
        written.append(folder / name)
    return written


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"
