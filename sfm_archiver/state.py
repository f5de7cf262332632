"""The state store: one SQLite database (WAL) and the only module that speaks SQL.

It holds what the daemon must remember between runs and what `status` reports: accounts,
checkpoints, job runs, open capture files, the URL cache, bags, stream connection events,
rate-limit budgets and usage caps. The schema is versioned with `PRAGMA user_version`; each
entry of MIGRATIONS moves it forward by one, so an old database is upgraded in place on open.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from sfm_archiver.errors import StateError
from sfm_archiver.timeutil import utcnow

STATE_FILE = "state.sqlite3"
T = TypeVar("T")
BudgetChange = Callable[[dict | None, dict[str, dict]], tuple[dict | None, dict[str, dict], Any]]

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        platform TEXT NOT NULL DEFAULT 'x',
        username TEXT,
        status TEXT NOT NULL DEFAULT 'active',
        profile TEXT,
        updated_at TEXT,
        last_error TEXT,
        failures INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE collection_accounts (
        collection TEXT NOT NULL,
        account_id TEXT NOT NULL,
        config_key TEXT,
        active INTEGER NOT NULL DEFAULT 1,
        added_at TEXT,
        removed_at TEXT,
        PRIMARY KEY (collection, account_id)
    );
    CREATE TABLE username_resolutions (
        collection TEXT NOT NULL,
        username_lower TEXT NOT NULL,
        account_id TEXT NOT NULL,
        resolved_at TEXT,
        PRIMARY KEY (collection, username_lower)
    );
    CREATE TABLE checkpoints (
        collection TEXT NOT NULL,
        account_id TEXT NOT NULL,
        since_id TEXT,
        updated_at TEXT,
        PRIMARY KEY (collection, account_id)
    );
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        job TEXT NOT NULL,
        collection TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        result TEXT,
        counts TEXT,
        warnings TEXT,
        errors TEXT,
        pid INTEGER
    );
    CREATE INDEX runs_by_collection ON runs (collection, job, started_at);
    CREATE INDEX runs_by_start ON runs (started_at);
    CREATE TABLE open_files (
        path TEXT PRIMARY KEY,
        collection TEXT NOT NULL,
        pid INTEGER NOT NULL,
        opened_at TEXT NOT NULL
    );
    CREATE TABLE url_cache (
        url TEXT PRIMARY KEY,
        result TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    );
    CREATE TABLE bags (
        name TEXT PRIMARY KEY,
        collection TEXT NOT NULL,
        period_label TEXT NOT NULL,
        period_start TEXT NOT NULL,
        period_end TEXT NOT NULL,
        state TEXT NOT NULL,
        files INTEGER,
        bytes INTEGER,
        oxum TEXT,
        duration REAL,
        created_at TEXT NOT NULL,
        finished_at TEXT,
        handoff_state TEXT,
        handoff_error TEXT,
        handoff_at TEXT,
        intent TEXT
    );
    CREATE TABLE stream_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stream TEXT NOT NULL,
        event TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT
    );
    CREATE INDEX stream_events_by_time ON stream_events (stream, at);
    CREATE TABLE stream_counts (
        stream TEXT NOT NULL,
        collection TEXT NOT NULL,
        minute TEXT NOT NULL,
        messages INTEGER NOT NULL,
        dropped INTEGER NOT NULL DEFAULT 0,
        last_message_at TEXT,
        PRIMARY KEY (stream, collection, minute)
    );
    CREATE TABLE rate_limits (
        credential TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        rate_limit INTEGER,
        remaining INTEGER,
        reset REAL,
        observed_at TEXT,
        PRIMARY KEY (credential, endpoint)
    );
    CREATE TABLE usage_caps (
        scope TEXT PRIMARY KEY,
        capped_at TEXT NOT NULL,
        resume_at TEXT,
        detail TEXT
    );
    CREATE TABLE daemon (
        key TEXT PRIMARY KEY,
        value TEXT
    );
    """,
    # 2: timeline batches being written, so a crash between data and checkpoint is recoverable
    """
    CREATE TABLE pending_batches (
        collection TEXT NOT NULL,
        account_id TEXT NOT NULL,
        newest_id TEXT NOT NULL,
        path TEXT,
        started_at TEXT NOT NULL,
        PRIMARY KEY (collection, account_id)
    );
    """,
    # 3: indexes that keep `status` fast over a year of stream counts and 10,000 accounts
    """
    CREATE INDEX stream_counts_by_collection ON stream_counts (collection, minute);
    CREATE INDEX collection_accounts_by_account ON collection_accounts (account_id);
    """,
    # 4: schedules that survive restarts: each daemon job's schedule, last start/end, pending wait
    """
    CREATE TABLE job_schedules (
        job_id TEXT PRIMARY KEY,
        schedule TEXT NOT NULL,
        interval_seconds REAL,
        catch_up INTEGER NOT NULL DEFAULT 1,
        scheduled_since TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        pending_since TEXT,
        last_start TEXT,
        last_end TEXT,
        last_result TEXT,
        last_waited REAL,
        pid INTEGER
    );
    """,
    # 5: rate budgets shared by every process using a credential (ratelimit.SharedBudgets): the
    # clock skew bound kept with each budget, and the calls in flight (permits) of every process
    """
    ALTER TABLE rate_limits ADD COLUMN skew REAL;
    CREATE TABLE rate_permits (
        permit_id TEXT PRIMARY KEY,
        credential TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        pid INTEGER NOT NULL,
        taken_at REAL NOT NULL
    );
    CREATE INDEX rate_permits_by_budget ON rate_permits (credential, endpoint);
    """,
    # 6: notify: alert conditions (start/end kept across restarts), the outgoing message queue,
    # notify cursors (ledger offset, last digest) and hourly disk samples for growth projections
    """
    CREATE TABLE alerts (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        detail TEXT,
        started_at TEXT NOT NULL,
        last_sent_at TEXT,
        clear_since TEXT,
        ended_at TEXT,
        occurrences INTEGER NOT NULL DEFAULT 1
    );
    CREATE TABLE notify_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        html TEXT,
        pending TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT
    );
    CREATE TABLE notify_values (
        key TEXT PRIMARY KEY,
        value TEXT
    );
    CREATE TABLE disk_samples (
        path TEXT NOT NULL,
        at TEXT NOT NULL,
        free INTEGER NOT NULL,
        total INTEGER NOT NULL,
        PRIMARY KEY (path, at)
    );
    CREATE INDEX runs_by_job ON runs (job, collection, result, started_at);
    CREATE TABLE rate_limited (
        credential TEXT NOT NULL,
        endpoint TEXT NOT NULL,
        responses INTEGER NOT NULL,
        last_at TEXT NOT NULL,
        PRIMARY KEY (credential, endpoint)
    );
    """,
    # 7: fetch-urls idempotence: which posts of a collection already have a line for each link
    """
    CREATE TABLE url_lines (
        collection TEXT NOT NULL,
        url TEXT NOT NULL,
        tweet_id TEXT NOT NULL,
        PRIMARY KEY (collection, url, tweet_id)
    ) WITHOUT ROWID;
    """,
    # 8: platform-neutral names: a checkpoint is the newest captured post (X calls it since_id)
    """
    ALTER TABLE checkpoints RENAME COLUMN since_id TO newest;
    ALTER TABLE pending_batches RENAME COLUMN newest_id TO newest;
    """,
    # 9: where a resumable stream (Jetstream) goes on: the time_us of its newest durable event
    """
    CREATE TABLE stream_cursors (
        stream TEXT PRIMARY KEY,
        cursor INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );
    """,
]


