"""Shared pieces of the chaos suite: configs, capture files, hand-made bags (and the shared polling)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.writer import CaptureWriter
from sfm_archiver.timeutil import utcnow
from tests import operator
from tests.polling import wait_for  # noqa: F401  (re-exported for the tests here)

TOKEN = "chaos-token-7f3e91d2c4b8a605"


def write_config(path: Path, root: Path, api: str, collections: list[dict], **sections) -> Path:
    """A configuration under `root` (archive, state, outbox) talking to `api`."""
    return operator.write_config(path, root, api, collections, token=TOKEN, organization="Chaos Library", **sections)


def cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `sfm-archiver ARGS` in a subprocess, the way an operator does."""
    return operator.cli(*args, env=env, timeout=timeout)


def write_capture(archive: Path, collection: str, moment: datetime, ids: list[int], account: str = "100001",
                  kind: str = "timeline") -> Path:
    """A real capture file (one gzip member) holding one timeline page with `ids`."""
    writer = CaptureWriter(archive, collection, kind, clock=lambda: moment)
    page = {"data": [{"id": str(i), "author_id": account, "text": f"post {i}"} for i in ids],
            "meta": {"result_count": len(ids)}}
    import json

    raw = json.dumps(page).encode()
    meta = sfm_metadata(captured_at=moment, collection=collection, job="user_timeline",
                        url=f"http://127.0.0.1/2/users/{account}/tweets",
                        account={"id": account, "username": "someone"})
    path = writer.write_batch([envelope(raw, meta)])
    writer.close()
    return path


def make_bag(outbox: Path, archive: Path, collection: str, hour: datetime, serialize: bool = False) -> Path:
    """Move one hour of captures into a minimal valid BagIt bag in the outbox (as the bagger does)."""
    label = hour.strftime("%Y-%m-%dT%H")
    name = f"{collection}_{label}"
    bag = outbox / name
    source = archive / collection / hour.strftime("%Y/%m/%d/%H")
    payload = bag / "data" / hour.strftime("%Y/%m/%d/%H")
    payload.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        path.rename(payload / path.name)
    source.rmdir()
    (bag / "data" / "provenance").mkdir()
    (bag / "data" / "provenance" / "config.json").write_text("{}")
    lines, total, count = [], 0, 0
    for path in sorted((bag / "data").rglob("*")):
        if path.is_file():
            lines.append(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(bag).as_posix()}")
            total += path.stat().st_size
            count += 1
    (bag / "manifest-sha256.txt").write_text("\n".join(lines) + "\n")
    (bag / "bagit.txt").write_text("BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    end = hour.replace(tzinfo=timezone.utc).timestamp() + 3600
    info = {
        "Source-Organization": "Chaos Library", "Bagging-Date": "2026-01-01", "Payload-Oxum": f"{total}.{count}",
        "External-Identifier": name, "Bag-Group-Identifier": collection,
        "SFM-Period-Start": hour.strftime("%Y-%m-%dT%H:00:00Z"),
        "SFM-Period-End": datetime.fromtimestamp(end, timezone.utc).strftime("%Y-%m-%dT%H:00:00Z"),
    }
    (bag / "bag-info.txt").write_text("".join(f"{k}: {v}\n" for k, v in info.items()))
    tags = [f"{hashlib.sha256((bag / n).read_bytes()).hexdigest()}  {n}"
            for n in ("bagit.txt", "bag-info.txt", "manifest-sha256.txt")]
    (bag / "tagmanifest-sha256.txt").write_text("\n".join(tags) + "\n")
    if not serialize:
        return bag
    tar_path = outbox / f"{name}.tar"
    with tarfile.open(tar_path, "w") as archive_file:
        archive_file.add(bag, arcname=name)
    import shutil

    shutil.rmtree(bag)
    return tar_path


def old_capture(archive: Path, collection: str, hours: int) -> Path:
    """An empty timeline page captured `hours` ago: its hour is ready to be bagged."""
    moment = utcnow() - timedelta(hours=hours)
    writer = CaptureWriter(archive, collection, "timeline", clock=lambda: moment)
    meta = sfm_metadata(captured_at=moment, collection=collection, job="user_timeline", url="http://127.0.0.1/x")
    path = writer.write_batch([envelope(b'{"data":[],"meta":{"result_count":0}}', meta)])
    writer.close()
    return path


@contextmanager
def daemon_process(config: Path, log: BinaryIO, env: dict) -> Iterator[subprocess.Popen]:
    """`run` as a real process logging to `log`; killed on the way out if it has not stopped."""
    daemon = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(config), "run"],
                              stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        yield daemon
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def wait_for_every_kind(root: Path, old: Path, timeout: float) -> None:
    """Until the hour of `old` (collection tl) is bagged, tl's links checked and climate streamed."""
    wait_for(lambda: not old.exists() and list((root / "outbox").glob("tl_*")), timeout, "the old hour bagged")
    wait_for(lambda: list((root / "archive").rglob("tl-urls-*.jsonl.gz")), timeout, "links checked")
    wait_for(lambda: list((root / "archive").rglob("climate-stream-*.jsonl.gz")), timeout, "stream captures")
