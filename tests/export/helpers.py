"""Helpers for the export tests: real harvests into a temp archive, the CLI as a process, and an
independent oracle (a plain `json`-module reading of the raw captures, nothing from the exporter)."""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import yaml

from sfm_archiver.jobs.accounts import update_usernames
from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.timeutil import utcnow
from tests.timelines.helpers import TOKEN, context, fast_client

GUARD = ("=", "+", "-", "@")


def write_config(tmp_path: Path, base_url: str, collections: dict[str, list]) -> Path:
    """A config with one timeline collection per entry of `collections` (name -> accounts)."""
    document = {
        "paths": {"archive": str(tmp_path / "archive"), "state": str(tmp_path / "state"),
                  "outbox": str(tmp_path / "outbox")},
        "x": {"bearer_token": TOKEN, "api_base_url": base_url, "workers": 2, "max_retries": 2},
        "collections": [{"name": name, "type": "timeline", "accounts": accounts}
                        for name, accounts in collections.items()],
        "bagging": {"period": "hour", "grace": "0s"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def harvest(config: Path, collection: str, hours_ago: float = 0) -> dict:
    """One timeline pass; `hours_ago` moves its clock back so that bags can be made of its hour."""
    ctx = context(config, clock=lambda: utcnow() - timedelta(hours=hours_ago))
    return harvest_timelines(ctx, collection, None, client=fast_client(ctx.config))


def rename_pass(config: Path, collection: str) -> dict:
    ctx = context(config)
    return update_usernames(ctx, collection, client=fast_client(ctx.config))


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sfm_archiver", *args], capture_output=True, text=True,
                          timeout=timeout)


# -- the oracle: raw captures read with gzip + json, nothing else ----------------------------------


def raw_captures(archive: Path, collection: str) -> list[dict]:
    """Every line of every timeline/stream capture of a collection, parsed with json.loads."""
    lines = []
    for path in sorted((archive / collection).rglob("*.jsonl.gz")):
        if "-timeline-" in path.name or "-stream-" in path.name:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                lines += [json.loads(line) for line in handle if line.strip()]
    return lines


def raw_posts(archive: Path, collection: str) -> list[dict]:
    """(id, text, author id, author username, captured_at) of every post capture."""
    out = []
    for page in raw_captures(archive, collection):
        users = {user["id"]: user for user in page.get("includes", {}).get("users", [])}
        data = page.get("data", [])
        for post in data if isinstance(data, list) else [data]:
            text = post.get("note_tweet", {}).get("text", post["text"])
            author = users.get(post["author_id"], {})
            out.append({"id": post["id"], "text": text, "author_id": post["author_id"],
                        "author.username": author.get("username"), "captured_at": page["__sfm"]["captured_at"]})
    return out


def unguard(text: str) -> str:
    """Undo the documented formula guard of CSV/TSV: one leading ' before = + - @."""
    return text[1:] if text[:1] == "'" and text[1:2] in GUARD else text


def read_csv_rows(folder: Path, ext: str = "csv") -> list[dict]:
    rows = []
    for path in sorted(folder.glob(f"*.{ext}")):
        with open(path, encoding="utf-8", newline="") as handle:
            rows += list(csv.DictReader(handle, delimiter="\t" if ext == "tsv" else ","))
    return rows


def add_capture(archive: Path, collection: str, kind: str, records: list[dict | bytes], stamp: str = "20261127T130000Z",
                n: int = 0) -> Path:
    """A capture file written the plain way (gzip + json.dumps), as another tool could."""
    folder = archive / collection / stamp[:4] / stamp[4:6] / stamp[6:8] / stamp[9:11]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{collection}-{kind}-{stamp}{f'-{n}' if n else ''}.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        for record in records:
            handle.write(record if isinstance(record, bytes) else json.dumps(record).encode() + b"\n")
    return path
