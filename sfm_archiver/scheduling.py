"""When each daemon job is due, remembered across restarts (DESIGN.md section 10).

The state store keeps, per scheduled job (`timeline:<collection>`, `update-usernames`, ...),
the schedule it runs on, since when, and its last start and end. One function, `next_due`,
turns that record into the next run time; the daemon schedules by it and `status` reports
it, so both agree, before and after any restart:

- an interval job is due at its last start + the interval; at once when that has passed or
  when it never ran;
- a crontab job is due at its first fire time after the later of its last start and the
  moment its schedule took effect. When that time passed while the daemon was down, the job
  runs once at start (`catch_up`, the default) or waits for its next fire time. Only the
  first missed time counts, so however many were missed there is one catch-up run.

A run is *pending* from the moment it fires until it holds its first lock, and counts as
started only then: a daemon killed while a run waits still owes that run after the restart.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping

from sfm_archiver.config import Schedule
from sfm_archiver.locks import FileLock, LockWait
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import Clock, parse_timestamp

log = logging.getLogger("sfm_archiver.scheduling")


def next_due(schedule: Schedule, *, last_start: datetime | None, since: datetime | None, catch_up: bool,
             now: datetime) -> datetime:
    """The next run time of a job (never before `now`: an overdue job is due `now`)."""
    if schedule.is_interval:
        return now if last_start is None else max(last_start + schedule.interval, now)
    anchors = [moment for moment in (last_start, since) if moment is not None]
    if not anchors:
        return fire_after(schedule, now)
    due = fire_after(schedule, max(anchors))
    if due > now:
        return due
    return now if catch_up else fire_after(schedule, now)


def fire_after(schedule: Schedule, moment: datetime) -> datetime:
    """The first time strictly after `moment` a schedule fires."""
    if schedule.is_interval:
        return moment + schedule.interval
    return schedule.trigger().get_next_fire_time(moment, moment)


def schedule_of(record: Mapping) -> Schedule:
    """The schedule of a stored job record (rebuilt without parsing: the daemon validated it)."""
    interval = record.get("interval_seconds")
    return Schedule(record["schedule"], timedelta(seconds=interval) if interval else None)


def due_of(record: Mapping, now: datetime) -> datetime:
    """`next_due` of a stored job record."""
    return next_due(
        schedule_of(record), last_start=_moment(record.get("last_start")), since=_moment(record.get("scheduled_since")),
        catch_up=bool(record.get("catch_up", True)), now=now,
    )


class JobBook:
    """The daemon's record of its jobs in the state store: schedules, fires, starts, waits and ends."""

    def __init__(self, store: StateStore, clock: Clock):
        self.store = store
        self.clock = clock

    def recover(self) -> None:
        """At start (the instance lock is ours, so no other daemon runs): close what a dead daemon left open."""
        for record in self.store.job_schedules(active_only=False):
            if record["last_result"] == "running":
                log.warning("job %s: the run started %s ended with the previous process", record["job_id"], record["last_start"])
                self.store.update_job_schedule(record["job_id"], last_result="interrupted")
            if record["pending_since"]:
                log.warning("job %s: the run waiting since %s is still owed", record["job_id"], record["pending_since"])
                self.store.update_job_schedule(record["job_id"], pending_since=None)

    def register(self, job_id: str, schedule: Schedule, catch_up: bool) -> datetime:
        """Record that the daemon schedules `job_id` this way; return when it is due."""
        interval = schedule.interval.total_seconds() if schedule.interval else None
        self.store.set_job_schedule(job_id, schedule.text, interval, catch_up, self.clock())
        return self.due(job_id)

    def keep_only(self, job_ids: set[str]) -> None:
        """Jobs that left the configuration (also while the daemon was down) leave `status`; their history stays."""
        for record in self.store.job_schedules():
            if record["job_id"] not in job_ids:
                self.store.update_job_schedule(record["job_id"], active=0)

    def due(self, job_id: str) -> datetime:
        return due_of(self.store.job_schedule(job_id), self.clock())

    def next_runs(self) -> dict[str, datetime]:
        now = self.clock()
        return {record["job_id"]: due_of(record, now) for record in self.store.job_schedules()}

    def begin(self, job_id: str, stop: threading.Event) -> JobRun:
        """A run fired: it is pending until it holds its first lock."""
        run = JobRun(self, job_id, self.clock())
        self.store.update_job_schedule(job_id, pending_since=run.fired_at, pid=os.getpid())
        run.lock_wait = LockWait(stop=stop, acquired=run.acquired, on_wait=run.waiting)
        return run


@dataclass
class JobRun:
    """One run of a scheduled job, from its fire time to its end."""

    book: JobBook
    job_id: str
    fired_at: datetime
    started: bool = False
    waited: float = 0.0
    lock_wait: LockWait | None = field(default=None, repr=False)

    def waiting(self, lock: FileLock, holder: str) -> None:
        log.info("job %s waits for %s (held by process %s)", self.job_id, lock.what, holder or "?")

    def acquired(self, lock: FileLock, waited: float) -> None:
        """Each lock the run takes; the first one makes it started (recorded before the job writes)."""
        self.waited += waited
        if waited >= 0.01:
            log.info("job %s waited %.1f s for %s", self.job_id, waited, lock.what)
        if not self.started:
            self.mark_started()

    def mark_started(self) -> None:
        self.started = True
        self.book.store.update_job_schedule(
            self.job_id, last_start=self.book.clock(), last_end=None, last_result="running", pending_since=None,
            last_waited=round(self.waited, 3),
        )

    def end(self, result: str) -> None:
        """The run is over (a run that needed no lock started when it fired)."""
        if not self.started:
            self.started = True
            self.book.store.update_job_schedule(self.job_id, last_start=self.fired_at, pending_since=None, last_waited=0.0)
        self.book.store.update_job_schedule(
            self.job_id, last_end=self.book.clock(), last_result=result, last_waited=round(self.waited, 3)
        )

    def abandon(self) -> None:
        """The daemon stops while the run waits: it never started, and stays owed to the next start."""
        self.book.store.update_job_schedule(self.job_id, pending_since=None)


def _moment(text: str | None) -> datetime | None:
    return parse_timestamp(text) if text else None
