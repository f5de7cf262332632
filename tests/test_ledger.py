"""The account ledger: hash chain, torn-tail repair, tamper detection, concurrent appenders, and
the `ledger verify` / `ledger show` commands (DESIGN.md section 5)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sfm_archiver.errors import LedgerError
from sfm_archiver.ledger import EVENTS, GENESIS, Ledger

REPO = Path(__file__).resolve().parents[1]
RUN = {"job": "update_usernames", "run": "r1"}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "CREDENTIALS_DIRECTORY")}
    return subprocess.run([sys.executable, "-m", "sfm_archiver", *args], capture_output=True, text=True, env=env, timeout=60, cwd=REPO)


@pytest.fixture
def state(tmp_path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def config(tmp_path, state) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"paths: {{archive: {tmp_path}/archive, state: {state}, outbox: {tmp_path}/outbox}}\n")
    return path


def five_events(state: Path) -> Ledger:
    ledger = Ledger(state)
    at = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)
    ledger.append(account_id="1", event="added", observed_by=RUN, to="oldname", at=at)
    ledger.append(account_id="2", event="added", observed_by=RUN, to="other", at=at)
    ledger.append(account_id="1", event="renamed", observed_by=RUN, from_="oldname", to="newname", at=at)
    ledger.append(account_id="2", event="suspended", observed_by=RUN, from_="active", to="suspended", at=at)
    ledger.append(account_id="2", event="username_reassigned", observed_by=RUN, from_="other", to="oldname", at=at)
    return ledger


def raw_lines(state: Path) -> list[bytes]:
    return (state / "ledger.jsonl").read_bytes().splitlines(keepends=True)


def rewrite(state: Path, lines: list[bytes]) -> None:
    (state / "ledger.jsonl").write_bytes(b"".join(lines))


# -- appending --------------------------------------------------------------------------------------


def test_append_writes_a_hash_chain(state):
    ledger = five_events(state)
    lines = raw_lines(state)
    assert len(lines) == 5 and all(line.endswith(b"\n") for line in lines)
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == GENESIS == "0" * 64
    for before, record in zip(lines, records[1:]):  # noqa: B905 - one shorter on purpose
        assert record["prev"] == hashlib.sha256(before.rstrip(b"\n")).hexdigest()
    assert records[2] == {
        "seq": 3,
        "at": "2026-11-27T13:00:00.000Z",
        "platform": "x",
        "account_id": "1",
        "event": "renamed",
        "from": "oldname",
        "to": "newname",
        "observed_by": RUN,
        "prev": records[2]["prev"],
    }
    assert list(ledger.records()) == records
    head = json.loads((state / "ledger.head").read_text())
    assert head == {"seq": 5, "sha256": hashlib.sha256(lines[-1].rstrip(b"\n")).hexdigest()}
    assert ledger.verify().ok


def test_append_returns_the_record_and_keeps_extra_details(state):
    ledger = Ledger(state)
    record = ledger.append(account_id=14615871, event="protected", observed_by="cli", from_=False, to=True, username="gw")
    assert record["seq"] == 1 and record["account_id"] == "14615871" and record["username"] == "gw"
    assert list(ledger.records()) == [record]
    assert record["at"].endswith("Z")


def test_unknown_event_is_refused(state):
    with pytest.raises(LedgerError, match="unknown ledger event 'vanished'"):
        Ledger(state).append(account_id="1", event="vanished", observed_by=RUN)
    assert set(EVENTS) >= {"added", "renamed", "username_reassigned", "removed"}


def test_history_filters_by_account_and_time(state):
    ledger = Ledger(state)
    for hour, account in ((1, "1"), (2, "2"), (3, "1")):
        ledger.append(account_id=account, event="added", observed_by=RUN, at=datetime(2026, 1, 1, hour, tzinfo=timezone.utc))
    assert [r["seq"] for r in ledger.history({"1"})] == [1, 3]
    assert [r["seq"] for r in ledger.history(until=datetime(2026, 1, 1, 3, tzinfo=timezone.utc))] == [1, 2]
    assert [r["seq"] for r in ledger.history({"1"}, until=datetime(2026, 1, 1, 2, tzinfo=timezone.utc))] == [1]


def test_an_empty_or_missing_ledger_verifies(state):
    report = Ledger(state).verify()
    assert report.ok and report.lines == 0
    assert list(Ledger(state).records()) == []


# -- torn tail -----------------------------------------------------------------------------------------


def test_a_torn_tail_is_cut_when_the_ledger_is_opened(state):
    five_events(state)
    intact = (state / "ledger.jsonl").read_bytes()
    with open(state / "ledger.jsonl", "ab") as handle:
        handle.write(b'{"seq":6,"at":"2026-11-27T14:00:0')
    ledger = Ledger(state)
    assert (state / "ledger.jsonl").read_bytes() == intact
    assert ledger.verify().ok
    assert ledger.append(account_id="1", event="paused", observed_by=RUN)["seq"] == 6
    assert ledger.verify().ok


def test_a_torn_tail_is_not_a_record_and_not_tampering(state):
    ledger = five_events(state)
    with open(state / "ledger.jsonl", "ab") as handle:  # a write cut short after the ledger was opened
        handle.write(b'{"seq":6,"at":')
    assert [r["seq"] for r in ledger.records()] == [1, 2, 3, 4, 5]
    report = ledger.verify()
    assert report.ok, report.problems
    assert report.lines == 5
    assert "partial last line" in report.notes[0]
    record = ledger.append(account_id="1", event="resumed", observed_by=RUN)
    assert record["seq"] == 6
    assert json.loads(raw_lines(state)[-1]) == record


def test_a_torn_only_line_is_cut(state):
    state.mkdir()
    (state / "ledger.jsonl").write_bytes(b'{"seq":1,"at')
    ledger = Ledger(state)
    assert (state / "ledger.jsonl").read_bytes() == b""
    assert ledger.append(account_id="1", event="added", observed_by=RUN)["seq"] == 1
    assert ledger.verify().ok


def test_a_torn_tail_through_the_cli(config, state):
    ledger = five_events(state)
    with open(ledger.path, "ab") as handle:
        handle.write(b'{"seq":6')
    result = run_cli("--config", str(config), "ledger", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 events, chain intact" in result.stdout


# -- tampering --------------------------------------------------------------------------------------------


def _edit_line_3(lines):
    lines[2] = lines[2].replace(b'"newname"', b'"NEWNAME"')
    return lines


def _edit_prev_of_line_4(lines):
    record = json.loads(lines[3])
    record["prev"] = "f" * 64
    lines[3] = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    return lines


def _forge_after_line_2(lines):
    forged = {"seq": 3, "at": "2026-11-27T13:00:00.000Z", "platform": "x", "account_id": "9", "event": "added",
              "from": None, "to": "forged", "observed_by": RUN, "prev": hashlib.sha256(lines[1].rstrip(b"\n")).hexdigest()}
    return lines[:2] + [json.dumps(forged, separators=(",", ":")).encode() + b"\n"] + lines[2:]


def _renumbered_after_deleting_line_3(lines):
    kept = lines[:2] + lines[3:]
    renumbered = []
    for seq, line in enumerate(kept, start=1):
        record = json.loads(line)
        record["seq"] = seq
        renumbered.append(json.dumps(record, separators=(",", ":")).encode() + b"\n")
    return renumbered


TAMPERING = {
    "edited": (_edit_line_3, 3),
    "edited-prev": (_edit_prev_of_line_4, 3),
    "not-json": (lambda lines: lines[:1] + [b"garbage\n"] + lines[2:], 2),
    "deleted": (lambda lines: lines[:2] + lines[3:], 3),
    # The chain cannot tell "seq 2 edited" from "seq 3 replaced": the first record it cannot
    # confirm is seq 2, whose hash the (renumbered) seq 3 does not carry.
    "deleted-and-renumbered": (_renumbered_after_deleting_line_3, 2),
    "deleted-first": (lambda lines: lines[1:], 1),
    "reordered": (lambda lines: lines[:2] + [lines[3], lines[2]] + lines[4:], 3),
    # A forged seq 3 that links to seq 2 is only betrayed by the original seq 3 after it.
    "inserted": (_forge_after_line_2, 4),
    "inserted-unlinked": (lambda lines: lines[:2] + [lines[0]] + lines[2:], 3),
    "duplicated": (lambda lines: lines[:3] + [lines[2]] + lines[3:], 4),
    "edited-last": (lambda lines: lines[:4] + [lines[4].replace(b'"oldname"', b'"someone"')], 5),
    "deleted-last": (lambda lines: lines[:4], 5),
    "truncated-to-nothing": (lambda lines: [], 1),
}


@pytest.mark.parametrize("damage", sorted(TAMPERING))
def test_tampering_is_found_at_the_first_broken_seq(config, state, damage):
    tamper, broken_seq = TAMPERING[damage]
    five_events(state)
    rewrite(state, tamper(raw_lines(state)))
    report = Ledger(state).verify()
    assert not report.ok
    assert report.first_broken_seq == broken_seq, report.problems
    result = run_cli("--config", str(config), "ledger", "verify")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"{state / 'ledger.jsonl'}: chain broken at seq {broken_seq}"


def test_a_deleted_ledger_file_is_found(state):
    five_events(state)
    (state / "ledger.jsonl").unlink()
    report = Ledger(state).verify()
    assert not report.ok and report.first_broken_seq == 1


def test_verify_names_the_line_and_what_happened(state):
    five_events(state)
    rewrite(state, _edit_line_3(raw_lines(state)))
    (problem,) = Ledger(state).verify().problems
    assert problem.startswith(f"{state / 'ledger.jsonl'}:4: seq 4 does not follow from seq 3")
    assert "seq 3 was edited" in problem


def test_appending_after_a_damaged_last_line_is_refused_clearly(state):
    five_events(state)
    rewrite(state, raw_lines(state)[:4] + [b"garbage\n"])
    with pytest.raises(LedgerError, match="the last line is not a ledger record"):
        Ledger(state).append(account_id="1", event="added", observed_by=RUN)


def test_an_intact_ledger_through_the_cli(config, state):
    five_events(state)
    result = run_cli("ledger", "verify", "--config", str(config))
    assert result.returncode == 0
    assert result.stdout.strip() == f"{state / 'ledger.jsonl'}: 5 events, chain intact"


# -- concurrency --------------------------------------------------------------------------------------------

APPENDER = textwrap.dedent(
    """
    import sys
    from sfm_archiver.ledger import Ledger
    ledger = Ledger(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(int(sys.argv[3])):
        ledger.append(account_id=sys.argv[2], event="renamed", observed_by={"job": "test", "run": sys.argv[2]}, to=str(n))
    """
)


def test_two_processes_appending_at_once_keep_a_valid_chain(state):
    per_process = 60
    children = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(state), name, str(per_process)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
        for name in ("a", "b")
    ]
    for child in children:
        assert child.stdout.readline() == b"ready\n"
    for child in children:  # start both together
        child.stdin.write(b"go\n")
        child.stdin.flush()
    for child in children:
        child.stdin.close()
        assert child.wait(timeout=120) == 0
        child.stdout.close()
    # and threads of one process, each with its own Ledger object, at the same time
    threads = [
        threading.Thread(target=lambda name=name: [Ledger(state).append(account_id=name, event="paused", observed_by=RUN) for _ in range(20)])
        for name in ("t1", "t2")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    ledger = Ledger(state)
    report = ledger.verify()
    assert report.ok, report.problems
    records = list(ledger.records())
    assert [r["seq"] for r in records] == list(range(1, 2 * per_process + 41))
    for name, count in (("a", per_process), ("b", per_process), ("t1", 20), ("t2", 20)):
        mine = [r for r in records if r["account_id"] == name]
        assert len(mine) == count
    assert [r["to"] for r in records if r["account_id"] == "a"] == [str(n) for n in range(per_process)]
    interleaved = sum(1 for x, y in zip(records, records[1:]) if x["account_id"] != y["account_id"])  # noqa: B905
    assert interleaved >= 3, "the appenders did not overlap; the test proves nothing"


# -- ledger show ---------------------------------------------------------------------------------------------


def seqs_shown(result: subprocess.CompletedProcess) -> list[int]:
    assert result.returncode == 0, result.stderr
    return [int(line.split()[0]) for line in result.stdout.splitlines()]


def test_show_lists_every_event(config, state):
    five_events(state)
    result = run_cli("--config", str(config), "ledger", "show")
    assert seqs_shown(result) == [1, 2, 3, 4, 5]
    third = result.stdout.splitlines()[2]
    assert "renamed" in third and "oldname -> newname" in third and "job=update_usernames run=r1" in third


def test_show_by_account_id_and_by_former_username(config, state):
    five_events(state)
    assert seqs_shown(run_cli("--config", str(config), "ledger", "show", "--account", "1")) == [1, 3]
    assert seqs_shown(run_cli("--config", str(config), "ledger", "show", "--account", "newname")) == [1, 3]
    assert seqs_shown(run_cli("--config", str(config), "ledger", "show", "--account", "@Other")) == [2, 4, 5]
    # a username that passed from one account to another finds both
    assert seqs_shown(run_cli("--config", str(config), "ledger", "show", "--account", "oldname")) == [1, 2, 3, 4, 5]
    assert run_cli("--config", str(config), "ledger", "show", "--account", "nobody").stdout == ""


def test_show_json(config, state):
    ledger = five_events(state)
    result = run_cli("ledger", "show", "--json", "--account", "2", "--config", str(config))
    assert result.returncode == 0
    shown = [json.loads(line) for line in result.stdout.splitlines()]
    assert shown == [r for r in ledger.records() if r["account_id"] == "2"]
