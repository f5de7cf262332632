"""A real archive tree, state store and outbox for bagging tests (no harvesting needed)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from sfm_archiver.config import load_config
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.storage.writer import CaptureWriter

UTC = timezone.utc
ADDRESS = "1 Library Way, Springfield, USA"
DAY1 = datetime(2024, 3, 1, tzinfo=UTC)


def capture_lines(count: int, rng: random.Random, noise: int = 64) -> list[bytes]:
    """Timeline-page-like JSON lines; `noise` random bytes per line keep gzip from shrinking them."""
    lines = []
    for _ in range(count):
        tweet_id = str(rng.randrange(10**17, 10**18))
        text = base64.b64encode(rng.randbytes(noise)).decode()
        page = {"data": [{"id": tweet_id, "text": text}], "meta": {"result_count": 1}, "__sfm": {"collection": "x"}}
        lines.append(json.dumps(page).encode() + b"\n")
    return lines


@dataclass
class BagEnv:
    root: Path
    config_path: Path
    captures: dict[str, str] = field(default_factory=dict)  # "collection/rel" -> sha256
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    outbox_path: Path | None = None

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def outbox(self) -> Path:
        return Path(self.outbox_path or self.root / "outbox")

    @property
    def state(self) -> Path:
        return self.root / "state"

    def config(self):
        return load_config(self.config_path)

    def context(self, now: datetime | None = None, **kwargs) -> JobContext:
        clock = (lambda: now) if now is not None else kwargs.pop("clock", None)
        ctx = JobContext.open(self.config(), **kwargs)
        if clock is not None:
            ctx.clock = clock
        return ctx

    def capture(self, collection: str, when: datetime, lines: int = 20, kind: str = "timeline", noise: int = 64) -> Path:
        """One closed capture file written by the real writer at `when`."""
        with CaptureWriter(self.archive, collection, kind, clock=lambda: when) as writer:
            path = writer.write_batch(capture_lines(lines, self.rng, noise))
        self.captures[f"{collection}/{path.relative_to(self.archive / collection).as_posix()}"] = sha256(path)
        return path

    def fill(self, collection: str, days: int = 2, hours=(3, 14), per_hour: int = 1, start: datetime = DAY1, **kwargs) -> list[Path]:
        paths = []
        for day in range(days):
            for hour in hours:
                for n in range(per_hour):
                    paths.append(self.capture(collection, start + timedelta(days=day, hours=hour, minutes=n), **kwargs))
        return paths


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_config(root: Path, bagging: dict | None = None, outbox: Path | None = None, collections: list | None = None) -> Path:
    document = {
        "organization": {"name": "Test University Libraries", "contact_email": "archives@example.edu", "address": ADDRESS},
        "paths": {"archive": str(root / "archive"), "state": str(root / "state"), "outbox": str(outbox or root / "outbox")},
        "x": {"bearer_token": "test-token-123", "api_base_url": "http://127.0.0.1:9"},
        "collections": collections
        if collections is not None
        else [
            {"name": "gw", "type": "timeline", "accounts": ["gwtweets", {"id": "14615871"}]},
            {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "c"}]},
        ],
        "bagging": {"period": "day", "grace": "1h", **(bagging or {})},
        "log_level": "WARNING",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def make_env(tmp_path: Path):
    def make(name: str = "env", **kwargs) -> BagEnv:
        root = tmp_path / name
        root.mkdir()
        return BagEnv(root, write_config(root, **kwargs), outbox_path=kwargs.get("outbox"))

    return make


@pytest.fixture
def env(make_env) -> BagEnv:
    return make_env()


def outbox_captures(outbox: Path) -> dict[str, list[str]]:
    """sha256 of every capture file in outbox bags (folders, tars, tar.gz), by `collection/rel`.

    An APTrust bag's name starts with `<institution>.`; collection names hold no dot.
    """
    import tarfile

    found: dict[str, list[str]] = {}
    for entry in sorted(outbox.iterdir()):
        if entry.name.startswith("."):
            continue
        collection = entry.name.rsplit("_", 1)[0].rsplit(".", 1)[-1]
        if entry.is_dir():
            for path in (entry / "data").rglob("*.gz"):
                rel = path.relative_to(entry / "data").as_posix()
                found.setdefault(f"{collection}/{rel}", []).append(sha256(path))
        elif entry.name.endswith((".tar", ".tar.gz")):
            with tarfile.open(entry) as tar:
                for member in tar.getmembers():
                    if member.isfile() and member.name.endswith(".gz"):
                        rel = member.name.split("/data/", 1)[1]
                        digest = hashlib.sha256(tar.extractfile(member).read()).hexdigest()
                        found.setdefault(f"{collection}/{rel}", []).append(digest)
    return found


def archive_captures(archive: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if not archive.exists():
        return found
    for path in archive.rglob("*.gz"):
        rel = path.relative_to(archive).as_posix()
        found.setdefault(rel, []).append(sha256(path))
    return found


def assert_each_capture_once(env: BagEnv) -> None:
    """Every capture made is in exactly one place, unchanged; nothing else appeared."""
    places = {}
    for source in (archive_captures(env.archive), outbox_captures(env.outbox)):
        for key, digests in source.items():
            places.setdefault(key, []).extend(digests)
    assert set(places) == set(env.captures), (set(places) ^ set(env.captures))
    for key, digests in places.items():
        assert digests == [env.captures[key]], f"{key}: found {len(digests)} times or changed"


def staging_entries(env: BagEnv) -> list[str]:
    staging = env.outbox / ".staging"
    return sorted(os.listdir(staging)) if staging.exists() else []
