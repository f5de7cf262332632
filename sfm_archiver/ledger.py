"""The account ledger: append-only, hash-chained JSON lines (DESIGN.md section 5).

Each line carries `seq` and `prev`, the sha256 of the previous line's bytes (without its
newline; 64 zeros for the first line). Appends take an exclusive flock, so several processes can
append to one ledger and the chain stays valid. A line is acknowledged only after fsync; a line
without its newline was never acknowledged and is cut off ("torn tail") when the ledger is opened and before
the next append. `ledger.head` beside the file records the last acknowledged seq and hash, so an
edit or removal of the final lines is caught too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterable, Iterator

from sfm_archiver.durable import atomic_write, sync_file, write_all
from sfm_archiver.errors import LedgerError
from sfm_archiver.timeutil import rfc3339_ms, utcnow

LEDGER_FILE = "ledger.jsonl"
GENESIS = "0" * 64
EVENTS = (
    "added", "renamed", "protected", "unprotected", "suspended", "unsuspended", "deactivated",
    "reactivated", "paused", "resumed", "removed", "username_reassigned",
)
_TAIL_READ = 64 * 1024


def read_ledger(state_dir: Path) -> Iterator[dict]:
    """Every complete record of the ledger in `state_dir`, oldest first, without repairing or
    writing anything (for readers such as `export` that must leave the state alone)."""
    path = Path(state_dir) / LEDGER_FILE
    if not path.exists():
        return
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return
            try:
                yield json.loads(line)
            except ValueError as error:
                raise LedgerError(f"{path}:{number}: not valid JSON: {error}") from error


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass
class LedgerReport:
    """What `verify` found; `problems` is empty when the chain holds."""

    path: Path
    lines: int = 0
    problems: list[str] = field(default_factory=list)
    first_broken_seq: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class Ledger:
    """Append, read and verify one ledger file."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LEDGER_FILE
        self.head_path = Path(state_dir) / "ledger.head"
        self._thread_lock = threading.Lock()
        self.repair_torn_tail()

    def repair_torn_tail(self) -> bool:
        """Cut a partial last line left by a crash mid-append (it was never acknowledged).

        Done under the append lock; skipped when the ledger is missing or not writable by this
        user (a read-only `ledger show`). Returns True when something was cut.
        """
        if not self.path.exists() or not os.access(self.path, os.W_OK):
            return False
        with self._thread_lock:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
            except OSError:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                _repair_and_read_last_line(fd, self.path)
                return os.fstat(fd).st_size != size
            finally:
                os.close(fd)

    def append(
        self,
        *,
        account_id: str,
        event: str,
        observed_by: dict | str,
        from_: object = None,
        to: object = None,
        platform: str = "x",
        at: datetime | None = None,
        **details: object,
    ) -> dict:
        """Append one event durably and return the record written (with its seq)."""
        if event not in EVENTS:
            raise LedgerError(f"unknown ledger event {event!r}; known: {', '.join(EVENTS)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                last = _repair_and_read_last_line(fd, self.path)
                seq = _seq_of(last, self.path) + 1 if last else 1
                record = {
                    "seq": seq,
                    "at": rfc3339_ms(at or utcnow()),
                    "platform": platform,
                    "account_id": str(account_id),
                    "event": event,
                    "from": from_,
                    "to": to,
                    "observed_by": observed_by,
                    **details,
                    "prev": line_hash(last) if last else GENESIS,
                }
                line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
                write_all(fd, line + b"\n")
                sync_file(fd)
                atomic_write(self.head_path, json.dumps({"seq": seq, "sha256": line_hash(line)}).encode())
                return record
            finally:
                os.close(fd)

    def records(self) -> Iterator[dict]:
        """Every complete record, oldest first (a torn tail is not a record)."""
        return read_ledger(self.path.parent)

    def history(self, account_ids: set[str] | None = None, until: datetime | None = None) -> list[dict]:
        """Events of the given accounts (all when None) up to `until`."""
        cutoff = rfc3339_ms(until) if until else None
        return [
            record
            for record in self.records()
            if (account_ids is None or record.get("account_id") in account_ids)
            and (cutoff is None or record.get("at", "") < cutoff)
        ]

    def verify(self) -> LedgerReport:
        """Check every line's seq and hash link and the recorded head.

        `first_broken_seq` names the first record whose integrity cannot be confirmed: the
        missing or displaced seq, or the record whose hash its successor does not confirm.
        """
        report = LedgerReport(self.path)
        if not self.path.exists():
            if self.head_path.exists():
                report.problems.append(f"{self.path}: missing, but {self.head_path} records acknowledged events")
                report.first_broken_seq = 1
            return report
        previous_hash, expected_seq = GENESIS, 1
        hashes: dict[int, str] = {}
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    report.notes.append(
                        f"{self.path}:{number}: partial last line (a write cut short, never acknowledged); "
                        "it is removed the next time the ledger is opened for writing"
                    )
                    break
                report.lines = number
                problem, broken_seq = _check_line(line, expected_seq, previous_hash)
                if problem:
                    report.problems.append(f"{self.path}:{number}: {problem}")
                    report.first_broken_seq = broken_seq
                    break
                previous_hash = line_hash(line)
                hashes[expected_seq] = previous_hash
                expected_seq += 1
        if not report.problems:
            self._check_head(report, hashes)
        return report

    def _check_head(self, report: LedgerReport, hashes: dict[int, str]) -> None:
        if not self.head_path.exists():
            return
        try:
            head = json.loads(self.head_path.read_text())
            seq, digest = int(head["seq"]), head["sha256"]
        except (ValueError, KeyError, TypeError) as error:
            report.problems.append(f"{self.head_path}: unreadable: {error}")
            return
        if seq not in hashes:
            report.problems.append(
                f"{self.path}: the ledger ends at seq {max(hashes, default=0)} but seq {seq} was acknowledged: "
                "lines were removed from the end"
            )
            report.first_broken_seq = max(hashes, default=0) + 1
        elif hashes[seq] != digest:
            report.problems.append(f"{self.path}: seq {seq} differs from what was acknowledged: the line was edited")
            report.first_broken_seq = seq


def _check_line(line: bytes, expected_seq: int, previous_hash: str) -> tuple[str | None, int]:
    """(problem, first broken seq) for one complete line; problem is None when it follows on."""
    try:
        record = json.loads(line)
        seq = int(record["seq"])
        prev = record["prev"]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return f"seq {expected_seq} expected here, but the line is not a ledger record ({error}): it was edited", expected_seq
    if seq != expected_seq:
        return (
            f"found seq {seq} where seq {expected_seq} was expected: seq {expected_seq} was deleted or moved, "
            "or a line was inserted",
            expected_seq,
        )
    if prev != previous_hash:
        if seq == 1:
            return "seq 1 must have a prev of 64 zeros: it was edited", 1
        return (
            f"seq {seq} does not follow from seq {seq - 1} (its prev hash differs): seq {seq - 1} was edited, "
            f"or seq {seq} is not the original (edited, or put in place of removed lines)",
            seq - 1,
        )
    return None, seq


def _seq_of(line: bytes, path: Path) -> int:
    try:
        return int(json.loads(line)["seq"])
    except (ValueError, KeyError, TypeError) as error:
        raise LedgerError(f"{path}: the last line is not a ledger record ({error}); run 'sfm-archiver ledger verify'") from error


def _repair_and_read_last_line(fd: int, path: Path) -> bytes:
    """Cut an unacknowledged partial last line, then return the last complete line (or b"")."""
    size = os.fstat(fd).st_size
    if size == 0:
        return b""
    start = max(0, size - _TAIL_READ)
    while True:
        tail = os.pread(fd, size - start, start)
        newline = tail.rfind(b"\n")
        if newline == -1 and start > 0:
            start = max(0, start - _TAIL_READ * 4)
            continue
        break
    if newline != len(tail) - 1:
        os.ftruncate(fd, start + newline + 1)
        sync_file(fd)
        tail = tail[: newline + 1]
        if not tail:
            return b""
    previous = tail.rfind(b"\n", 0, len(tail) - 1)
    if previous == -1 and start > 0:
        return _read_last_line_slow(path)
    return tail[previous + 1 : -1]


def _read_last_line_slow(path: Path) -> bytes:
    last = b""
    with open(path, "rb") as handle:
        for line in handle:
            last = line
    return last.rstrip(b"\n")


def usernames_held(record: dict) -> set[str]:
    """Usernames (lower case) that one ledger event ties to its account: the snapshot of `added`,
    both sides of `renamed`, the name of `username_reassigned` (given up, or passed to it)."""
    names = set()
    for key in ("from", "to"):
        value = record.get(key)
        if isinstance(value, dict):
            value = value.get("username")
        if isinstance(value, str) and record.get("event") in ("added", "renamed", "username_reassigned"):
            names.add(value.lower())
    if isinstance(record.get("username"), str):
        names.add(record["username"].lower())
    return names


def account_ids_named(records: Iterable[dict], id_or_name: str) -> set[str]:
    """Ids of the account with this id, or of every account that ever had this username."""
    wanted = id_or_name.lstrip("@").lower()
    return {
        str(record.get("account_id"))
        for record in records
        if str(record.get("account_id")) == id_or_name or wanted in usernames_held(record)
    }
