"""`sfm-archiver status`: health and progress from the state store and filesystem metadata.

It never reads capture contents: the daemon's heartbeat and facts, run records, account
states, stream counters, rate limits and bag records come from the state database; free space
comes from statvfs; pending periods and the outbox from folder listings. So it answers in well
under half a second however large the archive is (benchmarks/status.py).

The JSON form is a contract: top-level keys `overall` (ok | warning | critical), `daemon`,
`collections`, `accounts`, `disk`, `bags`, plus `api`, `jobs`, `problems` and `generated_at`.
The exit code follows the monitoring-plugin convention: 0 ok, 1 warning, 2 critical.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import yaml

from sfm_archiver import diskguard
from sfm_archiver.bagging.periods import bag_name, folders_by_period
from sfm_archiver.config import Bagging, Config, Disk, Paths, Schedule, load_config_text
from sfm_archiver.errors import ConfigError
from sfm_archiver.scheduling import due_of
from sfm_archiver.state import STATE_FILE, StateStore, pid_alive
from sfm_archiver.storage import layout
from sfm_archiver.streams.gaps import cursor_status, stream_status, unrouted_status
from sfm_archiver.timeutil import parse_timestamp, utcnow

OK, WARNING, CRITICAL = diskguard.OK, diskguard.WARNING, diskguard.CRITICAL
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2}
HEARTBEAT_STALE_SECONDS = 30.0
FAILING_ACCOUNT_FAILURES = 3
STREAM_DOWN_WARNING_SECONDS = 300.0
ATTENTION_LIMIT = 50
MAIN_JOB = {"timeline": "user_timeline", "filter_stream": "filter_stream", "sample_stream": "sample_stream", "jetstream": "jetstream"}


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


@dataclass(frozen=True)
class CollectionView:
    """What status needs of a collection (not its 10,000 account entries)."""

    name: str
    type: str
    schedule: Schedule | None
    accounts: int
    active_accounts: int
    platform: str = "x"


@dataclass(frozen=True)
class ConfigView:
    """What status needs of a configuration; the daemon stores it, so status can skip the YAML."""

    source: Path
    paths: Paths
    disk: Disk
    bagging: Bagging
    collections: tuple[CollectionView, ...]


def view_of(config: Config) -> ConfigView:
    return ConfigView(
        source=config.source,
        paths=config.paths,
        disk=config.disk,
        bagging=Bagging(period=config.bagging.period, grace=config.bagging.grace),
        collections=tuple(
            CollectionView(c.name, c.type, c.schedule, len(c.accounts), sum(1 for a in c.accounts if a.active), c.platform)
            for c in config.collections
        ),
    )


def view_record(config: Config, stat: os.stat_result) -> dict:
    """The view as plain data, keyed by the file's identity when it was read (daemon -> state store)."""
    view = view_of(config)
    return {
        "file": {"path": str(view.source), "mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "inode": stat.st_ino},
        "paths": {key: str(getattr(view.paths, key)) for key in ("archive", "state", "outbox")},
        "disk": {"warning_free": view.disk.warning_free, "min_free": view.disk.min_free},
        "bagging": {"period": view.bagging.period, "grace_seconds": view.bagging.grace.total_seconds()},
        "collections": [
            {"name": c.name, "platform": c.platform, "type": c.type, "schedule": c.schedule.text if c.schedule else None,
             "interval_seconds": c.schedule.interval.total_seconds() if c.schedule and c.schedule.interval else None,
             "accounts": c.accounts, "active_accounts": c.active_accounts}
            for c in view.collections
        ],
    }


def view_from_record(record: dict) -> ConfigView:
    return ConfigView(
        source=Path(record["file"]["path"]),
        paths=Paths(**{key: Path(value) for key, value in record["paths"].items()}),
        disk=Disk(**record["disk"]),
        bagging=Bagging(period=record["bagging"]["period"], grace=timedelta(seconds=record["bagging"]["grace_seconds"])),
        collections=tuple(
            CollectionView(c["name"], c["type"], _schedule(c), c["accounts"], c["active_accounts"], c.get("platform", "x"))
            for c in record["collections"]
        ),
    )


def _schedule(record: dict) -> Schedule | None:
    """Rebuilt without apscheduler (its import alone costs status a fifth of a second)."""
    if not record["schedule"]:
        return None
    interval = record.get("interval_seconds")
    return Schedule(record["schedule"], timedelta(seconds=interval) if interval else None)


def load_for_reading(path: Path, environ: dict | None = None) -> tuple[ConfigView, list[str]]:
    """The configuration to report on, and the problems of the file on disk (empty when valid).

    Fast path: when the file is the very one the daemon loaded (same path, inode, size and
    mtime), its stored view is used and the YAML is not parsed (a 10,000-account file takes
    longer to build than the whole rest of status). Otherwise the file is loaded; reading needs
    no secrets: they are neither read nor required, and `${VAR}` references unset in this shell
    (the token variable lives in the service's environment) expand to nothing. When the file
    is invalid (an edit in progress, a refused reload), the report is made on the configuration
    the daemon runs, kept in the state store with secrets redacted; with no such copy the
    problems are raised.
    """
    path = Path(path)
    try:
        stat = path.stat()
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the configuration: {error.strerror or error}"]) from None
    state_dir = _state_dir_of(text, path, lenient_environ(text, environ))
    values = _daemon_values(state_dir)
    stored = values.get("config_view")
    if stored and stored["file"] == {"path": str(path), "mtime_ns": stat.st_mtime_ns, "size": stat.st_size, "inode": stat.st_ino}:
        return view_from_record(stored), []
    try:
        return view_of(_load_text(text, path, environ)), []
    except ConfigError as error:
        problems = error.problems
    running = values.get("config_text")
    if not running:
        raise ConfigError(problems)
    return view_of(_load_text(running, path, environ)), problems


def _daemon_values(state_dir: Path | None) -> dict:
    if state_dir is None or not (state_dir / STATE_FILE).exists():
        return {}
    store = StateStore(state_dir)
    try:
        return store.daemon_values()
    finally:
        store.close()


def load_without_secrets(path: Path, environ: dict | None = None) -> Config:
    """The whole configuration, without reading or requiring secrets (backup, reading tools)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"{path}: cannot read the configuration: {error.strerror or error}"]) from None
    return _load_text(text, Path(path), environ)


def _load_text(text: str, path: Path, environ: dict | None) -> Config:
    return load_config_text(text, path, lenient_environ(text, environ), check_paths=False, read_secrets=False)


def lenient_environ(text: str, environ: dict | None) -> dict:
    environ = dict(os.environ if environ is None else environ)
    for name in _ENV_REF.findall(text):
        environ.setdefault(name, "")
    return environ


def _state_dir_of(text: str, path: Path, environ: dict) -> Path | None:
    """paths.state, read from the first YAML events only (the file may be huge, or invalid further on)."""
    state = _section_scalar(text, "paths", "state")
    if state is None:
        return None
    state = Path(_ENV_REF.sub(lambda m: environ.get(m.group(1), ""), state)).expanduser()
    return state if state.is_absolute() else path.parent.resolve() / state


def _section_scalar(text: str, section: str, key: str) -> str | None:
    """The scalar at top-level `section:` -> `key:`, scanning parse events until it is found."""
    stack: list[dict] = []
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for event in yaml.parse(text, Loader=loader):
            top = stack[-1] if stack else None
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                owner = top["key"] if top and top["kind"] == "map" and not top["expect_key"] else None
                stack.append({"kind": "map" if isinstance(event, yaml.MappingStartEvent) else "seq",
                              "expect_key": True, "key": None, "owner": owner})
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                done = stack.pop()
                if len(stack) == 1 and done["owner"] == section:
                    return None
                if stack and stack[-1]["kind"] == "map":
                    stack[-1]["expect_key"] = True
            elif isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent)) and top and top["kind"] == "map":
                if top["expect_key"]:
                    top["key"], top["expect_key"] = getattr(event, "value", None), False
                    continue
                if len(stack) == 2 and top["owner"] == section and top["key"] == key and isinstance(event, yaml.ScalarEvent):
                    return event.value
                top["expect_key"] = True
    except yaml.YAMLError:
        return None
    return None


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, level: str, message: str) -> None:
        self.items.append({"level": level, "message": message})

    @property
    def overall(self) -> str:
        return diskguard.worst(item["level"] for item in self.items)


def collect(
    config: Config | ConfigView, now: datetime | None = None, statvfs: Callable = os.statvfs, config_problems: list[str] = ()
) -> dict:
    """The whole report as plain data (what `--json` prints).

    `config_problems`: what is wrong with the configuration file on disk (load_for_reading).
    """
    now = now or utcnow()
    config = config if isinstance(config, ConfigView) else view_of(config)
    problems = _Problems()
    if config_problems:
        problems.add(WARNING, "the configuration file is invalid (a reload would be refused): " + "; ".join(config_problems))
    store = _open_store(config)
    try:
        daemon = _daemon(store, now, problems)
        members = store.membership_counts() if store is not None else {}
        jobs = _jobs(store, daemon, now)
        report = {
            "overall": OK,
            "generated_at": _iso(now),
            "daemon": daemon,
            "collections": [_collection(store, c, members, daemon, now, problems, jobs) for c in config.collections],
            "accounts": _accounts(store, problems),
            "api": _api(store, now, problems),
            "disk": _disk(config, statvfs, problems),
            "bags": _bags(store, config, now, problems),
            "unrouted": unrouted_status(store, now),  # stream messages of no collection being captured
            "jobs": jobs,
        }
        if report["unrouted"]["messages_last_24h"]:
            problems.add(WARNING, f"{report['unrouted']['messages_last_24h']} stream messages in the last 24 h matched no "
                         f"collection being captured: kept in {config.paths.archive}/{layout.UNROUTED}/")
    finally:
        if store is not None:
            store.close()
    report["problems"] = problems.items
    report["overall"] = problems.overall
    return report


def exit_code(report: dict) -> int:
    return EXIT_CODES[report["overall"]]


def _open_store(config: ConfigView) -> StateStore | None:
    if not (config.paths.state / STATE_FILE).exists():
        return None
    return StateStore(config.paths.state)


# -- sections ------------------------------------------------------------------------------


def _daemon(store: StateStore | None, now: datetime, problems: _Problems) -> dict:
    values = store.daemon_values() if store is not None else {}
    pid = values.get("pid")
    heartbeat = _parse(values.get("heartbeat_at"))
    age = (now - heartbeat).total_seconds() if heartbeat else None
    state = values.get("state") or "never started"
    alive = bool(pid) and state in ("starting", "running", "stopping") and pid_alive(pid)
    responding = alive and age is not None and age <= HEARTBEAT_STALE_SECONDS
    if not values:
        problems.add(CRITICAL, "the daemon has never run with this configuration (start it: systemctl start sfm-archiver)")
    elif not alive:
        problems.add(CRITICAL, f"the daemon is not running (last state: {state}, pid {pid})")
    elif not responding:
        problems.add(CRITICAL, f"the daemon (pid {pid}) has not written a heartbeat for {_age(age)}")
    reload_error = values.get("last_reload_error")
    if reload_error:
        problems.add(WARNING, "the last reload failed; the daemon runs on the previous configuration: " + "; ".join(reload_error.get("problems", [])))
    if values.get("disk_paused") and alive:
        problems.add(CRITICAL, "harvesting is paused: free disk space is below disk.min_free")
    return {
        "pid": pid,
        "alive": alive,
        "responding": responding,
        "state": state if alive or state in ("stopped", "never started") else "dead",
        "version": values.get("version"),
        "started_at": values.get("started_at"),
        "uptime_seconds": _seconds_since(values.get("started_at"), now) if alive else None,
        "heartbeat_at": values.get("heartbeat_at"),
        "heartbeat_age_seconds": None if age is None else round(age, 1),
        "config_path": values.get("config_path"),
        "config_loaded_at": values.get("config_loaded_at"),
        "last_reload_error": reload_error,
        "stopped_at": values.get("stopped_at"),
        "running_jobs": values.get("running_jobs", []) if alive else [],
        "next_runs": values.get("next_runs", {}) if alive else {},
    }


def _collection(
    store: StateStore | None,
    collection: CollectionView,
    members: dict[str, int],
    daemon: dict,
    now: datetime,
    problems: _Problems,
    scheduled: list[dict] = (),
) -> dict:
    jobs = {}
    if store is not None:
        for job in store.jobs_of_collection(collection.name):
            jobs[job] = _run_summary(store.last_run(collection.name, job))
    main = jobs.get(MAIN_JOB[collection.type]) or _latest(jobs.values())
    skipped = None
    if main and main["result"] == "skipped":
        skipped, main = main, _run_summary(store.last_run(collection.name, main["job"], finished_only=True)) or main
    entry = {
        "name": collection.name,
        "platform": collection.platform,
        "type": collection.type,
        "schedule": collection.schedule.text if collection.schedule else None,
        "last_run": main,
        "next_run": _next_run(collection, scheduled) if collection.type == "timeline" else None,
        "jobs": jobs,
    }
    if collection.type == "timeline":
        entry["accounts"] = {
            "configured": collection.accounts,
            "active_in_config": collection.active_accounts,
            "tracked": members.get(collection.name, 0),
        }
    else:
        entry["stream"] = _stream(store, collection, now, daemon, problems)
    for job, run in jobs.items():
        if run and run["result"] == "failed":
            problems.add(WARNING, f"{collection.name}: the last {job} run failed: {'; '.join(run['errors'][:2])}")
    entry["last_skipped"] = skipped
    return entry


def _run_summary(run: dict | None) -> dict | None:
    if run is None:
        return None
    return {
        "run_id": run["run_id"],
        "job": run["job"],
        "started_at": run["started_at"],
        "ended_at": run["ended_at"],
        "result": run["result"],
        "counts": run["counts"],
        "warnings": run["warnings"][:5],
        "warning_count": len(run["warnings"]),
        "errors": run["errors"][:5],
        "error_count": len(run["errors"]),
    }


def _latest(runs) -> dict | None:
    runs = [run for run in runs if run]
    return max(runs, key=lambda run: run["started_at"]) if runs else None


def _next_run(collection: CollectionView, scheduled: list[dict]) -> str | None:
    """When the daemon runs the collection's timeline job next (the `jobs` entry of that job)."""
    job = next((job for job in scheduled if job["job_id"] == f"timeline:{collection.name}"), None)
    return job["next_run"] if job else None


def _jobs(store: StateStore | None, daemon: dict, now: datetime) -> list[dict]:
    """Each scheduled job's last run and next run, from the daemon's record (scheduling.py).

    The next run is computed by the function the daemon schedules with, so it reads the same
    before and after a restart; a job the daemon owes (overdue, or missed while it was down)
    shows as due now.
    """
    if store is None:
        return []
    jobs = []
    for record in store.job_schedules():
        mine = daemon.get("alive") and record["pid"] == daemon.get("pid")
        state, result = "idle", record["last_result"]
        if mine and record["pending_since"]:
            state = "waiting"
        elif result == "running":
            state, result = ("running", result) if mine else ("idle", "interrupted")
        jobs.append({
            "job_id": record["job_id"],
            "schedule": record["schedule"],
            "catch_up": record["catch_up"],
            "state": state,
            "waiting_since": record["pending_since"] if state == "waiting" else None,
            "last_start": record["last_start"],
            "last_end": record["last_end"],
            "last_result": result,
            "last_waited_seconds": record["last_waited"],
            "next_run": _iso(due_of(record, now)),
        })
    return jobs


def _stream(store: StateStore | None, collection: CollectionView, now: datetime, daemon: dict, problems: _Problems) -> dict:
    """Connection state, messages and gaps of one stream collection (events are per collection)."""
    if store is None:
        return {"connected": False, "messages_last_hour": 0, "dropped_last_hour": 0, "last_message_at": None,
                "last_message_age_seconds": None, "disconnected_seconds_24h": None, "last_event": None}
    alive = bool(daemon.get("alive", False))
    stream = stream_status(store, collection.name, now, alive)
    connected, last_event = stream["connected"], stream["last_event"]
    if alive and not connected:
        since = _parse(last_event["at"]) if last_event else None
        gap = (now - since).total_seconds() if since else None
        if gap is None or gap > STREAM_DOWN_WARNING_SECONDS:
            problems.add(WARNING, f"{collection.name}: the stream is not connected" + (f" (for {_age(gap)})" if gap else ""))
    if stream["dropped_last_hour"]:
        problems.add(WARNING, f"{collection.name}: {stream['dropped_last_hour']} stream messages dropped in the last hour "
                     "(disk or buffer)")
    shown = {key: value for key, value in stream.items() if key != "state"}
    if collection.type == "jetstream":
        shown.update(cursor_status(store, collection.name, now))
    return shown


def _accounts(store: StateStore | None, problems: _Problems) -> dict:
    if store is None:
        return {"total": 0, "by_state": {}, "attention_total": 0, "attention": []}
    by_state = store.account_status_counts()
    total, attention = store.accounts_needing_attention(limit=ATTENTION_LIMIT)
    for account in attention:
        account["reason"] = "failing" if account["failures"] >= FAILING_ACCOUNT_FAILURES else account["status"]
        account["collections"] = (account["collections"] or "").split(",") if account["collections"] else []
    failing = [a for a in attention if a["reason"] == "failing"]
    if failing:
        first = failing[0]
        problems.add(WARNING, f"{len(failing)} account(s) failing repeatedly, e.g. {first['username'] or first['account_id']}: {first['last_error']}")
    return {"total": sum(by_state.values()), "by_state": by_state, "attention_total": total, "attention": attention}


def _api(store: StateStore | None, now: datetime, problems: _Problems) -> dict:
    if store is None:
        return {"rate_limits": [], "usage_caps": []}
    caps = store.usage_caps()
    for cap in caps:
        resume = _parse(cap.get("resume_at"))
        if resume is None or resume > now:
            problems.add(WARNING, f"usage cap reached ({cap['scope']}): harvesting pauses until {cap.get('resume_at') or 'the cap period ends'}")
    limits = []
    for entry in store.rate_limits():
        reset = entry.get("reset")
        limits.append({**entry, "reset_at": _iso(datetime.fromtimestamp(reset, timezone.utc)) if reset else None})
    return {"rate_limits": limits, "usage_caps": caps}


def _disk(config: ConfigView, statvfs: Callable, problems: _Problems) -> dict:
    report = diskguard.report(config, statvfs)
    for name, space in report["paths"].items():
        if space["level"] == CRITICAL:
            detail = space["error"] or f"{diskguard.human_size(space['free_bytes'])} free, below disk.min_free"
            problems.add(CRITICAL, f"disk: {name} {space['path']}: {detail}")
        elif space["level"] == WARNING:
            problems.add(WARNING, f"disk: {name} {space['path']}: {diskguard.human_size(space['free_bytes'])} free, below disk.warning_free")
    return report


def _bags(store: StateStore | None, config: ConfigView, now: datetime, problems: _Problems) -> dict:
    summary = store.bag_summary() if store is not None else {"by_state": {}, "last": None, "handoff_failures": []}
    pending = pending_periods(config, now, lambda name: store is not None and _bagged(store, name))
    late = [p for p in pending if _parse(p["end"]) + config.bagging.grace + timedelta(days=1) < now]
    if late:
        problems.add(WARNING, f"bagging is behind: {len(late)} complete period(s) ended more than a day ago, oldest {late[0]['collection']} {late[0]['label']}")
    for failure in summary["handoff_failures"][:1]:
        problems.add(WARNING, f"handoff of {failure['name']} failed: {failure.get('handoff_error')}")
    outbox = _outbox_listing(config.paths.outbox)
    last = summary["last"]
    return {
        "period": config.bagging.period,
        "grace_seconds": config.bagging.grace.total_seconds(),
        "pending_count": len(pending),
        "pending": pending[:50],
        "outbox_count": len(outbox["bags"]),
        "staging_count": outbox["staging"],
        "by_state": summary["by_state"],
        "last_handoff": None if last is None else {
            "name": last["name"], "state": last["state"], "handoff_state": last.get("handoff_state"),
            "finished_at": last.get("finished_at"), "handoff_at": last.get("handoff_at"),
        },
        "handoff_failures": [
            {"name": b["name"], "error": b.get("handoff_error"), "at": b.get("handoff_at")} for b in summary["handoff_failures"]
        ],
    }


def _bagged(store: StateStore, name: str) -> bool:
    bag = store.bag(name)
    return bag is not None and bag["state"] == "done"


def pending_periods(config: Config | ConfigView, now: datetime, bagged: Callable[[str], bool]) -> list[dict]:
    """Complete periods still in the archive and not yet bagged: a listing of hour folders only.

    A period whose bag is done but which has files again (a late writer) is listed too: the
    bagger reports it as a conflict, and an operator should look.
    """
    unit = config.bagging.period
    found: dict[tuple[str, str], dict] = {}
    for collection in config.collections:
        root = config.paths.archive / collection.name
        for period, folders in folders_by_period(root, unit).items():
            if period.end + config.bagging.grace > now:
                continue
            if bagged(bag_name(collection.name, period)) and not any(any(os.scandir(f)) for f in folders):
                continue
            found[(collection.name, period.label)] = {
                "collection": collection.name, "label": period.label, "start": _iso(period.start), "end": _iso(period.end),
            }
    return sorted(found.values(), key=lambda p: (p["start"], p["collection"]))


def _outbox_listing(outbox: Path) -> dict:
    bags, staging = [], 0
    try:
        with os.scandir(outbox) as entries:
            for entry in entries:
                if entry.name == ".staging":
                    staging = sum(1 for _ in os.scandir(entry.path))
                elif not entry.name.startswith("."):
                    bags.append(entry.name)
    except OSError:
        pass
    return {"bags": bags, "staging": staging}


# -- text rendering --------------------------------------------------------------------------


def render_text(report: dict) -> str:
    """The compact table `sfm-archiver status` prints."""
    lines = [f"sfm-archiver status: {report['overall'].upper()}   ({report['generated_at']})"]
    lines += _render_daemon(report["daemon"])
    lines.append("")
    lines += _render_collections(report["collections"])
    lines.append("")
    lines += _render_jobs(report.get("jobs", []))
    lines += _render_accounts(report["accounts"])
    lines += _render_api(report["api"])
    lines += _render_disk(report["disk"])
    lines += _render_bags(report["bags"])
    if report["unrouted"]["messages_total"]:
        lines.append(f"unrouted  {report['unrouted']['messages_total']} stream messages kept in {layout.UNROUTED}/ "
                     f"({report['unrouted']['messages_last_24h']} in the last 24 h)")
    if report["problems"]:
        lines.append("")
        lines.append("problems:")
        lines += [f"  {p['level']:<8} {p['message']}" for p in report["problems"]]
    return "\n".join(lines)


def _render_daemon(daemon: dict) -> list[str]:
    if daemon["alive"]:
        head = (
            f"daemon    {daemon['state']}, pid {daemon['pid']}, up {_age(daemon['uptime_seconds'])}, "
            f"heartbeat {_age(daemon['heartbeat_age_seconds'])} ago, config loaded {_short_time(daemon['config_loaded_at'])}"
        )
    elif daemon["state"] == "never started":
        head = "daemon    never started with this configuration"
    else:
        head = f"daemon    NOT RUNNING (last state {daemon['state']}, pid {daemon['pid']}, stopped {_short_time(daemon['stopped_at'])})"
    lines = [head]
    error = daemon.get("last_reload_error")
    if error:
        lines.append(f"          last reload FAILED at {_short_time(error.get('at'))}, running on the previous configuration:")
        lines += [f"            {problem}" for problem in error.get("problems", [])]
    if daemon.get("running_jobs"):
        lines.append(f"          running now: {', '.join(daemon['running_jobs'])}")
    return lines


def _render_collections(collections: list[dict]) -> list[str]:
    rows = [("COLLECTION", "PLATFORM", "TYPE", "SCHEDULE", "LAST RUN", "RESULT", "COUNTS", "NEXT RUN")]
    for entry in collections:
        run = entry["last_run"]
        if entry["type"] == "timeline":
            counts = _counts(run["counts"]) if run else ""
            accounts = entry["accounts"]
            schedule = f"{entry['schedule'] or 'off'} ({accounts['tracked'] or accounts['configured']} acc)"
        else:
            stream = entry["stream"]
            schedule = "stream"
            counts = (
                f"{'connected' if stream['connected'] else 'DISCONNECTED'}, {stream['messages_last_hour']} msg/h, "
                f"last msg {_age(stream['last_message_age_seconds'])} ago, down {_age(stream['disconnected_seconds_24h'])}/24h"
            )
            if stream["dropped_last_hour"]:
                counts += f", {stream['dropped_last_hour']} dropped"
            if "cursor_lag_seconds" in stream:
                counts += f", cursor lag {_age(stream['cursor_lag_seconds'])}"
        result = (run["result"] + (f" ({run['warning_count']}w)" if run["warning_count"] else "")) if run else "-"
        started = _short_time(run["started_at"]) if run else "never"
        rows.append((entry["name"], entry.get("platform", "x"), entry["type"], schedule, started, result, counts,
                     _short_time(entry["next_run"])))
    return _table(rows)


def _render_jobs(jobs: list[dict]) -> list[str]:
    if not jobs:
        return []
    rows = [("JOB", "SCHEDULE", "LAST START", "LAST END", "RESULT", "WAITED", "NEXT RUN")]
    for job in jobs:
        result = job["last_result"] or "-"
        if job["state"] == "waiting":
            result = f"waiting for its lock since {_short_time(job['waiting_since'])}"
        waited = job["last_waited_seconds"]
        rows.append((
            job["job_id"], job["schedule"], _short_time(job["last_start"]), _short_time(job["last_end"]), result,
            _age(waited) if waited else "-", _short_time(job["next_run"]),
        ))
    return _table(rows) + [""]


def _render_accounts(accounts: dict) -> list[str]:
    states = ", ".join(f"{state} {n}" for state, n in sorted(accounts["by_state"].items()))
    lines = [f"accounts  {accounts['total']} tracked" + (f": {states}" if states else "")]
    if accounts["attention_total"]:
        lines.append(f"          needing attention ({accounts['attention_total']}):")
        for account in accounts["attention"][:10]:
            name = f"@{account['username']}" if account["username"] else "?"
            detail = f" ({account['last_error']})" if account["reason"] == "failing" and account["last_error"] else ""
            lines.append(f"            {account['account_id']:>20} {name:<17} {account['reason']}{detail}")
        if accounts["attention_total"] > 10:
            lines.append(f"            ... and {accounts['attention_total'] - 10} more (status --json lists {ATTENTION_LIMIT})")
    return lines


def _render_api(api: dict) -> list[str]:
    lines = []
    if api["rate_limits"]:
        budgets = ", ".join(
            f"{r['endpoint']} {r['remaining']}/{r['rate_limit']}" + (f" until {_short_time(r['reset_at'])}" if r["reset_at"] else "")
            for r in api["rate_limits"][:6]
        )
        lines.append(f"api       {budgets}")
    for cap in api["usage_caps"]:
        lines.append(f"          USAGE CAP {cap['scope']} since {_short_time(cap['capped_at'])}, resumes {_short_time(cap.get('resume_at'))}")
    return lines


def _render_disk(disk: dict) -> list[str]:
    paths = ", ".join(
        f"{name} {diskguard.human_size(space['free_bytes'])} free" + ("" if space["level"] == OK else f" [{space['level'].upper()}]")
        for name, space in disk["paths"].items()
    )
    return [
        f"disk      {paths} (warning below {diskguard.human_size(disk['warning_free_bytes'])}, "
        f"pause below {diskguard.human_size(disk['min_free_bytes'])})"
    ]


def _render_bags(bags: dict) -> list[str]:
    last = bags["last_handoff"]
    text = (
        f"bags      every {bags['period']}: {bags['pending_count']} complete period(s) waiting, "
        f"{bags['outbox_count']} bag(s) in the outbox"
    )
    if last:
        text += f", last {last['name']} at {_short_time(last['handoff_at'] or last['finished_at'])}"
    if bags["handoff_failures"]:
        text += f", {len(bags['handoff_failures'])} handoff failure(s)"
    return [text]


def _table(rows: list[tuple]) -> list[str]:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


# -- small helpers -------------------------------------------------------------------------


def _counts(counts: dict) -> str:
    return " ".join(f"{key}={value}" for key, value in sorted(counts.items())[:4])


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_timestamp(text)
    except ValueError:
        return None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _seconds_since(text: str | None, now: datetime) -> float | None:
    moment = _parse(text)
    return None if moment is None else round((now - moment).total_seconds(), 1)


def _short_time(text: str | None) -> str:
    moment = _parse(text)
    return moment.strftime("%m-%d %H:%M:%S") if moment else "-"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d"
