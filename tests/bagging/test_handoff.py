"""`on_handoff`: run after the rename, without a shell, with a timeout; failures recorded and retried."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

from sfm_archiver.bagging import bag_completed_periods
from tests.bagging.conftest import DAY1

LATER = DAY1 + timedelta(days=30)

# The site's command: records its argument; fails while <flag> exists (so a test can make it
# recover). Our code runs it without a shell; the command itself happens to be sh.
SCRIPT = 'printf "%s\\n" "$2" >> "$0"; if [ -e "$1" ]; then echo "upload refused: quota"; exit 3; fi'


def tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        digest.update(item.relative_to(path).as_posix().encode())
        if item.is_file():
            digest.update(item.read_bytes())
    return digest.hexdigest()


def handoff_env(make_env, tmp_path, **bagging):
    log, flag = tmp_path / "calls.txt", tmp_path / "fail"
    argv = ["/bin/sh", "-c", SCRIPT, str(log), str(flag), "{bag}"]
    env = make_env(bagging={"on_handoff": argv, **bagging})
    return env, log, flag


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_command_runs_with_the_bag_path(make_env, tmp_path):
    env, log, _flag = handoff_env(make_env, tmp_path, ready_marker=True)
    env.fill("gw", days=1)
    ctx = env.context(now=LATER)
    [result] = bag_completed_periods(ctx)
    assert result["handoff"] == "ok"
    assert calls(log) == [str(env.outbox / "gw_2024-03-01")]
    record = ctx.store.bag("gw_2024-03-01")
    assert record["handoff_state"] == "ok" and record["handoff_error"] is None and record["handoff_at"]


def test_failure_is_recorded_retried_and_never_touches_the_bag(make_env, tmp_path):
    env, log, flag = handoff_env(make_env, tmp_path)
    flag.write_text("fail")
    env.fill("gw", days=1)
    ctx = env.context(now=LATER)
    [result] = bag_completed_periods(ctx)
    bag = env.outbox / "gw_2024-03-01"
    before = tree_digest(bag)
    assert result["status"] == "bagged" and result["handoff"] == "failed"
    assert "exited with code 3" in result["handoff_error"] and "quota" in result["handoff_error"]
    record = ctx.store.bag("gw_2024-03-01")
    assert record["handoff_state"] == "failed" and "quota" in record["handoff_error"]
    assert ctx.store.last_run("gw", "bag")["result"] == "warning"

    [retry] = bag_completed_periods(ctx)
    assert retry["status"] == "handoff_retry" and retry["handoff"] == "failed"
    flag.unlink()
    [retry] = bag_completed_periods(ctx)
    assert retry["handoff"] == "ok"
    assert ctx.store.bag("gw_2024-03-01")["handoff_state"] == "ok"
    assert calls(log) == [str(bag)] * 3
    assert bag_completed_periods(ctx) == []
    assert tree_digest(bag) == before


def test_command_that_hangs_is_killed_at_the_timeout(make_env, tmp_path):
    hang = ["/bin/sh", "-c", "sleep 60", "{bag}"]
    env = make_env(bagging={"on_handoff": hang, "handoff_timeout": "0.5s"})
    env.fill("gw", days=1)
    started = time.monotonic()
    [result] = bag_completed_periods(env.context(now=LATER))
    assert time.monotonic() - started < 20
    assert result["handoff"] == "failed" and "did not finish within 0.5s" in result["handoff_error"]


def test_missing_command_is_a_recorded_failure(make_env):
    env = make_env(bagging={"on_handoff": ["/nonexistent/upload-bag", "{bag}"]})
    env.fill("gw", days=1)
    [result] = bag_completed_periods(env.context(now=LATER))
    assert result["status"] == "bagged" and result["handoff"] == "failed"
    assert "cannot run '/nonexistent/upload-bag'" in result["handoff_error"]
