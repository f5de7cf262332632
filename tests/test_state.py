"""The state store: schema versioning and migrations, WAL, reopening, and round trips of what the
daemon must remember (runs, checkpoints, open files, bags, accounts, URL cache)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sfm_archiver import state as state_module
from sfm_archiver.errors import StateError
from sfm_archiver.state import MIGRATIONS, STATE_FILE, StateStore

REPO = Path(__file__).resolve().parents[1]
UTC = timezone.utc


@pytest.fixture
def store(tmp_path):
    store = StateStore(tmp_path / "state")
    yield store
    store.close()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def database_at_version(path: Path, version: int) -> None:
    """A database as an older release left it: the first `version` migrations applied."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for script in MIGRATIONS[:version]:
            conn.executescript(script)
        conn.execute(f"PRAGMA user_version = {version}")
    finally:
        conn.close()


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


# -- schema -----------------------------------------------------------------------------------------


def test_a_new_store_is_fully_migrated_and_in_wal_mode(tmp_path, store):
    assert store.path == tmp_path / "state" / STATE_FILE
    assert store.schema_version() == len(MIGRATIONS) == user_version(store.path)
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {"accounts", "collection_accounts", "checkpoints", "runs", "open_files", "url_cache", "bags"} <= tables(store.path)
    store.set_daemon_values(started=True)
    assert (tmp_path / "state" / f"{STATE_FILE}-wal").exists()


def test_migrating_an_empty_version_0_database(tmp_path):
    path = tmp_path / "state" / STATE_FILE
    database_at_version(path, 0)
    assert user_version(path) == 0 and tables(path) == set()
    store = StateStore(tmp_path / "state")
    assert store.schema_version() == len(MIGRATIONS)
    assert "accounts" in tables(path)
    store.close()


@pytest.mark.parametrize("version", range(1, len(MIGRATIONS)))
def test_migrating_from_each_older_version_keeps_the_data(tmp_path, version):
    path = tmp_path / "state" / STATE_FILE
    database_at_version(path, version)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO accounts (account_id, username) VALUES ('14615871', 'gwtweets')")
        conn.execute("INSERT INTO checkpoints VALUES ('news', '14615871', '1900', '2026-01-01')")
    store = StateStore(tmp_path / "state")
    assert store.schema_version() == len(MIGRATIONS)
    assert store.account("14615871")["username"] == "gwtweets"
    assert store.checkpoint("news", "14615871") == "1900"
    store.close()


def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path):
    first = StateStore(tmp_path)
    first.set_checkpoint("news", "1", "100")
    first.close()
    second = StateStore(tmp_path)
    assert second.schema_version() == len(MIGRATIONS)
    assert second.checkpoint("news", "1") == "100"
    second.close()


def test_a_newer_schema_is_refused_clearly(tmp_path):
    path = tmp_path / STATE_FILE
    database_at_version(path, len(MIGRATIONS))
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 3}")
    with pytest.raises(StateError) as caught:
        StateStore(tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version {len(MIGRATIONS) + 3} is newer than this software knows ({len(MIGRATIONS)}); upgrade sfm-archiver" in message
    assert user_version(path) == len(MIGRATIONS) + 3, "a refused database is left untouched"


def test_a_file_that_is_not_a_database_is_refused(tmp_path):
    (tmp_path / STATE_FILE).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StateError, match="not a usable state database"):
        StateStore(tmp_path)


def test_a_failing_migration_changes_nothing(tmp_path, monkeypatch):
    StateStore(tmp_path).close()
    broken = "CREATE TABLE half_done (a INTEGER); CREATE TABLE broken (;"
    monkeypatch.setattr(state_module, "MIGRATIONS", [*MIGRATIONS, broken])
    with pytest.raises(StateError, match=f"cannot upgrade the schema to version {len(MIGRATIONS) + 1}"):
        StateStore(tmp_path)
    assert user_version(tmp_path / STATE_FILE) == len(MIGRATIONS)
    assert "half_done" not in tables(tmp_path / STATE_FILE)


OPENER = textwrap.dedent(
    """
    import sys
    from sfm_archiver.state import StateStore
    sys.stdin.readline()
    store = StateStore(sys.argv[1])
    store.set_daemon_values(**{sys.argv[2]: True})
    print(store.schema_version())
    """
)


