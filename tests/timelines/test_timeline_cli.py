"""`sfm-archiver user-timeline` / `update-usernames` as real processes: exit codes, progress, kill -9."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

from .helpers import COLLECTION, TOKEN, captured_by_account, captured_ids, published_ids, wait_for, write_config

ACCOUNTS = [{"id": str(400 + n), "username": f"kill_{n}", "tweets": 130} for n in range(24)]


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sfm_archiver", *args]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout)


def test_kill_9_mid_run_then_rerun_loses_and_duplicates_nothing(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS, faults={"latency_ms": 10})
    config = write_config(tmp_path, sim.base_url, [a["username"] for a in ACCOUNTS], workers=4)
    archive = tmp_path / "archive"
    kills = 0
    for round_number, harvested in enumerate((2, 7, 14)):
        log = tmp_path / f"run-{round_number}.log"
        with open(log, "w") as stderr:
            process = subprocess.Popen(command("user-timeline", "--config", str(config)), stdout=subprocess.DEVNULL,
                                       stderr=stderr)
        try:
            wait_for(lambda log=log, process=process, harvested=harvested: (
                log.read_text().count(" new posts in ") >= harvested or process.poll() is not None), timeout=30)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                kills += 1
            process.wait(timeout=10)
        for account in ACCOUNTS[round_number::7]:
            sim.apply_event({"action": "post", "account": account["id"], "count": 3})
    assert kills >= 2  # the runs really died mid-way

    final = run_cli("user-timeline", "--config", str(config))
    assert final.returncode == 0, final.stderr
    counts = captured_ids(archive)
    duplicates = {tweet_id: n for tweet_id, n in counts.items() if n > 1}
    assert not duplicates
    by_account = captured_by_account(archive)
    for account in ACCOUNTS:
        assert by_account[account["id"]] == published_ids(sim, account["id"]), account["username"]


def test_exit_codes(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS[:2])
    config = write_config(tmp_path, sim.base_url, ["kill_0", "kill_1"])
    done = run_cli("user-timeline", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert f"{COLLECTION}: user_timeline ok" in done.stdout and "posts=260" in done.stdout

    updated = run_cli("update-usernames", COLLECTION, "--config", str(config))
    assert updated.returncode == 0 and "update_usernames ok" in updated.stdout

    unknown = run_cli("user-timeline", "nope", "--config", str(config))
    assert unknown.returncode == 2 and "not a timeline collection: nope" in unknown.stderr

    (tmp_path / "bad").mkdir()
    online = run_cli("check-config", "--online", "--config", str(config))
    assert online.returncode == 0, online.stdout + online.stderr
    (tmp_path / "typo").mkdir()
    typo = write_config(tmp_path / "typo", sim.base_url, ["kill_0", "kill_O"])
    online = run_cli("check-config", "--online", "--config", str(typo))
    assert online.returncode == 1 and "account 'kill_O' (tl, config line" in online.stdout

    refused = write_config(tmp_path / "bad", sim.base_url, ["kill_0"])
    text = refused.read_text().replace(TOKEN, "wrong-token")
    refused.write_text(text)
    failed = run_cli("user-timeline", "--config", str(refused))
    assert failed.returncode == 1 and "refused the bearer token" in failed.stdout
    assert "wrong-token" not in failed.stdout + failed.stderr


def test_progress_on_a_terminal(tmp_path, make_simulator):
    sim = make_simulator(tokens=[TOKEN], accounts=ACCOUNTS[:3], rate_limits={"window_seconds": 1, "user_tweets": 2})
    config = write_config(tmp_path, sim.base_url, ["kill_0", "kill_1", "kill_2"], backfill=100)
    master, slave = pty.openpty()
    process = subprocess.Popen(command("user-timeline", "--config", str(config)), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=10)
    os.close(master)
    text = output.decode(errors="replace")
    assert process.returncode == 0
    assert "3/3 accounts, 300 posts, 3 pages" in text
    assert "rate limit GET /2/users/:id/tweets: budget spent, waiting" in text


def test_help_names_the_commands():
    for name in ("user-timeline", "update-usernames"):
        shown = run_cli(name, "--help")
        assert shown.returncode == 0 and "exit 0" in shown.stdout


