"""Account lifecycle events worth telling, read from the ledger since the last evaluation.

The ledger is append-only, so a byte offset (kept in the state store) is a safe cursor: each
evaluation reads only the lines appended since, and a restart resumes where it stopped. Events
are batched per run that observed them (one message for a run that saw 30 suspensions).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from sfm_archiver.ledger import LEDGER_FILE
from sfm_archiver.notify.alerts import Notice

NOTABLE = {
    "suspended": "suspended", "protected": "protected", "deactivated": "deactivated",
    "username_reassigned": "username reassigned to another account", "renamed": "renamed",
    "unsuspended": "unsuspended (harvesting resumes)", "unprotected": "unprotected (harvesting resumes)",
    "reactivated": "reactivated (harvesting resumes)",
}
CURSOR = "ledger_offset"
MAX_LINES_PER_NOTICE = 50


def read_new(state_dir: Path, offset: int | None) -> tuple[list[dict], int]:
    """Complete ledger records after `offset` and the new offset (None: start at the end, tell nothing old)."""
    path = Path(state_dir) / LEDGER_FILE
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [], 0
    if offset is None or offset > size:
        return [], size
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size - offset)
    complete = data[: data.rfind(b"\n") + 1]
    records = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return records, offset + len(complete)


def notices(records: list[dict], username: Callable[[str], str | None] = lambda account_id: None) -> list[Notice]:
    """One notice per observing run, listing its notable events (`username`: a name for an id)."""
    by_run: dict[str, list[dict]] = {}
    for record in records:
        if record.get("event") in NOTABLE:
            observed = record.get("observed_by")
            run = f"{observed.get('job')} run {observed.get('run')}" if isinstance(observed, dict) else str(observed)
            by_run.setdefault(run, []).append(record)
    found = []
    for run, events in by_run.items():
        lines = [_describe(record, username) for record in events[:MAX_LINES_PER_NOTICE]]
        if len(events) > MAX_LINES_PER_NOTICE:
            lines.append(f"... and {len(events) - MAX_LINES_PER_NOTICE} more (sfm-archiver ledger show)")
        title = f"{len(events)} account changes seen by {run}" if len(events) > 1 else f"account {lines[0]}"
        found.append(Notice("event", title, "\n".join(lines)))
    return found


def _describe(record: dict, username: Callable[[str], str | None]) -> str:
    account_id = str(record.get("account_id"))
    if record.get("event") == "renamed":
        return f"{account_id} renamed @{record.get('from')} -> @{record.get('to')} at {record.get('at')}"
    name = username(account_id)
    who = f"{account_id} (@{name})" if name else account_id
    return f"{who} {NOTABLE[record['event']]} at {record.get('at')}"