def test_processes_opening_a_new_database_at_once(tmp_path):
    children = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(tmp_path / "state"), f"p{n}"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        )
        for n in range(4)
    ]
    for child in children:
        child.stdin.write(b"go\n")
        child.stdin.flush()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
        assert out.decode().strip() == str(len(MIGRATIONS))
    store = StateStore(tmp_path / "state")
    assert store.daemon_values() == {"p0": True, "p1": True, "p2": True, "p3": True}
    store.close()


# -- round trips ----------------------------------------------------------------------------------


def test_runs(store):
    run_id = store.start_run("user_timeline", "news")
    running = store.run(run_id)
    assert running["result"] == "running" and running["ended_at"] is None and running["collection"] == "news"
    store.finish_run(run_id, "warning", {"pages": 3, "posts": 250}, warnings=["rate limited"], errors=["acct 7: gone"])
    done = store.run(run_id)
    assert (done["result"], done["counts"], done["warnings"], done["errors"]) == ("warning", {"pages": 3, "posts": 250}, ["rate limited"], ["acct 7: gone"])
    assert done["ended_at"] >= done["started_at"]
    skipped = store.record_skipped_run("user_timeline", "news", "another run holds the lock")
    assert store.run(skipped)["result"] == "skipped"
    assert store.last_run("news", "user_timeline")["run_id"] in (run_id, skipped)
    assert store.last_run("news", "user_timeline", finished_only=True)["run_id"] == run_id
    assert store.last_run(None, "bag") is None
    other = store.start_run("bag", None)
    store.finish_run(other, "ok")
    assert store.last_run(None, "bag")["run_id"] == other
    assert [r["run_id"] for r in store.runs(collection="news")] == [run_id, skipped]
    assert [r["run_id"] for r in store.runs(job="bag")] == [other]
    assert [r["run_id"] for r in store.runs(limit=1)] == [other]
    assert store.runs(start=datetime(2999, 1, 1, tzinfo=UTC)) == []
    assert len(store.runs(end=datetime(2999, 1, 1, tzinfo=UTC))) == 3
    assert store.run("nope") is None


def test_runs_of_dead_processes_are_closed_as_interrupted(store):
    mine = store.start_run("stream", "climate")
    abandoned = store.start_run("user_timeline", "news")
    store.db.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (dead_pid(), abandoned))
    assert store.close_abandoned_runs() == 1
    assert store.run(abandoned)["result"] == "interrupted"
    assert store.run(abandoned)["errors"] == ["the process ended before the run finished"]
    assert store.run(mine)["result"] == "running"


def test_checkpoints(store):
    assert store.checkpoint("news", "1") is None
    store.set_checkpoint("news", "1", "100")
    store.set_checkpoint("news", "1", "250")
    store.set_checkpoint("news", "2", "7")
    store.set_checkpoint("other", "1", "9")
    assert store.checkpoint("news", "1") == "250"
    assert store.checkpoints("news") == {"1": "250", "2": "7"}


def test_open_files(store, tmp_path):
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    store.register_open_file(a, "news", 11)
    store.register_open_file(b, "other", 12)
    store.register_open_file(a, "news", 13)  # registering again replaces
    assert [(e["path"], e["collection"], e["pid"]) for e in store.open_files()] == [(str(a), "news", 13), (str(b), "other", 12)]
    assert [e["path"] for e in store.open_files("other")] == [str(b)]
    assert store.open_files()[0]["opened_at"]
    store.unregister_open_file(a)
    store.unregister_open_file(a)
    assert [e["path"] for e in store.open_files()] == [str(b)]


