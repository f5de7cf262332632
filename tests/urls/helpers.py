"""Shared pieces of the link-expansion and WARC tests: configs, captures, WARC inspection."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import zlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from sfm_archiver.config import Config, load_config
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.writer import CaptureWriter
from tests.polling import wait_for  # noqa: F401  (re-exported for the tests here)

# Shaped like a real X bearer token: it holds percent-encoded characters.
TOKEN = "AAAAAAAAAAAAAAAAAAAAAsfmTestToken%2Fz9Qw%3DkLmN0pQrStUvWxYz"
CAPTURED_AT = datetime(2026, 11, 20, 10, 30, tzinfo=timezone.utc)
CAPTURE_DATE = CAPTURED_AT.date()


def write_config(tmp_path: Path, base_url: str, urls: dict[str, Any] | None = None,
                 collections: str | None = None) -> Path:
    """A configuration on `tmp_path` talking to the simulator at `base_url`."""
    settings = {"concurrency": 16, "per_host": 16, "timeout": "2s", "max_hops": 10, "warc": True}
    settings.update(urls or {})
    collections = collections or """
        collections:
          - name: news
            type: timeline
            accounts: [sfm_alpha]
          - name: live
            type: sample_stream
        """
    text = (
        "organization: {name: Test Library, contact_email: archives@example.edu}\n"
        f"paths: {{archive: {tmp_path}/archive, state: {tmp_path}/state, outbox: {tmp_path}/outbox}}\n"
        f"x: {{bearer_token: '{TOKEN}', api_base_url: '{base_url}'}}\n"
        f"urls: {json.dumps(settings)}\n"
        + textwrap.dedent(collections).lstrip("\n")
    )
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def make_ctx(tmp_path: Path, base_url: str, **kwargs: Any) -> JobContext:
    urls = kwargs.pop("urls", None)
    config: Config = load_config(write_config(tmp_path, base_url, urls))
    return JobContext.open(config, **kwargs)


def tweet(tweet_id: int | str, *urls: str, unwound: dict[str, str] | None = None) -> dict:
    entities = []
    for index, url in enumerate(urls):
        entity = {"start": index * 24, "end": index * 24 + 23, "url": f"https://t.co/x{tweet_id}{index}",
                  "expanded_url": url, "display_url": url.split("://", 1)[-1][:25]}
        if unwound and url in unwound:
            entity["unwound_url"] = unwound[url]
        entities.append(entity)
    data: dict[str, Any] = {"id": str(tweet_id), "text": "post with links"}
    if entities:
        data["entities"] = {"urls": entities}
    return data


def capture_line(record: dict, collection: str, job: str = "user_timeline") -> bytes:
    raw = json.dumps(record, separators=(",", ":")).encode()
    return envelope(raw, sfm_metadata(captured_at=CAPTURED_AT, collection=collection, job=job))


def write_capture(archive: Path, collection: str, kind: str, records: Iterable[dict],
                  at: datetime = CAPTURED_AT) -> Path:
    """One capture file of `records` (whole X API objects), as the harvest jobs write them."""
    job = "sample_stream" if kind == "stream" else "user_timeline"
    with CaptureWriter(archive, collection, kind, clock=lambda: at) as writer:
        return writer.write_batch(capture_line(record, collection, job) for record in records)


def url_lines(archive: Path, collection: str) -> list[dict]:
    lines = []
    for path in sorted((archive / collection).rglob(f"{collection}-urls-*.jsonl.gz")):
        with gzip.open(path, "rb") as handle:
            lines.extend(json.loads(line) for line in handle)
    return lines


def warc_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.warc.gz"))


def warcio(*args: str) -> subprocess.CompletedProcess:
    """The warcio command line, as an archivist would run it."""
    return subprocess.run([sys.executable, "-m", "warcio.cli", *args], capture_output=True, text=True, timeout=60)


def index(path: Path) -> list[dict]:
    """`warcio index` of a file: one dict per record."""
    result = warcio("index", "-f", "warc-type,warc-target-uri,warc-record-id,warc-concurrent-to,http:status",
                    str(path))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def gzip_members(path: Path) -> int:
    """How many gzip members a file holds."""
    data, members = path.read_bytes(), 0
    while data:
        decompressor = zlib.decompressobj(31)
        decompressor.decompress(data)
        assert decompressor.eof, f"{path}: a torn gzip member"
        data = decompressor.unused_data
        members += 1
    return members


def assert_no_secret(root: Path, secret: str = TOKEN) -> None:
    """No file under `root` holds the token, raw or percent-decoded, compressed or not."""
    from urllib.parse import unquote

    forms = {secret.encode(), unquote(secret).encode()}
    checked = 0
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        contents = [data]
        if path.name.endswith(".gz"):
            contents.append(gzip.decompress(data))
        for content in contents:
            for form in forms:
                assert form not in content, f"{path} holds the bearer token"
        checked += 1
    assert checked, f"no files under {root}"



