"""The account ledger: append-only, hash-chained JSON lines (DESIGN.md section 5).

Each line carries `seq` and `prev`, the sha256 of the previous line's bytes (without its
newline; 64 zeros for the first line). Appends take an exclusive flock, so several processes can
append to one ledger and the chain stays valid. A line is acknowledged only after fsync; a line
without its newline was never acknowledged and is cut off ("torn tail") on the next append.
`ledger.head` beside the file records the last acknowledged seq and hash, so an edit of the
final line is caught too.
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
from typing import Iterator

from sfm_archiver.durable import atomic_write, write_all
from sfm_archiver.errors import LedgerError
from sfm_archiver.timeutil import rfc3339_ms, utcnow

LEDGER_FILE = "ledger.jsonl"
GENESIS = "0" * 64
EVENTS = (
    "added", "renamed", "protected", "unprotected", "suspended", "unsuspended", "deactivated",
    "reactivated", "paused", "resumed", "removed", "username_reassigned",
)
_TAIL_READ = 64 * 1024


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


@dataclass
class LedgerReport:
    """What `verify` found; `problems` is empty when the chain holds."""

    path: Path
    lines: int = 0
    problems: list[str] = field(default_factory=list)
    first_broken_seq: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


class Ledger:
    """Append, read and verify one ledger file."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LEDGER_FILE
        self.head_path = Path(state_dir) / "ledger.head"
        self._thread_lock = threading.Lock()

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
                seq = json.loads(last)["seq"] + 1 if last else 1
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
                os.fsync(fd)
                atomic_write(self.head_path, json.dumps({"seq": seq, "sha256": line_hash(line)}).encode())
                return record
            finally:
                os.close(fd)

    def records(self) -> Iterator[dict]:
        """Every complete record, oldest first (a torn tail is not a record)."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    return
                try:
                    yield json.loads(line)
                except ValueError as error:
                    raise LedgerError(f"{self.path}:{number}: not valid JSON: {error}") from error

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
        """Check every line's seq and hash link and the recorded head."""
        report = LedgerReport(self.path)
        if not self.path.exists():
            return report
        previous_hash, expected_seq = GENESIS, 1
        hashes: dict[int, str] = {}
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                report.lines = number
                problem, seq = _check_line(line, number, expected_seq, previous_hash)
                if problem:
                    report.problems.append(f"{self.path}:{number}: {problem}")
                    if report.first_broken_seq is None:
                        report.first_broken_seq = seq if seq is not None else expected_seq
                    break
                previous_hash = line_hash(line)
                hashes[seq] = previous_hash
                expected_seq = seq + 1
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


def _check_line(line: bytes, number: int, expected_seq: int, previous_hash: str) -> tuple[str | None, int | None]:
    if not line.endswith(b"\n"):
        return "incomplete last line (torn write, never acknowledged)", None
    try:
        record = json.loads(line)
        seq = int(record["seq"])
        prev = record["prev"]
    except (ValueError, KeyError, TypeError) as error:
        return f"not a ledger record: {error}", None
    if seq != expected_seq:
        return f"seq {seq} where {expected_seq} was expected (a line was deleted, inserted or moved)", seq
    if prev != previous_hash:
        return f"seq {seq}: prev hash does not match the line before (that line was edited, or this one moved)", seq
    return None, seq


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
        os.fsync(fd)
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
