"""How long `status` takes on a big state database: 10,000 accounts and a year of runs.

Builds a state store in a temporary folder (bulk rows go in through the store's connection in
one transaction, far faster than a year of real runs) and a configuration listing all 10,000
accounts, then times `status.collect` in-process and `sfm-archiver status --json` as a
subprocess (what an operator or a monitoring check waits for; bytecode cached, as after
`pip install`), with the configuration view the daemon records, and again after the file was
touched (status then parses the YAML). The baseline is the same measurement on an empty state
store, so the ratio shows what the data volume costs. Target: under 0.5 s.

    python benchmarks/status.py            # 20 collections, 10,000 accounts, a year of runs
    python benchmarks/status.py --quick    # a month of runs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sfm_archiver.config import load_config
from sfm_archiver.state import StateStore
from sfm_archiver.status import collect, view_record

TIMELINES = 16
STREAMS = 4
ACCOUNTS = 10_000
TARGET_SECONDS = 0.5


def write_config(root: Path) -> Path:
    lines = [
        "paths: {archive: archive, state: state, outbox: outbox}",
        "x: {bearer_token: benchmark-token, api_base_url: 'http://127.0.0.1:9'}",
        "bagging: {period: day, grace: 2h}",
        "collections:",
    ]
    per = ACCOUNTS // TIMELINES
    for n in range(TIMELINES):  # every account listed, as an archive's real file would
        lines += [f"  - name: timeline-{n:02d}", "    type: timeline", "    schedule: every 15m", "    accounts:"]
        lines += [f"      - {{id: \"{1000000 + n * per + i}\"}}" for i in range(per)]
    for n in range(STREAMS):
        if n % 2:
            lines.append(f"  - {{name: stream-{n:02d}, type: sample_stream}}")
        else:
            lines.append(f"  - {{name: stream-{n:02d}, type: filter_stream, rules: [{{value: 'topic{n}', tag: t{n}}}]}}")
    path = root / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def populate(store: StateStore, now: datetime, days: int, rng: random.Random) -> dict:
    """Accounts, runs every 15 minutes per timeline, per-minute stream counts, events, bags, job records."""
    iso = lambda moment: moment.isoformat(timespec="milliseconds")  # noqa: E731
    counts = {"accounts": 0, "runs": 0, "stream_minutes": 0, "stream_events": 0, "bags": 0}
    per = ACCOUNTS // TIMELINES
    statuses = ["active"] * 97 + ["suspended", "protected", "deactivated"]
    with store.transaction() as db:
        for n in range(TIMELINES):
            rows, members = [], []
            for i in range(per):
                account_id = str(1000000 + n * per + i)
                failures = 5 if rng.random() < 0.002 else 0
                rows.append((account_id, f"user{account_id}", rng.choice(statuses), iso(now), "boom" if failures else None, failures))
                members.append((f"timeline-{n:02d}", account_id, f"id:{account_id}", iso(now)))
            db.executemany("INSERT INTO accounts (account_id, username, status, updated_at, last_error, failures) VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany("INSERT INTO collection_accounts (collection, account_id, config_key, added_at) VALUES (?, ?, ?, ?)", members)
            counts["accounts"] += per
        start = now - timedelta(days=days)
        for n in range(TIMELINES):
            name = f"timeline-{n:02d}"
            rows = []
            moment = start
            while moment < now:
                for job, every in (("user_timeline", 1), ("sync_accounts", 96), ("update_usernames", 96 * 7), ("fetch_urls", 96)):
                    if rows and len(rows) % every:
                        continue
                    run_id = f"{n:02d}{len(rows):010d}{job[:2]}"
                    rows.append((run_id, job, name, iso(moment), iso(moment + timedelta(seconds=40)), "ok",
                                 json.dumps({"posts": rng.randint(0, 500), "pages": 3}), "[]", "[]", 1))
                moment += timedelta(minutes=15)
            db.executemany("INSERT INTO runs (run_id, job, collection, started_at, ended_at, result, counts, warnings, errors, pid) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            counts["runs"] += len(rows)
            bags = [(f"{name}_{(start + timedelta(days=d)).date()}", name, str((start + timedelta(days=d)).date()),
                     iso(start + timedelta(days=d)), iso(start + timedelta(days=d + 1)), "done", iso(start + timedelta(days=d + 1, hours=3)),
                     iso(start + timedelta(days=d + 1, hours=3)), "done", iso(start + timedelta(days=d + 1, hours=3)), "{}")
                    for d in range(days - 1)]
            db.executemany("INSERT INTO bags (name, collection, period_label, period_start, period_end, state, created_at, finished_at, "
                           "handoff_state, handoff_at, intent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", bags)
            counts["bags"] += len(bags)
        for n in range(STREAMS):
            name = f"stream-{n:02d}"
            minute = start.replace(second=0, microsecond=0)
            rows = []
            while minute < now:
                rows.append((name, name, iso(minute), rng.randint(100, 400), 0, iso(minute + timedelta(seconds=59))))
                minute += timedelta(minutes=1)
            db.executemany("INSERT INTO stream_counts VALUES (?, ?, ?, ?, ?, ?)", rows)
            counts["stream_minutes"] += len(rows)
        for connection in (f"stream-{n:02d}" for n in range(STREAMS)):
            events, moment = [], start
            while moment < now:
                events.append((connection, "disconnect", iso(moment), "operational-disconnect"))
                events.append((connection, "connect", iso(moment + timedelta(seconds=rng.randint(1, 90))), None))
                moment += timedelta(hours=rng.randint(1, 12))
            db.executemany("INSERT INTO stream_events (stream, event, at, reason) VALUES (?, ?, ?, ?)", events)
            counts["stream_events"] += len(events)
        jobs = [(f"timeline:timeline-{n:02d}", "every 15m", 900.0) for n in range(TIMELINES)]
        jobs += [("update-usernames", "0 3 * * 6", None), ("fetch-urls", "15 1 * * *", None), ("bag", "20 * * * *", None)]
        for job_id, schedule, interval in jobs:  # the daemon's job records, which status turns into next runs
            store.set_job_schedule(job_id, schedule, interval, True, start)
            store.update_job_schedule(job_id, last_start=now - timedelta(minutes=5), last_end=now, last_result="ok", pid=os.getpid())
        db.execute("INSERT OR REPLACE INTO daemon VALUES ('pid', ?)", (json.dumps(os.getpid()),))
        db.execute("INSERT OR REPLACE INTO daemon VALUES ('state', ?)", (json.dumps("running"),))
        db.execute("INSERT OR REPLACE INTO daemon VALUES ('heartbeat_at', ?)", (json.dumps(iso(now)),))
        db.execute("INSERT OR REPLACE INTO daemon VALUES ('started_at', ?)", (json.dumps(iso(start)),))
    return counts


def time_collect(config_path: Path, repeat: int) -> list[float]:
    config = load_config(config_path)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        collect(config)
        times.append(time.perf_counter() - began)
    return times


def cli_environment(cache: Path) -> dict:
    """As after `pip install`: bytecode compiled once and reused (kept in `cache`, not the tree)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def run_child(args: list[str], env: dict) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, exit code) of one child process.

    CPU time (user + system) is what the command costs; wall time also holds the waiting for a
    core on a busy machine, so both are shown.
    """
    began = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1, 2):
        raise SystemExit(f"{args} failed: {child.stderr.read().decode()}")
    child.stderr.close()
    return wall, usage.ru_utime + usage.ru_stime, child.returncode


def time_cli(config_path: Path, repeat: int, env: dict) -> tuple[float, float]:
    """Median wall and CPU seconds of `sfm-archiver status --json`."""
    args = [sys.executable, "-m", "sfm_archiver", "--config", str(config_path), "status", "--json"]
    run_child(args, env)  # warm-up: writes the bytecode cache
    runs = [run_child(args, env) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def time_cli_fixed_cost(repeat: int, env: dict) -> tuple[float, float]:
    """`sfm-archiver --version`: interpreter start plus the command line's imports, no work."""
    runs = [run_child([sys.executable, "-m", "sfm_archiver", "--version"], env) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a month of runs instead of a year")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    days = 30 if args.quick else 365
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        empty_root = root / "empty"
        empty_root.mkdir()
        empty_config = write_config(empty_root)
        empty = StateStore(empty_root / "state")
        empty.set_daemon_values(config_view=view_record(load_config(empty_config), empty_config.stat()))
        empty.close()
        big_config = write_config(root)
        store = StateStore(root / "state")
        began = time.perf_counter()
        counts = populate(store, datetime.now(timezone.utc), days, rng)
        store.set_daemon_values(config_view=view_record(load_config(big_config), big_config.stat()))
        store.close()
        build = time.perf_counter() - began
        size = (root / "state" / "state.sqlite3").stat().st_size
        print(f"state store: {counts['accounts']:,} accounts, {counts['runs']:,} runs over {days} days, "
              f"{counts['stream_minutes']:,} stream minutes, {counts['stream_events']:,} stream events, {counts['bags']:,} bags; "
              f"{size / 1e6:.0f} MB, built in {build:.1f} s")
        base_collect = statistics.median(time_collect(empty_config, args.repeat))
        big_collect = statistics.median(time_collect(big_config, args.repeat))
        env = cli_environment(root / "pycache")
        base_wall, base_cpu = time_cli(empty_config, args.repeat, env)
        big_wall, big_cpu = time_cli(big_config, args.repeat, env)
        fixed_wall, fixed_cpu = time_cli_fixed_cost(args.repeat, env)
        os.utime(big_config)  # as after an edit not yet reloaded: the 10,000-account YAML is parsed
        edited_wall, edited_cpu = time_cli(big_config, args.repeat, env)
    print(f"status.collect   empty store {base_collect * 1000:7.1f} ms   big store {big_collect * 1000:7.1f} ms   "
          f"ratio {big_collect / base_collect:5.1f}x")
    print(f"status --json    empty store {base_wall * 1000:7.1f} ms wall {base_cpu * 1000:6.1f} ms CPU   "
          f"big store {big_wall * 1000:7.1f} ms wall {big_cpu * 1000:6.1f} ms CPU   ratio {big_cpu / base_cpu:4.1f}x (CPU)")
    print(f"status --json    big store, config file edited since the daemon loaded it (YAML parsed): "
          f"{edited_wall * 1000:.1f} ms wall, {edited_cpu * 1000:.1f} ms CPU")
    print(f"sfm-archiver --version (interpreter + CLI imports, the fixed cost of any command): "
          f"{fixed_wall * 1000:.1f} ms wall, {fixed_cpu * 1000:.1f} ms CPU")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
          "(wall time includes waiting for a core; CPU time is what status costs)")
    verdict = "within" if big_cpu < TARGET_SECONDS else "OVER"
    print(f"status --json on the big store: {big_cpu:.3f} s of CPU ({big_wall:.3f} s wall), {verdict} the {TARGET_SECONDS} s target")
    return 0 if big_cpu < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