def _now() -> str:
    return utcnow().isoformat(timespec="milliseconds")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _loads(text: str | None, default: Any = None) -> Any:
    return default if text is None else json.loads(text)


def _retry_locked(call: Callable[[], T], seconds: float = 30.0) -> T:
    """`call`, retried while SQLite says "database is locked" without waiting on its busy handler.

    Switching a new database into WAL mode and reading it while another process creates or
    migrates it can fail at once with SQLITE_BUSY (the busy handler is not consulted then):
    several processes opening one new state store together is normal (daemon and cron one-shots).
    """
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class StateStore:
    """Thread-safe access to the state database (one connection per thread)."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / STATE_FILE
        self._local = threading.local()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -- connection and schema -------------------------------------------------------------

    @property
    def db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect("FULL")
        return conn

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
        conn.execute(f"PRAGMA synchronous={synchronous}")
        return conn

    def close(self) -> None:
        for name in ("conn", "budget_conn"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
                setattr(self._local, name, None)

    def _migrate(self) -> None:
        try:
            version = _retry_locked(lambda: self.db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.DatabaseError as error:
            raise StateError(f"{self.path}: not a usable state database: {error}") from error
        if version > len(MIGRATIONS):
            raise StateError(
                f"{self.path}: schema version {version} is newer than this software knows "
                f"({len(MIGRATIONS)}); upgrade sfm-archiver"
            )
        for number in range(version, len(MIGRATIONS)):
            try:
                with self.transaction() as db:
                    if db.execute("PRAGMA user_version").fetchone()[0] > number:
                        continue  # another process opening the same database migrated it meanwhile
                    for statement in _statements(MIGRATIONS[number]):
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version = {number + 1}")
            except sqlite3.Error as error:
                raise StateError(f"{self.path}: cannot upgrade the schema to version {number + 1}: {error}") from error

    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    # -- open capture files ----------------------------------------------------------------

    def register_open_file(self, path: Path, collection: str, pid: int) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO open_files (path, collection, pid, opened_at) VALUES (?, ?, ?, ?)",
            (str(path), collection, pid, _now()),
        )

    def unregister_open_file(self, path: Path) -> None:
        self.db.execute("DELETE FROM open_files WHERE path = ?", (str(path),))

    def open_files(self, collection: str | None = None) -> list[dict]:
        if collection is None:
            rows = self.db.execute("SELECT * FROM open_files ORDER BY path")
        else:
            rows = self.db.execute("SELECT * FROM open_files WHERE collection = ? ORDER BY path", (collection,))
        return [dict(row) for row in rows]

    # -- accounts --------------------------------------------------------------------------

    def upsert_account(
        self, account_id: str, *, username: str | None = None, status: str | None = None, profile: dict | None = None
    ) -> None:
        """Create or update what we know of an account; None leaves a field unchanged."""
        self.db.execute(
            """
            INSERT INTO accounts (account_id, username, status, profile, updated_at)
            VALUES (?, ?, COALESCE(?, 'active'), ?, ?)
            ON CONFLICT (account_id) DO UPDATE SET
                username = COALESCE(excluded.username, accounts.username),
                status = COALESCE(?, accounts.status),
                profile = COALESCE(excluded.profile, accounts.profile),
                updated_at = excluded.updated_at
            """,
            (account_id, username, status, None if profile is None else json.dumps(profile), _now(), status),
        )

    def account(self, account_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM accounts WHERE account_id = ?", (account_id,)).fetchone()
        return _account_row(row) if row else None

    def accounts(self) -> list[dict]:
        return [_account_row(row) for row in self.db.execute("SELECT * FROM accounts ORDER BY account_id")]

    def account_status_counts(self) -> dict[str, int]:
        rows = self.db.execute("SELECT status, COUNT(*) AS n FROM accounts GROUP BY status")
        return {row["status"]: row["n"] for row in rows}

    def record_account_failure(self, account_id: str, error: str | None) -> None:
        """Count consecutive failures of an account (None resets the count)."""
        if error is None:
            self.db.execute("UPDATE accounts SET failures = 0, last_error = NULL WHERE account_id = ?", (account_id,))
        else:
            self.db.execute(
                "UPDATE accounts SET failures = failures + 1, last_error = ? WHERE account_id = ?", (error, account_id)
            )

    def link_account(self, collection: str, account_id: str, config_key: str | None, active: bool = True) -> None:
        """Make `account_id` a member of `collection` (again, if it was removed)."""
        self.db.execute(
            """
            INSERT INTO collection_accounts (collection, account_id, config_key, active, added_at, removed_at)
            VALUES (?, ?, ?, ?, ?, NULL)
            ON CONFLICT (collection, account_id) DO UPDATE SET
                config_key = excluded.config_key, active = excluded.active, removed_at = NULL
            """,
            (collection, account_id, config_key, int(active), _now()),
        )

    def set_membership_active(self, collection: str, account_id: str, active: bool) -> None:
        self.db.execute(
            "UPDATE collection_accounts SET active = ? WHERE collection = ? AND account_id = ?",
            (int(active), collection, account_id),
        )

    def remove_membership(self, collection: str, account_id: str) -> None:
        self.db.execute(
            "UPDATE collection_accounts SET removed_at = ? WHERE collection = ? AND account_id = ?",
            (_now(), collection, account_id),
        )

    def memberships(self, collection: str, include_removed: bool = False) -> list[dict]:
        """Accounts of a collection with their membership and account fields."""
        query = """
            SELECT m.collection, m.account_id, m.config_key, m.active, m.added_at, m.removed_at,
                   a.username, a.status, a.profile, a.last_error, a.failures, a.updated_at
            FROM collection_accounts m LEFT JOIN accounts a ON a.account_id = m.account_id
            WHERE m.collection = ?
        """
        if not include_removed:
            query += " AND m.removed_at IS NULL"
        rows = self.db.execute(query + " ORDER BY m.account_id", (collection,))
        return [_account_row(row) for row in rows]

    def resolved_id(self, collection: str, username: str) -> str | None:
        row = self.db.execute(
            "SELECT account_id FROM username_resolutions WHERE collection = ? AND username_lower = ?",
            (collection, username.lower()),
        ).fetchone()
        return row["account_id"] if row else None

    def record_resolution(self, collection: str, username: str, account_id: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO username_resolutions VALUES (?, ?, ?, ?)",
            (collection, username.lower(), account_id, _now()),
        )

    # -- checkpoints -----------------------------------------------------------------------

    def checkpoint(self, collection: str, account_id: str) -> str | None:
        row = self.db.execute(
            "SELECT newest FROM checkpoints WHERE collection = ? AND account_id = ?", (collection, account_id)
        ).fetchone()
        return row["newest"] if row else None

    def set_checkpoint(self, collection: str, account_id: str, newest: str) -> None:
        """Advance the checkpoint; call only after the captures up to `newest` are durable."""
        self.db.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)", (collection, account_id, newest, _now())
        )

    def checkpoints(self, collection: str) -> dict[str, str]:
        rows = self.db.execute("SELECT account_id, newest FROM checkpoints WHERE collection = ?", (collection,))
        return {row["account_id"]: row["newest"] for row in rows}

    def begin_batches(self, collection: str, batches: Iterable[tuple[str, str]], path: Path | None) -> None:
        """Note (account_id, newest) batches about to be written (`path`: the file open now)."""
        now = _now()
        rows = [(collection, account_id, newest, None if path is None else str(path), now) for account_id, newest in batches]
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO pending_batches VALUES (?, ?, ?, ?, ?)", rows)

    def commit_batches(self, collection: str, checkpoints: Iterable[tuple[str, str]]) -> None:
        """The batches are durable: advance each (account_id, newest) checkpoint and forget the
        pending notes, in one transaction."""
        now = _now()
        with self.transaction() as db:
            for account_id, newest in checkpoints:
                db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?)", (collection, account_id, newest, now))
                db.execute(
                    "DELETE FROM pending_batches WHERE collection = ? AND account_id = ?", (collection, account_id)
                )

    def drop_pending_batch(self, collection: str, account_id: str) -> None:
        self.db.execute("DELETE FROM pending_batches WHERE collection = ? AND account_id = ?", (collection, account_id))

    def pending_batches(self, collection: str) -> list[dict]:
        rows = self.db.execute("SELECT * FROM pending_batches WHERE collection = ? ORDER BY account_id", (collection,))
        return [dict(row) for row in rows]

    # -- job runs --------------------------------------------------------------------------

    def start_run(self, job: str, collection: str | None) -> str:
        run_id = uuid.uuid4().hex[:12]
        self.db.execute(
            "INSERT INTO runs (run_id, job, collection, started_at, result, pid) VALUES (?, ?, ?, ?, 'running', ?)",
            (run_id, job, collection, _now(), os.getpid()),
        )
        return run_id

    def finish_run(
        self,
        run_id: str,
        result: str,
        counts: dict | None = None,
        warnings: Iterable[str] = (),
        errors: Iterable[str] = (),
    ) -> None:
        """Close a run: result is ok, warning, failed or interrupted."""
        self.db.execute(
            "UPDATE runs SET ended_at = ?, result = ?, counts = ?, warnings = ?, errors = ? WHERE run_id = ?",
            (_now(), result, json.dumps(counts or {}), json.dumps(list(warnings)), json.dumps(list(errors)), run_id),
        )

    def record_skipped_run(self, job: str, collection: str | None, reason: str) -> str:
        run_id = uuid.uuid4().hex[:12]
        now = _now()
        self.db.execute(
            "INSERT INTO runs (run_id, job, collection, started_at, ended_at, result, warnings, pid) "
            "VALUES (?, ?, ?, ?, ?, 'skipped', ?, ?)",
            (run_id, job, collection, now, now, json.dumps([reason]), os.getpid()),
        )
        return run_id

    def close_abandoned_runs(self) -> int:
        """Mark runs left 'running' by dead processes as interrupted (on daemon start)."""
        abandoned = [
            row["run_id"]
            for row in self.db.execute("SELECT run_id, pid FROM runs WHERE result = 'running'")
            if not pid_alive(row["pid"])
        ]
        for run_id in abandoned:
            self.finish_run(run_id, "interrupted", errors=["the process ended before the run finished"])
        return len(abandoned)

    def run(self, run_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _run_row(row) if row else None

    def last_run(self, collection: str | None, job: str, finished_only: bool = False) -> dict | None:
        query = "SELECT * FROM runs WHERE collection IS ? AND job = ?"
        if finished_only:
            query += " AND result NOT IN ('running', 'skipped')"
        row = self.db.execute(query + " ORDER BY started_at DESC LIMIT 1", (collection, job)).fetchone()
        return _run_row(row) if row else None

    def runs(
        self,
        collection: str | None = None,
        job: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """Runs filtered by collection, job and start time in [start, end), oldest first."""
        clauses, params = [], []
        for column, value in (("collection", collection), ("job", job)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if start is not None:
            clauses.append("started_at >= ?")
            params.append(_iso(start))
        if end is not None:
            clauses.append("started_at < ?")
            params.append(_iso(end))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT * FROM runs {where} ORDER BY started_at"
        if limit is not None:
            query = f"SELECT * FROM ({query} DESC LIMIT {int(limit)}) ORDER BY started_at"
        return [_run_row(row) for row in self.db.execute(query, params)]

    # -- job schedules (the daemon's memory of when each job last ran; see scheduling.py) -----

    def set_job_schedule(self, job_id: str, schedule: str, interval_seconds: float | None, catch_up: bool,
                         now: datetime) -> None:
        """Record a job the daemon schedules (at `now`); a new schedule text restarts `scheduled_since`."""
        self.db.execute(
            """
            INSERT INTO job_schedules (job_id, schedule, interval_seconds, catch_up, scheduled_since, active)
            VALUES (?, ?, ?, ?, ?, 1)
            ON CONFLICT (job_id) DO UPDATE SET
                scheduled_since = CASE WHEN job_schedules.schedule = excluded.schedule
                                       THEN job_schedules.scheduled_since ELSE excluded.scheduled_since END,
                schedule = excluded.schedule, interval_seconds = excluded.interval_seconds,
                catch_up = excluded.catch_up, active = 1
            """,
            (job_id, schedule, interval_seconds, int(catch_up), _iso(now)),
        )

    def update_job_schedule(self, job_id: str, **fields: Any) -> None:
        """Set run facts of a job: pending_since, last_start, last_end, last_result, last_waited, pid, active."""
        allowed = {"pending_since", "last_start", "last_end", "last_result", "last_waited", "pid", "active"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown job schedule fields: {sorted(unknown)}")
        values = [_iso(v) if isinstance(v, datetime) else v for v in fields.values()]
        assignments = ", ".join(f"{key} = ?" for key in fields)
        self.db.execute(f"UPDATE job_schedules SET {assignments} WHERE job_id = ?", (*values, job_id))

    def job_schedules(self, active_only: bool = True) -> list[dict]:
        query = "SELECT * FROM job_schedules" + (" WHERE active = 1" if active_only else "")
        return [_job_schedule_row(row) for row in self.db.execute(query + " ORDER BY job_id")]

    def job_schedule(self, job_id: str) -> dict | None:
        row = self.db.execute("SELECT * FROM job_schedules WHERE job_id = ?", (job_id,)).fetchone()
        return _job_schedule_row(row) if row else None

    # -- URL cache -------------------------------------------------------------------------

    def cached_url(self, url: str) -> dict | None:
        row = self.db.execute("SELECT result FROM url_cache WHERE url = ?", (url,)).fetchone()
        return json.loads(row["result"]) if row else None

    def store_url_result(self, url: str, result: dict) -> None:
        self.db.execute("INSERT OR REPLACE INTO url_cache VALUES (?, ?, ?)", (url, json.dumps(result), _now()))

    def url_line_posts(self, collection: str, url: str) -> set[str]:
        """Ids of the posts whose `url` already has a line in the collection's urls captures."""
        rows = self.db.execute("SELECT tweet_id FROM url_lines WHERE collection = ? AND url = ?", (collection, url))
        return {row["tweet_id"] for row in rows}

    def store_url_lines(self, collection: str, lines: Iterable[tuple[str, list[str]]],
                        results: Iterable[tuple[str, dict]]) -> None:
        """In one transaction: the (url, post ids) of durable urls lines, and results to cache."""
        posts = [(collection, url, tweet_id) for url, ids in lines for tweet_id in ids]
        now = _now()
        cached = [(url, json.dumps(result), now) for url, result in results]
        if posts or cached:
            with self.transaction() as db:
                db.executemany("INSERT OR IGNORE INTO url_lines VALUES (?, ?, ?)", posts)
                db.executemany("INSERT OR REPLACE INTO url_cache VALUES (?, ?, ?)", cached)

    # -- bags ------------------------------------------------------------------------------

    def begin_bag(self, name: str, collection: str, label: str, start: datetime, end: datetime, intent: dict) -> None:
        """Record the intent to build a bag before any file moves (crash recovery reads it)."""
        self.db.execute(
            "INSERT OR REPLACE INTO bags (name, collection, period_label, period_start, period_end, state, "
            "created_at, intent) VALUES (?, ?, ?, ?, ?, 'staging', ?, ?)",
            (name, collection, label, _iso(start), _iso(end), _now(), json.dumps(intent)),
        )

    def update_bag(self, name: str, **fields: Any) -> None:
        allowed = {
            "state", "files", "bytes", "oxum", "duration", "finished_at", "handoff_state", "handoff_error",
            "handoff_at", "intent",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown bag fields: {sorted(unknown)}")
        values = [json.dumps(v) if k == "intent" else v for k, v in fields.items()]
        assignments = ", ".join(f"{key} = ?" for key in fields)
        self.db.execute(f"UPDATE bags SET {assignments} WHERE name = ?", (*values, name))

    def bag(self, name: str) -> dict | None:
        row = self.db.execute("SELECT * FROM bags WHERE name = ?", (name,)).fetchone()
        return _bag_row(row) if row else None

    def bags(self, state: str | None = None, collection: str | None = None) -> list[dict]:
        clauses, params = [], []
        if state is not None:
            clauses.append("state = ?")
            params.append(state)
        if collection is not None:
            clauses.append("collection = ?")
            params.append(collection)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [_bag_row(row) for row in self.db.execute(f"SELECT * FROM bags {where} ORDER BY created_at", params)]

    def delete_bag(self, name: str) -> None:
        self.db.execute("DELETE FROM bags WHERE name = ?", (name,))

    # -- streams ---------------------------------------------------------------------------

    def record_stream_event(self, stream: str, event: str, reason: str | None = None, at: datetime | None = None) -> None:
        """connect, disconnect (with reason), error, stop: the record of when we were not listening."""
        self.db.execute(
            "INSERT INTO stream_events (stream, event, at, reason) VALUES (?, ?, ?, ?)",
            (stream, event, _iso(at) if at else _now(), reason),
        )

    def stream_events(self, stream: str | None = None, since: datetime | None = None) -> list[dict]:
        clauses, params = [], []
        if stream is not None:
            clauses.append("stream = ?")
            params.append(stream)
        if since is not None:
            clauses.append("at >= ?")
            params.append(_iso(since))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return [dict(row) for row in self.db.execute(f"SELECT * FROM stream_events {where} ORDER BY id", params)]

    def last_stream_event(self, stream: str) -> dict | None:
        row = self.db.execute(
            "SELECT * FROM stream_events WHERE stream = ? ORDER BY id DESC LIMIT 1", (stream,)
        ).fetchone()
        return dict(row) if row else None

    def add_stream_counts(
        self, stream: str, collection: str, minute: datetime, messages: int, dropped: int, last_message_at: datetime | None
    ) -> None:
        """Add per-minute message counts (what status sums for 'messages in the last hour')."""
        self.db.execute(
            """
            INSERT INTO stream_counts VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (stream, collection, minute) DO UPDATE SET
                messages = messages + excluded.messages, dropped = dropped + excluded.dropped,
                last_message_at = COALESCE(excluded.last_message_at, stream_counts.last_message_at)
            """,
            (stream, collection, _iso(minute), messages, dropped, _iso(last_message_at)),
        )

    def stream_totals(self, collection: str, since: datetime) -> dict:
        row = self.db.execute(
            "SELECT COALESCE(SUM(messages), 0) AS messages, COALESCE(SUM(dropped), 0) AS dropped, "
            "MAX(last_message_at) AS last_message_at FROM stream_counts WHERE collection = ? AND minute >= ?",
            (collection, _iso(since)),
        ).fetchone()
        last = self.db.execute(
            "SELECT MAX(last_message_at) AS at FROM stream_counts WHERE collection = ?", (collection,)
        ).fetchone()
        return {"messages": row["messages"], "dropped": row["dropped"], "last_message_at": last["at"]}

    def set_stream_cursor(self, stream: str, cursor: int) -> None:
        """Advance a stream's cursor; call only once the captures up to it are durable (never moves back)."""
        self.db.execute(
            "INSERT INTO stream_cursors VALUES (?, ?, ?) ON CONFLICT (stream) DO UPDATE SET "
            "cursor = MAX(cursor, excluded.cursor), updated_at = excluded.updated_at",
            (stream, int(cursor), _now()),
        )

    def stream_cursor(self, stream: str) -> dict | None:
        """{cursor, updated_at} of a stream, or None when it never had one."""
        row = self.db.execute("SELECT cursor, updated_at FROM stream_cursors WHERE stream = ?", (stream,)).fetchone()
        return dict(row) if row else None

    # -- rate limits and usage caps --------------------------------------------------------

    def rate_limits(self) -> list[dict]:
        return [dict(row) for row in self.db.execute(
            "SELECT credential, endpoint, rate_limit, remaining, reset, observed_at FROM rate_limits "
            "ORDER BY credential, endpoint")]

    def change_rate_budget(self, credential: str, endpoint: str, change: BudgetChange) -> Any:
        """Run `change(budget, permits)` on one rate budget in one IMMEDIATE transaction.

        `budget` is the rate_limits row (None when there is none), `permits` the calls in flight
        by id; `change` returns (budget, permits, result) and the differences are written before
        the commit, so two processes never both spend the last call of a window.
        """
        db, key = self._budget_db, (credential, endpoint)
        with _Transaction(db):
            row = db.execute("SELECT rate_limit, remaining, reset, skew FROM rate_limits "
                             "WHERE credential = ? AND endpoint = ?", key).fetchone()
            before = dict(row) if row else None
            permits = {r["permit_id"]: dict(r) for r in db.execute(
                "SELECT permit_id, pid, taken_at FROM rate_permits WHERE credential = ? AND endpoint = ?", key)}
            budget, kept, result = change(before, dict(permits))
            if budget is not None and budget != before:
                db.execute("INSERT OR REPLACE INTO rate_limits (credential, endpoint, rate_limit, remaining, reset, "
                           "observed_at, skew) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (*key, budget["rate_limit"], budget["remaining"], budget["reset"], _now(), budget["skew"]))
            db.executemany("DELETE FROM rate_permits WHERE permit_id = ?", [(p,) for p in permits.keys() - kept.keys()])
            db.executemany("INSERT INTO rate_permits VALUES (?, ?, ?, ?, ?)",
                           [(p, *key, kept[p]["pid"], kept[p]["taken_at"]) for p in kept.keys() - permits.keys()])
        return result

    @property
    def _budget_db(self) -> sqlite3.Connection:
        """This thread's connection for rate budgets: committed without fsync (synchronous=NORMAL
        under WAL), since a budget lost in a power cut is learnt again from the next answer."""
        conn = getattr(self._local, "budget_conn", None)
        if conn is None:
            conn = self._local.budget_conn = self._connect("NORMAL")
        return conn

    def record_rate_limited(self, credential: str, endpoint: str) -> None:
        """Count one HTTP 429 answer (the metrics export the count)."""
        self.db.execute(
            "INSERT INTO rate_limited VALUES (?, ?, 1, ?) ON CONFLICT (credential, endpoint) DO UPDATE SET "
            "responses = responses + 1, last_at = excluded.last_at",
            (credential, endpoint, _now()),
        )

    def rate_limited_counts(self) -> list[dict]:
        return [dict(row) for row in self.db.execute("SELECT * FROM rate_limited ORDER BY credential, endpoint")]

    def set_usage_cap(self, scope: str, resume_at: datetime | None, detail: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO usage_caps VALUES (?, ?, ?, ?)", (scope, _now(), _iso(resume_at), detail)
        )

    def clear_usage_cap(self, scope: str) -> None:
        self.db.execute("DELETE FROM usage_caps WHERE scope = ?", (scope,))

    def usage_caps(self) -> list[dict]:
        return [dict(row) for row in self.db.execute("SELECT * FROM usage_caps ORDER BY scope")]

    # -- daemon facts ----------------------------------------------------------------------

    def set_daemon_values(self, **values: Any) -> None:
        with self.transaction() as db:
            for key, value in values.items():
                db.execute("INSERT OR REPLACE INTO daemon VALUES (?, ?)", (key, json.dumps(value)))

    def daemon_values(self) -> dict[str, Any]:
        return {row["key"]: json.loads(row["value"]) for row in self.db.execute("SELECT * FROM daemon")}

    # -- status queries (index-backed: status must answer fast over a year of runs) ---------

    def jobs_of_collection(self, collection: str) -> list[str]:
        """Distinct job names recorded for a collection, by index seeks (no scan of its runs)."""
        jobs, last = [], ""
        while True:
            row = self.db.execute(
                "SELECT job FROM runs WHERE collection = ? AND job > ? ORDER BY collection, job LIMIT 1",
                (collection, last),
            ).fetchone()
            if row is None:
                return jobs
            last = row["job"]
            jobs.append(last)

    def membership_counts(self) -> dict[str, int]:
        """Current (not removed) accounts per collection."""
        rows = self.db.execute(
            "SELECT collection, COUNT(*) AS n FROM collection_accounts WHERE removed_at IS NULL GROUP BY collection"
        )
        return {row["collection"]: row["n"] for row in rows}

    def accounts_needing_attention(self, min_failures: int = 1, limit: int = 50) -> tuple[int, list[dict]]:
        """(how many, the first `limit`) accounts not 'active' or failing, with their collections."""
        where = "WHERE a.status != 'active' OR a.failures >= ?"
        total = self.db.execute(f"SELECT COUNT(*) FROM accounts a {where}", (min_failures,)).fetchone()[0]
        rows = self.db.execute(
            f"""
            SELECT a.account_id, a.username, a.status, a.failures, a.last_error, a.updated_at,
                   (SELECT group_concat(m.collection) FROM collection_accounts m
                    WHERE m.account_id = a.account_id AND m.removed_at IS NULL) AS collections
            FROM accounts a {where} ORDER BY a.failures DESC, a.status, a.account_id LIMIT ?
            """,
            (min_failures, int(limit)),
        )
        return total, [dict(row) for row in rows]

    def stream_event_before(self, stream: str, at: datetime) -> dict | None:
        """The last stream event before `at` (the connection state at the start of a window)."""
        row = self.db.execute(
            "SELECT * FROM stream_events WHERE stream = ? AND at < ? ORDER BY at DESC, id DESC LIMIT 1",
            (stream, _iso(at)),
        ).fetchone()
        return dict(row) if row else None

    def stream_recent(self, collection: str, since: datetime) -> dict:
        """Messages and drops of a collection since `since`, and its last message time."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(messages), 0) AS messages, COALESCE(SUM(dropped), 0) AS dropped "
            "FROM stream_counts WHERE collection = ? AND minute >= ?",
            (collection, _iso(since)),
        ).fetchone()
        last = self.db.execute(
            "SELECT last_message_at FROM stream_counts WHERE collection = ? AND last_message_at IS NOT NULL "
            "ORDER BY minute DESC LIMIT 1",
            (collection,),
        ).fetchone()
        return {"messages": row["messages"], "dropped": row["dropped"], "last_message_at": last[0] if last else None}

    def bag_summary(self) -> dict:
        """Counts of bags per state, the last handoff and the failed handoffs (for status)."""
        states = {row["state"]: row["n"] for row in self.db.execute("SELECT state, COUNT(*) AS n FROM bags GROUP BY state")}
        last = self.db.execute(
            "SELECT * FROM bags WHERE handoff_at IS NOT NULL ORDER BY handoff_at DESC LIMIT 1"
        ).fetchone()
        if last is None:
            last = self.db.execute(
                "SELECT * FROM bags WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1"
            ).fetchone()
        failures = self.db.execute(
            "SELECT * FROM bags WHERE handoff_state = 'failed' ORDER BY created_at DESC LIMIT 20"
        ).fetchall()
        return {
            "by_state": states,
            "last": _bag_row(last) if last else None,
            "handoff_failures": [_bag_row(row) for row in failures],
        }


class _Transaction:
    """`with store.transaction() as db:` runs the block in one IMMEDIATE transaction."""

    def __init__(self, db: sqlite3.Connection):
        self.conn = db

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]


def pid_alive(pid: int | None) -> bool:
    """True when a process with that pid exists (used to find runs and files of dead processes)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _account_row(row: sqlite3.Row) -> dict:
    record = dict(row)
    if "profile" in record:
        record["profile"] = _loads(record["profile"])
    if "active" in record:
        record["active"] = bool(record["active"])
    return record


def _run_row(row: sqlite3.Row) -> dict:
    record = dict(row)
    record["counts"] = _loads(record["counts"], {})
    record["warnings"] = _loads(record["warnings"], [])
    record["errors"] = _loads(record["errors"], [])
    return record


def _job_schedule_row(row: sqlite3.Row) -> dict:
    record = dict(row)
    record["catch_up"] = bool(record["catch_up"])
    record["active"] = bool(record["active"])
    return record


def _bag_row(row: sqlite3.Row) -> dict:
    record = dict(row)
    record["intent"] = _loads(record["intent"], {})
    return record
