"""Helpers for the stream tests: a configuration pointing at a simulator, read-back of captures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import yaml

from sfm_archiver.config import Config, load_config
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.storage.reader import capture_files
from tests.polling import wait_for  # noqa: F401  (re-exported for the tests here)


def write_config(root: Path, base_url: str, collections: list[dict], **sections: Any) -> Path:
    """A configuration file under `root` with its own archive/state/outbox folders."""
    document = {
        "paths": {"archive": str(root / "archive"), "state": str(root / "state"), "outbox": str(root / "outbox")},
        "x": {"api_base_url": base_url, "bearer_token": "test-token"},
        "collections": collections,
        "storage": {"stream_flush_seconds": "0.1s"},
        "streams": {"stall_timeout": "1s"},
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            document.setdefault(key, {}).update(value)
        else:
            document[key] = value
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def make_context(root: Path, base_url: str, collections: list[dict], **sections: Any) -> JobContext:
    config: Config = load_config(write_config(root, base_url, collections, **sections))
    return JobContext.open(config)


def captured(archive: Path, collection: str) -> list[dict]:
    """Every capture line of a collection, oldest file first (each file must decompress)."""
    lines = []
    for path in capture_files(archive, collection, kinds=["stream"]):
        for raw in gzip.decompress(path.read_bytes()).splitlines():
            lines.append(json.loads(raw))
    return lines