def test_bags(store):
    start, end = datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 28, tzinfo=UTC)
    store.begin_bag("news_2026-11-27", "news", "2026-11-27", start, end, {"files": ["a", "b"]})
    bag = store.bag("news_2026-11-27")
    assert (bag["state"], bag["period_start"], bag["period_end"], bag["intent"]) == (
        "staging", "2026-11-27T00:00:00.000+00:00", "2026-11-28T00:00:00.000+00:00", {"files": ["a", "b"]}
    )
    store.update_bag("news_2026-11-27", state="handed_off", files=2, bytes=1234, oxum="1234.2", intent={"done": True})
    bag = store.bag("news_2026-11-27")
    assert (bag["state"], bag["files"], bag["oxum"], bag["intent"]) == ("handed_off", 2, "1234.2", {"done": True})
    with pytest.raises(ValueError, match="unknown bag fields"):
        store.update_bag("news_2026-11-27", colour="red")
    store.begin_bag("other_2026-11-27", "other", "2026-11-27", start, end, {})
    assert [b["name"] for b in store.bags(state="staging")] == ["other_2026-11-27"]
    assert [b["name"] for b in store.bags(collection="news")] == ["news_2026-11-27"]
    store.delete_bag("other_2026-11-27")
    assert store.bag("other_2026-11-27") is None


def test_accounts_and_memberships(store):
    store.upsert_account("1", username="gwtweets", profile={"protected": False})
    store.upsert_account("1", status="protected")  # None leaves the other fields as they were
    account = store.account("1")
    assert (account["username"], account["status"], account["profile"]) == ("gwtweets", "protected", {"protected": False})
    store.record_account_failure("1", "timeout")
    store.record_account_failure("1", "timeout")
    assert (store.account("1")["failures"], store.account("1")["last_error"]) == (2, "timeout")
    store.record_account_failure("1", None)
    assert store.account("1")["failures"] == 0
    store.upsert_account("2", username="other")
    assert store.account_status_counts() == {"protected": 1, "active": 1}
    store.link_account("news", "1", "username:gwtweets")
    store.link_account("news", "2", "id:2", active=False)
    assert [(m["account_id"], m["username"], m["active"]) for m in store.memberships("news")] == [("1", "gwtweets", True), ("2", "other", False)]
    store.set_membership_active("news", "2", True)
    store.remove_membership("news", "1")
    assert [m["account_id"] for m in store.memberships("news")] == ["2"]
    assert store.memberships("news")[0]["active"] is True
    assert [m["account_id"] for m in store.memberships("news", include_removed=True)] == ["1", "2"]
    store.link_account("news", "1", "username:gwtweets")  # added back
    assert [m["account_id"] for m in store.memberships("news")] == ["1", "2"]
    store.record_resolution("news", "GWTweets", "1")
    assert store.resolved_id("news", "gwtweets") == "1"
    assert store.resolved_id("other", "gwtweets") is None
    assert [a["account_id"] for a in store.accounts()] == ["1", "2"]


def test_url_cache_and_daemon_values(store):
    assert store.cached_url("https://t.co/x") is None
    store.store_url_result("https://t.co/x", {"final_url": "https://example.org/", "final_status": 200})
    assert store.cached_url("https://t.co/x") == {"final_url": "https://example.org/", "final_status": 200}
    store.set_daemon_values(pid=42, config="/etc/x.yaml", reload_error=None)
    assert store.daemon_values() == {"pid": 42, "config": "/etc/x.yaml", "reload_error": None}


def test_a_transaction_rolls_back_on_error(store):
    with pytest.raises(RuntimeError):
        with store.transaction() as db:
            db.execute("INSERT INTO checkpoints VALUES ('news', '1', '5', 'now')")
            raise RuntimeError("boom")
    assert store.checkpoint("news", "1") is None


def test_threads_use_their_own_connections(store):
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            for n in range(50):
                store.set_checkpoint(name, str(n), str(n))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(f"c{t}",)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert all(len(store.checkpoints(f"c{t}")) == 50 for t in range(4))


def test_checkpoints_written_under_x_names_read_back_after_the_neutral_rename(tmp_path):
    """A state store from before migration 8 (`since_id`, `newest_id` columns) keeps its
    checkpoints and pending batches under the neutral name `newest`."""
    path = tmp_path / STATE_FILE
    database_at_version(path, 7)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO checkpoints VALUES ('gw', '301', '1900000000000000005', '2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO pending_batches VALUES ('gw', '302', '1900000000000000009', NULL, '2026-01-01T00:00:00Z')")
    conn.close()
    store = StateStore(tmp_path)
    assert store.schema_version() == len(MIGRATIONS) >= 8
    assert store.checkpoint("gw", "301") == "1900000000000000005"
    assert [(b["account_id"], b["newest"]) for b in store.pending_batches("gw")] == [("302", "1900000000000000009")]
