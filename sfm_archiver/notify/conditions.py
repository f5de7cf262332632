"""What is wrong right now, read from the state store (never from captures or logs).

One function per source, each returning `Condition`s keyed so the same problem keeps its key
from one evaluation to the next: a job's last run failed or warned; the API refused the token
(one alert for every job it stops, not one per collection); a stream disconnected longer than
`notify.stream_down_after`; free disk below the warning and the pause thresholds; bags whose
handoff failed; a refused configuration reload; a usage cap.
"""

from __future__ import annotations

import re
from datetime import datetime

from sfm_archiver import diskguard
from sfm_archiver.config import Config
from sfm_archiver.notify.alerts import Condition
from sfm_archiver.notify.store import NotifyStore
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import parse_timestamp

AUTH_REFUSED = re.compile(r"\bHTTP 40[13]\b|refused the bearer token")
STREAM_TYPES = ("filter_stream", "sample_stream")
ALERTING_RESULTS = ("failed", "warning")
DETAIL_LINES = 10


def gather(store: StateStore, config: Config, now: datetime, spaces: list[diskguard.PathSpace]) -> dict[str, Condition]:
    """Every condition present now, by key."""
    found: list[Condition] = []
    found += run_conditions(store, config)
    found += stream_conditions(store, config)
    found += disk_conditions(spaces)
    found += bag_conditions(store)
    found += daemon_conditions(store)
    found += usage_cap_conditions(store, now)
    return {condition.key: condition for condition in found}


def holds(config: Config) -> dict[str, object]:
    """How long each kind must be gone before its all-clear (streams: so a flap is one alert)."""
    return {"stream": config.notify.stream_down_after}


def run_conditions(store: StateStore, config: Config) -> list[Condition]:
    found, refused = [], []
    for collection in config.collections:
        for job in store.jobs_of_collection(collection.name):
            run = store.last_run(collection.name, job, finished_only=True)
            if run is None or run["result"] not in ALERTING_RESULTS:
                continue
            messages = run["errors"] + run["warnings"]
            if any(AUTH_REFUSED.search(message) for message in run["errors"]):
                refused.append((collection.name, job, run["errors"][0]))
                continue
            found.append(Condition(
                key=f"run:{job}:{collection.name}", kind="run",
                title=f"{collection.name}: the last {job} run {'failed' if run['result'] == 'failed' else 'finished with warnings'}",
                detail=_lines(messages, f"run {run['run_id']} started {run['started_at']}"),
            ))
    if refused:
        found.append(Condition(
            key="api:auth", kind="auth", title="the API refused the token (401/403): harvesting stopped",
            detail=_lines([f"{name} {job}: {error}" for name, job, error in refused]),
        ))
    return found


def stream_conditions(store: StateStore, config: Config) -> list[Condition]:
    found = []
    notify = NotifyStore(store)
    for collection in config.collections_of_type(*STREAM_TYPES):
        last = store.last_stream_event(collection.name)
        if last is None or last["event"] in ("connect", "stop"):
            continue
        since_text = notify.disconnected_since(collection.name) or last["at"]
        found.append(Condition(
            key=f"stream:{collection.name}", kind="stream",
            title=f"{collection.name}: the stream is disconnected",
            detail=f"not connected since {since_text}; last event {last['event']}: {last['reason'] or '-'}",
            since=parse_timestamp(since_text), delay=config.notify.stream_down_after,
        ))
    return found


def disk_conditions(spaces: list[diskguard.PathSpace]) -> list[Condition]:
    found = []
    for space in spaces:
        free = diskguard.human_size(space.free)
        if space.level in (diskguard.WARNING, diskguard.CRITICAL):
            found.append(Condition(
                key=f"disk_low:{space.name}", kind="disk_low",
                title=f"disk: {space.name} {space.path} is below disk.warning_free",
                detail=space.error or f"{free} free",
            ))
        if space.level == diskguard.CRITICAL:
            found.append(Condition(
                key=f"disk_paused:{space.name}", kind="disk_paused",
                title=f"disk: {space.name} {space.path} is below disk.min_free: harvesting is paused",
                detail=space.error or f"{free} free",
            ))
    return found


def bag_conditions(store: StateStore) -> list[Condition]:
    failures = store.bag_summary()["handoff_failures"]
    if not failures:
        return []
    return [Condition(
        key="bags:handoff", kind="bag", title=f"{len(failures)} bag handoff(s) failed",
        detail=_lines([f"{bag['name']}: {bag.get('handoff_error')}" for bag in failures]),
    )]


def daemon_conditions(store: StateStore) -> list[Condition]:
    error = store.daemon_values().get("last_reload_error")
    if not error:
        return []
    return [Condition(
        key="config:reload", kind="reload", title="a configuration reload was refused; the daemon runs on the previous one",
        detail=_lines(error.get("problems", [])),
    )]


def usage_cap_conditions(store: StateStore, now: datetime) -> list[Condition]:
    found = []
    for cap in store.usage_caps():
        resume = parse_timestamp(cap["resume_at"]) if cap.get("resume_at") else None
        if resume is None or resume > now:
            found.append(Condition(
                key=f"usage_cap:{cap['scope']}", kind="usage_cap",
                title=f"usage cap reached ({cap['scope']}): harvesting pauses",
                detail=f"since {cap['capped_at']}, resumes {cap.get('resume_at') or 'when the cap period ends'}: {cap.get('detail') or ''}",
            ))
    return found


def _lines(messages: list[str], head: str = "") -> str:
    shown = [head] if head else []
    shown += messages[:DETAIL_LINES]
    if len(messages) > DETAIL_LINES:
        shown.append(f"... and {len(messages) - DETAIL_LINES} more")
    return "\n".join(shown)
