"""`backup DEST`: a consistent snapshot of what cannot be rebuilt from the archive.

That is the state database (accounts, checkpoints, runs, URL cache, bag records), the ledger
and the configuration. The database is copied with SQLite's online backup API, so it is
consistent even while the daemon writes; the ledger is copied under a shared flock (appends
take an exclusive one), with its head file, so chain and head match. The configuration is copied
with literal secrets replaced by environment references (config_redact: `${SFM_X_BEARER_TOKEN}`).
Everything goes into
`DEST/sfm-archiver-backup-<UTC stamp>/`, built under a `.partial` name and renamed when whole.

Restore (docs/operators-guide.md): stop the daemon, copy `state.sqlite3`, `ledger.jsonl` and
`ledger.head` into the state folder, put the configuration back and add the secret again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

from sfm_archiver import __version__
from sfm_archiver.config import Config, public_dict
from sfm_archiver.config_redact import redact_text
from sfm_archiver.durable import atomic_write, fsync_dir, fsync_tree
from sfm_archiver.errors import BackupError
from sfm_archiver.ledger import LEDGER_FILE
from sfm_archiver.state import STATE_FILE
from sfm_archiver.timeutil import Clock, rfc3339_ms, utcnow

BACKUP_PREFIX = "sfm-archiver-backup-"
MANIFEST = "backup.json"


def backup(config: Config, dest: Path, clock: Clock = utcnow) -> Path:
    """Write one snapshot folder under `dest` and return its path."""
    now = clock()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    final = dest / f"{BACKUP_PREFIX}{now.strftime('%Y%m%dT%H%M%SZ')}"
    if final.exists():
        raise BackupError(f"{final} already exists: wait a second or choose another DEST")
    partial = dest / f".{final.name}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    state_dir = config.paths.state
    copy_database(state_dir / STATE_FILE, partial / STATE_FILE)
    ledger_info = copy_ledger(state_dir, partial)
    (partial / "config.yaml").write_text(redact_text(_read_text(config.source)), encoding="utf-8")
    (partial / "config.public.json").write_text(json.dumps(public_dict(config), indent=2) + "\n", encoding="utf-8")
    manifest = {
        "created_at": rfc3339_ms(now),
        "software_version": __version__,
        "config_source": str(config.source),
        "state_dir": str(state_dir),
        "schema_version": _schema_version(partial / STATE_FILE),
        "ledger": ledger_info,
        "files": {path.name: _sha256(path) for path in sorted(partial.iterdir()) if path.is_file()},
    }
    atomic_write(partial / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    fsync_tree(partial)
    os.rename(partial, final)
    fsync_dir(dest)
    return final


def copy_database(source: Path, target: Path) -> None:
    """Online backup of the SQLite database: consistent while other processes write to it."""
    if not source.exists():
        raise BackupError(f"{source}: no state database to back up (has the daemon ever run with this configuration?)")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=1024)
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as error:
        raise BackupError(f"{source}: online backup failed: {error}") from error
    finally:
        dst.close()
        src.close()


def copy_ledger(state_dir: Path, target_dir: Path) -> dict:
    """Copy ledger.jsonl and ledger.head while no append can run (shared flock)."""
    ledger = Path(state_dir) / LEDGER_FILE
    head = Path(state_dir) / "ledger.head"
    if not ledger.exists():
        return {"lines": 0, "head": None}
    fd = os.open(ledger, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        shutil.copyfile(ledger, target_dir / LEDGER_FILE)
        if head.exists():
            shutil.copyfile(head, target_dir / "ledger.head")
    finally:
        os.close(fd)
    with open(target_dir / LEDGER_FILE, "rb") as handle:
        lines = sum(1 for _ in handle)
    head_data = json.loads((target_dir / "ledger.head").read_text()) if (target_dir / "ledger.head").exists() else None
    return {"lines": lines, "head": head_data}


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise BackupError(f"{path}: cannot read the configuration: {error}") from error


def _schema_version(database: Path) -> int:
    conn = sqlite3.connect(database)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_backups(dest: Path) -> list[Path]:
    """Finished snapshots under `dest`, oldest first (partial ones are not listed)."""
    return sorted(p for p in Path(dest).glob(f"{BACKUP_PREFIX}*") if p.is_dir())
