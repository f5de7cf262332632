"""`sfm-archiver run`: the scheduler, the stream supervisor and the signals, in one process.

Shape (DESIGN.md section 10): an apscheduler 3.x BackgroundScheduler runs the jobs in worker
threads; the main thread owns a small loop that does everything else. Signal handlers only
record the signal (and wake the loop through `signal.set_wakeup_fd`); the loop then reloads
(SIGHUP), stops (SIGTERM/SIGINT), pings the systemd watchdog and writes the heartbeat that
`status` reads. Every scheduler job runs with `coalesce=True, max_instances=1`: a run that
fires while the same job still runs (or waits for its lock) is skipped and recorded as skipped.
A run whose collection lock is held (by another job, or a one-shot command from cron or an
operator) waits for it in its worker thread and runs as soon as it frees. When each job is
due, across restarts, is scheduling.py's business: the daemon registers its jobs there and
asks it again after every run.

Start-up: instance lock, seal capture files of dead writers, close runs of dead processes,
recover interrupted bags, start streams, schedule jobs, READY=1. Accounts of timeline
collections are synced (config → state, usernames resolved) by the first harvest of each
collection, not before READY, so an unreachable API cannot hold start-up hostage.

`fetch-urls` runs over yesterday *and today* (UTC capture dates): yesterday's pass catches
links captured late yesterday, today's expands fresh links while they still resolve (link rot
is fastest in the first hours); the URL cache keeps each link from being fetched twice.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

from sfm_archiver import __version__
from sfm_archiver.config import Config, Schedule, collection_public_dict, load_config_text
from sfm_archiver.config_redact import redact_text
from sfm_archiver.diskguard import DiskGuard
from sfm_archiver.errors import ConfigError, LockBusyError, StopRequested
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.ledger import Ledger
from sfm_archiver.locks import FileLock, instance_lock
from sfm_archiver.logsetup import add_secrets
from sfm_archiver.notify.service import NotifyService
from sfm_archiver.platforms import secrets_of
from sfm_archiver.ratelimit import RateLimiter
from sfm_archiver.scheduling import JobBook, JobRun
from sfm_archiver.sdnotify import Notifier
from sfm_archiver.state import StateStore
from sfm_archiver.storage.writer import seal_abandoned_files
from sfm_archiver.timeutil import Clock, utcnow

log = logging.getLogger("sfm_archiver.daemon")

HEARTBEAT_SECONDS = 5.0
DEFAULT_STOP_TIMEOUT = 60.0  # below the unit's TimeoutStopSec=90
TICK_SECONDS = 1.0

# run names as the jobs record themselves (RunRecorder job=...), for skipped-run records
RUN_NAMES = {
    "timeline": "user_timeline",
    "sync": "sync_accounts",
    "update-usernames": "update_usernames",
    "fetch-urls": "fetch_urls",
    "bag": "bag",
    "report": "report",
}


@dataclass(frozen=True)
class JobSpec:
    """One scheduler job the configuration asks for."""

    job_id: str
    kind: str  # timeline | update-usernames | fetch-urls | bag
    schedule: Schedule
    collections: tuple[str, ...]
    catch_up: bool = True

    @property
    def run_name(self) -> str:
        return RUN_NAMES[self.kind]


def job_specs(config: Config) -> dict[str, JobSpec]:
    """Every scheduled job of a configuration, by job id."""
    specs: dict[str, JobSpec] = {}
    timelines = tuple(c.name for c in config.collections_of_type("timeline", platform=None))
    for collection in config.collections_of_type("timeline", platform=None):
        if collection.schedule is not None:
            job_id = f"timeline:{collection.name}"
            catch_up = config.jobs.catch_up_of("timeline", collection)
            specs[job_id] = JobSpec(job_id, "timeline", collection.schedule, (collection.name,), catch_up)
    everything = tuple(c.name for c in config.collections)
    for kind, schedule, names in (
        ("update-usernames", config.jobs.update_usernames, timelines),
        ("fetch-urls", config.jobs.fetch_urls, everything),
        ("bag", config.jobs.bag, everything),
        ("report", config.jobs.report, everything),
    ):
        if schedule is not None and names:
            specs[kind] = JobSpec(kind, kind, schedule, names, config.jobs.catch_up_of(kind.replace("-", "_")))
    return specs


def changed_collections(old: Config, new: Config) -> set[str]:
    """Names of collections added or whose settings (accounts, rules, schedule...) changed."""
    before = {c.name: collection_public_dict(c) for c in old.collections}
    return {c.name for c in new.collections if before.get(c.name) != collection_public_dict(c)}


def reload_refusal(old: Config, new: Config) -> list[str]:
    """Changes a running daemon cannot apply (they need a restart)."""
    problems = []
    for key in ("archive", "state", "outbox"):
        if getattr(old.paths, key) != getattr(new.paths, key):
            problems.append(
                f"{new.source}: paths.{key} changed ({getattr(old.paths, key)} -> {getattr(new.paths, key)}): "
                "restart the daemon to move it (systemctl restart sfm-archiver)"
            )
    return problems


class SignalInbox:
    """Signal handlers append to a list and wake the main loop; nothing else runs in them."""

    SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.on_second_stop: Callable[[int], None] | None = None
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self.pending: list[int] = []
        self._previous: dict[int, object] = {}
        self._previous_fd: int | None = None

    def install(self) -> None:
        self._previous_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame) -> None:
        if self.on_second_stop is not None and signum in (signal.SIGTERM, signal.SIGINT):
            self.on_second_stop(signum)  # already stopping: the operator wants out now
        self.pending.append(signum)

    def wait(self, timeout: float) -> list[int]:
        """Sleep until a signal arrives or `timeout` passes; return the signals received."""
        if not self.pending:
            select.select([self._read], [], [], max(0.0, timeout))
        try:
            while self._read.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        received, self.pending[:] = list(self.pending), []
        return received

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd if self._previous_fd is not None else -1)
        self._read.close()
        self._write.close()


class Daemon:
    """One daemon process: `Daemon(config).run()` returns the exit code."""

    def __init__(
        self,
        config: Config,
        *,
        environ: dict | None = None,
        clock: Clock = utcnow,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        load: Callable[[str, Path], Config] = load_config_text,
        exit_now: Callable[[int], None] = os._exit,
    ):
        self.config = config
        self.clock = clock
        self.stop_timeout = stop_timeout
        self._load = load
        self._exit_now = exit_now
        self.notifier = Notifier(environ)
        self.guard = DiskGuard(lambda: self.config)
        self.store: StateStore | None = None
        self.ledger: Ledger | None = None
        self.book: JobBook | None = None
        self.stop_event = threading.Event()
        self.scheduler = None
        self.supervisor = None
        self.stream_ctx: JobContext | None = None
        self.jetstreams = None  # the jetstream collections' supervisor
        self.jetstream_ctx: JobContext | None = None
        self.specs: dict[str, JobSpec] = {}
        self._lock: FileLock | None = None
        self._signals = SignalInbox()
        self._running: dict[str, float] = {}
        self._running_lock = threading.Lock()
        self._limiter: RateLimiter | None = None
        self._last_result = ""
        self._started_at = clock()
        self._disk_was_ok = True

    # -- life cycle --------------------------------------------------------------------------

    def run(self) -> int:
        self._take_instance_lock()
        self._signals.install()
        try:
            self._start()
            self._main_loop()
            return self._shutdown()
        finally:
            self._signals.restore()
            self.notifier.close()
            if self._lock is not None:
                self._lock.release()

    def _take_instance_lock(self) -> None:
        lock = instance_lock(self.config.paths.state)
        try:
            self._lock = lock.acquire()
        except LockBusyError:
            holder = _lock_holder(lock.path)
            raise LockBusyError(
                f"another sfm-archiver daemon (pid {holder or 'unknown'}) is already running on the state "
                f"directory {self.config.paths.state}; stop it first (systemctl stop sfm-archiver) or use "
                "another configuration"
            ) from None

    def _start(self) -> None:
        config = self.config
        self.store = StateStore(config.paths.state)
        self.ledger = Ledger(config.paths.state)
        log.info("sfm-archiver %s starting: pid=%d config=%s state=%s", __version__, os.getpid(), config.source, config.paths.state)
        self.store.set_daemon_values(
            pid=os.getpid(), started_at=_iso(self._started_at), heartbeat_at=_iso(self.clock()),
            config_path=str(config.source), config_loaded_at=_iso(self.clock()), last_reload_error=None,
            state="starting", stopped_at=None, version=__version__, next_runs={}, disk_paused=False,
            **self._config_record(config, *_read_config(config.source)),
        )
        for path, removed in seal_abandoned_files(self.store):
            log.warning("sealed capture file left open by a dead process: %s (%d bytes of a torn batch cut)", path, removed)
        closed = self.store.close_abandoned_runs()
        if closed:
            log.warning("marked %d run(s) of dead processes as interrupted", closed)
        self.book = JobBook(self.store, self.clock)
        self.book.recover()
        self._recover_bags()
        self.notify = NotifyService(self.store, lambda: self.config, self.clock)
        self.notify.start()
        self._start_scheduler()
        self._schedule_syncs(name for name, spec in _timelines(config) if not _harvests_at_once(spec))
        self._start_streams()
        self.store.set_daemon_values(state="running")
        self._write_heartbeat()
        self.notifier.ready(self.summary())
        log.info("ready: %s", self.summary())

    def _recover_bags(self) -> None:
        try:
            from sfm_archiver.bagging import recover
        except ImportError:
            log.warning("bagging is not available in this installation: no bag recovery")
            return
        for message in recover(self.job_context()) or ():
            log.warning("bag recovery: %s", message)

    def _start_streams(self) -> None:
        if self.supervisor is None and self.config.collections_of_type("filter_stream", "sample_stream"):
            from sfm_archiver.streams.supervisor import StreamSupervisor

            self.stream_ctx = self.job_context()
            self.supervisor = StreamSupervisor(self.stream_ctx)
            self.supervisor.start()
        if self.jetstreams is None and self.config.collections_of_type("jetstream", platform=None):
            from sfm_archiver.streams.jetstream import JetstreamSupervisor

            self.jetstream_ctx = self.job_context()
            self.jetstreams = JetstreamSupervisor(self.jetstream_ctx)
            self.jetstreams.start()

    def _start_scheduler(self) -> None:
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=32)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},  # late runs: scheduling.py
            timezone="UTC",
        )
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)  # skips are logged here, once
        self.scheduler.add_listener(
            self._on_scheduler_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_EXECUTED
        )
        self.scheduler.start()
        self._apply_jobs(job_specs(self.config))

    def _main_loop(self) -> None:
        watchdog = self.notifier.watchdog_interval
        tick = min(TICK_SECONDS, watchdog) if watchdog else TICK_SECONDS
        next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        next_watchdog = time.monotonic()
        while True:
            received = self._signals.wait(tick)
            for index, signum in enumerate(received):
                if signum == signal.SIGHUP:
                    self.reload()
                else:
                    log.info("received %s: stopping", signal.Signals(signum).name)
                    self._signals.pending[:0] = received[index + 1:]
                    return
            now = time.monotonic()
            if watchdog and now >= next_watchdog:
                self.notifier.watchdog()
                next_watchdog = now + watchdog
            self.notify.tick()
            if now >= next_heartbeat:
                self._write_heartbeat()
                self.notifier.status(self.summary())
                next_heartbeat = now + HEARTBEAT_SECONDS

    def _shutdown(self) -> int:
        deadline = time.monotonic() + self.stop_timeout
        self._signals.on_second_stop = lambda signum: self._force_exit(128 + signum)
        if any(signum in (signal.SIGTERM, signal.SIGINT) for signum in self._signals.pending):
            self._force_exit(128 + signal.SIGTERM)
        self.notifier.stopping("stopping: jobs finish at their next safe point")
        self.store.set_daemon_values(state="stopping")
        self.stop_event.set()
        self.notify.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.supervisor is not None:
            self.supervisor.stop(max(1.0, deadline - time.monotonic()))
        if self.jetstreams is not None:
            self.jetstreams.stop(max(1.0, deadline - time.monotonic()))
        while self.running_jobs():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.error("jobs still running after %.0f s: %s; exiting anyway", self.stop_timeout, ", ".join(self.running_jobs()))
                self._store_quietly(state="stopped", stopped_at=_iso(self.clock()))
                return self._force_exit(1)
            self._signals.wait(min(0.2, remaining))
        self.store.set_daemon_values(state="stopped", stopped_at=_iso(self.clock()), heartbeat_at=_iso(self.clock()))
        log.info("stopped cleanly")
        return 0

    def _force_exit(self, code: int) -> int:
        """Exit at once: every capture batch already written is a complete gzip member."""
        log.warning("exiting at once (code %d); open capture files are sealed on the next start", code)
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:  # noqa: BLE001 - nothing may stop the exit
                pass
        sys.stdout.flush()
        self._exit_now(code)
        return code

    # -- jobs ----------------------------------------------------------------------------------

    def job_context(self) -> JobContext:
        """A context for one job run: the current config, shared stores, the stop flag.

        Every context carries the daemon's one rate limiter, so all jobs share each budget.
        """
        if self._limiter is None:
            self._limiter = RateLimiter(store=self.store)
        return JobContext(
            config=self.config, store=self.store, ledger=self.ledger, stop=self.stop_event,
            clock=self.clock, disk_ok=self.guard.ok, rate_limiter=self._limiter,
        )

    def running_jobs(self) -> list[str]:
        with self._running_lock:
            return sorted(self._running)

    def _apply_jobs(self, wanted: dict[str, JobSpec]) -> None:
        """Add, remove and reschedule scheduler jobs so they match `wanted`."""
        previous, self.specs = self.specs, dict(wanted)  # before add_job: a job may fire at once
        for job_id in set(previous) - set(wanted):
            self.scheduler.remove_job(job_id)
            log.info("job %s removed", job_id)
        self.book.keep_only(set(wanted))
        for job_id, spec in wanted.items():
            old = previous.get(job_id)
            if old is not None and (old.schedule.text, old.catch_up) == (spec.schedule.text, spec.catch_up):
                continue
            due = self.book.register(job_id, spec.schedule, spec.catch_up)
            if old is None:
                self.scheduler.add_job(self._run_job, spec.schedule.trigger(), args=(job_id,), id=job_id, name=job_id, next_run_time=due)
            else:
                self.scheduler.modify_job(job_id, trigger=spec.schedule.trigger(), next_run_time=due)
            log.info("job %s %s: %s, next run %s", job_id, "scheduled" if old is None else "rescheduled", spec.schedule.text, _iso(due))

    def _run_job(self, job_id: str) -> None:
        spec = self.specs.get(job_id)
        if spec is None or self.stop_event.is_set():
            return
        run = self.book.begin(job_id, self.stop_event)
        with self._running_lock:
            self._running[job_id] = time.monotonic()
        results = ["skipped"]
        try:
            if spec.kind != "bag" and not self.guard.ok():
                for name in spec.collections:
                    self.store.record_skipped_run(spec.run_name, name, "free disk space is below disk.min_free")
                self._last_result = f"{job_id} paused (disk)"
                return
            results = self._dispatch(spec, run)
        finally:
            with self._running_lock:
                self._running.pop(job_id, None)
            self._end_run(run, results)

    def _end_run(self, run: JobRun, results: list[str]) -> None:
        """Record the run's end (the next run is scheduled from it once the executor lets go: _reschedule)."""
        if "stopped" in results and not run.started:
            run.abandon()
            return
        run.end(_job_result(results))

    def _reschedule(self, job_id: str) -> None:
        """After a run: the next one when the record says (at once when overdue), not on the trigger's grid."""
        if self.stop_event.is_set() or job_id not in self.specs:
            return
        try:
            self.scheduler.modify_job(job_id, next_run_time=self.book.due(job_id))
        except LookupError:  # removed by a reload meanwhile
            pass

    def _dispatch(self, spec: JobSpec, run: JobRun) -> list[str]:
        ctx = self.job_context()
        ctx.lock_wait = run.lock_wait
        if spec.kind == "report":
            from sfm_archiver.report import report_job

            return [self._guarded(spec, None, lambda: report_job(ctx))]
        if spec.kind == "bag":
            from sfm_archiver import bagging

            return [self._guarded(spec, None, lambda: bagging.bag_completed_periods(ctx, list(spec.collections)))]
        unit = self._unit_of_work(spec.kind)
        results = []
        for name in spec.collections:
            if ctx.stop.is_set():
                break
            results.append(self._guarded(spec, name, lambda name=name: unit(ctx, name)))
        return results

    def _unit_of_work(self, kind: str) -> Callable[[JobContext, str], object]:
        """The per-collection function of a job kind."""
        if kind == "timeline":
            return self._harvest
        if kind == "update-usernames":
            from sfm_archiver.jobs.accounts import update_usernames

            return update_usernames
        from sfm_archiver.jobs.urls import fetch_urls

        def fetch_yesterday_and_today(ctx: JobContext, name: str) -> object:
            today = ctx.clock().date()
            return fetch_urls(ctx, name, today - timedelta(days=1), today)

        return fetch_yesterday_and_today

    def _harvest(self, ctx: JobContext, name: str):
        """A timeline pass; it syncs the configured accounts into the state first."""
        from sfm_archiver.jobs.timeline import harvest_timelines

        return harvest_timelines(ctx, name)

    def _schedule_syncs(self, names) -> None:
        """Sync accounts (config -> state, usernames resolved) now, without waiting for a harvest.

        So an account added to the YAML shows up in `status` and the ledger right after the
        reload even when the collection harvests only every few hours.
        """
        from apscheduler.triggers.date import DateTrigger

        for name in names:
            self.scheduler.add_job(
                self._run_sync, DateTrigger(self.clock()), args=(name,), id=f"sync:{name}", name=f"sync:{name}",
                replace_existing=True,
            )

    def _run_sync(self, name: str) -> None:
        from sfm_archiver.jobs.accounts import sync_accounts

        if self.stop_event.is_set() or name not in {c.name for c in self.config.collections_of_type("timeline", platform=None)}:
            return
        spec = JobSpec(f"sync:{name}", "sync", Schedule("now"), (name,))
        with self._running_lock:
            self._running[spec.job_id] = time.monotonic()
        try:
            self._guarded(spec, name, lambda: sync_accounts(self.job_context(), name))
        finally:
            with self._running_lock:
                self._running.pop(spec.job_id, None)

    def _guarded(self, spec: JobSpec, collection: str | None, call: Callable[[], object]) -> str:
        """Run one unit and return its result word; an error is logged and the loop goes on."""
        where = f"{spec.job_id}" + (f" collection={collection}" if collection and spec.kind != "timeline" else "")
        try:
            result = call()
        except StopRequested as stopped:
            log.info("%s not run: %s", where, stopped)
            return "stopped"
        except LockBusyError as busy:  # a job that takes its lock without waiting (account syncs)
            for name in ([collection] if collection else spec.collections):
                self.store.record_skipped_run(spec.run_name, name, f"skipped: {busy}")
            log.warning("%s skipped: %s", where, busy)
            self._last_result = f"{where} skipped (locked)"
            return "skipped"
        except Exception as error:  # noqa: BLE001 - one failing collection must not stop the daemon
            log.error("%s failed: %s", where, error, exc_info=not _is_expected(error))
            self._last_result = f"{where} failed"
            return "failed"
        word = _result_word(result)
        self._last_result = f"{where} {word} at {self.clock().strftime('%H:%M:%S')}"
        return word

    def _on_scheduler_event(self, event) -> None:
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES

        spec = self.specs.get(event.job_id)
        if spec is None:
            return
        if event.code == EVENT_JOB_ERROR:
            log.error("job %s crashed: %s", event.job_id, event.exception)
        if event.code in (EVENT_JOB_ERROR, EVENT_JOB_EXECUTED):
            self._reschedule(event.job_id)  # sent once the run no longer counts as an instance
            return
        reason = (
            "skipped: the previous run was still running or waiting for its lock"
            if event.code == EVENT_JOB_MAX_INSTANCES
            else "skipped: the run was missed (the daemon was busy or suspended)"
        )
        log.warning("job %s %s", event.job_id, reason)
        for name in spec.collections:
            self.store.record_skipped_run(spec.run_name, name, reason)

    # -- reload --------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration; apply it when valid, keep the old one when not."""
        self.notifier.reloading(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000)
        log.info("reloading %s", self.config.source)
        try:
            stat, text = _read_config(self.config.source)
            new = self._load(text, self.config.source)
            problems = reload_refusal(self.config, new)
            if problems:
                raise ConfigError(problems)
        except ConfigError as error:
            for problem in error.problems:
                log.error("reload refused: %s", problem)
            self.store.set_daemon_values(
                last_reload_error={"at": _iso(self.clock()), "problems": error.problems}
            )
            self.notifier.ready(f"reload failed, still running on the previous configuration; {self.summary()}")
            return False
        try:
            self._apply_config(new)
        except Exception as error:  # noqa: BLE001 - a reload must never take the daemon down
            log.exception("reload: applying the new configuration failed part way: %s", error)
            self._store_quietly(last_reload_error={"at": _iso(self.clock()), "problems": [f"applying the configuration failed: {error}"]})
            self.notifier.ready(self.summary())
            return False
        self.store.set_daemon_values(
            config_loaded_at=_iso(self.clock()), last_reload_error=None, **self._config_record(new, stat, text)
        )
        self.notifier.ready(self.summary())
        log.info("configuration reloaded: %s", self.summary())
        return True

    def _apply_config(self, new: Config) -> None:
        old, self.config = self.config, new
        for warning in new.warnings:
            log.warning("%s", warning)
        add_secrets(secrets_of(new))
        logging.getLogger().setLevel(new.log_level)
        changed = changed_collections(old, new)
        self._apply_jobs(job_specs(new))
        self._schedule_syncs(name for name in sorted(changed) if new.collection(name).type == "timeline")
        self._apply_streams(new)
        if changed:
            log.info("collections added or changed: %s", ", ".join(sorted(changed)))
        removed = {c.name for c in old.collections} - {c.name for c in new.collections}
        if removed:
            log.info("collections removed from the schedule: %s (their captures stay in the archive)", ", ".join(sorted(removed)))

    def _apply_streams(self, new: Config) -> None:
        if self.supervisor is not None:
            self.stream_ctx.config = new
            self.supervisor.apply_config(new)
        if self.jetstreams is not None:
            self.jetstreams.apply_config(new)  # sets its context's configuration
        self._start_streams()  # the kinds that had no collection before

    # -- reporting -----------------------------------------------------------------------------

    @staticmethod
    def _config_record(config: Config, stat: os.stat_result, text: str) -> dict:
        """What `status` reads instead of the YAML: the running configuration, secrets redacted."""
        from sfm_archiver.status import view_record

        return {"config_text": redact_text(text), "config_view": view_record(config, stat)}

    def _write_heartbeat(self) -> None:
        disk_ok = self.guard.ok()
        if disk_ok != self._disk_was_ok:
            self._disk_was_ok = disk_ok
            self.notifier.status(self.summary())
        try:
            self.store.set_daemon_values(
                heartbeat_at=_iso(self.clock()), next_runs=self._next_runs(), disk_paused=not disk_ok,
                running_jobs=self.running_jobs(),
            )
        except sqlite3.Error as error:  # a full disk must not stop the daemon: status then shows it stale
            log.error("cannot write the heartbeat to the state database: %s", error)

    def _next_runs(self) -> dict[str, str | None]:
        if self.book is None:
            return {}
        return {job_id: _iso(due) for job_id, due in self.book.next_runs().items() if job_id in self.specs}

    def summary(self) -> str:
        """The one-line STATUS= text."""
        streams = len(self.config.collections_of_type("filter_stream", "sample_stream", "jetstream", platform=None))
        parts = [f"{len(self.config.collections)} collections", f"{len(self.specs)} jobs scheduled"]
        if streams:
            parts.append(f"{streams} streams")
        running = self.running_jobs()
        if running:
            parts.append("running " + ",".join(running))
        if self._last_result:
            parts.append("last " + self._last_result)
        parts.append("disk ok" if self.guard.ok() else "DISK LOW: harvesting paused")
        return "; ".join(parts)

    def _store_quietly(self, **values) -> None:
        try:
            self.store.set_daemon_values(**values)
        except Exception as error:  # noqa: BLE001 - best effort on the way out
            log.debug("could not record %s: %s", values, error)


def _timelines(config: Config) -> list[tuple[str, JobSpec | None]]:
    specs = job_specs(config)
    return [(c.name, specs.get(f"timeline:{c.name}")) for c in config.collections_of_type("timeline", platform=None)]


def _harvests_at_once(spec: JobSpec | None) -> bool:
    """Interval-scheduled timelines run at start-up (cron ones wait for their time)."""
    return spec is not None and spec.schedule.is_interval


def run_daemon(config: Config, environ: dict | None = None, stop_timeout: float = DEFAULT_STOP_TIMEOUT) -> int:
    """Entry point of `sfm-archiver run`."""
    return Daemon(config, environ=environ, stop_timeout=stop_timeout).run()


def _read_config(path: Path) -> tuple[os.stat_result, str]:
    """The file's identity (taken first: a later edit then never matches) and its text."""
    try:
        stat = Path(path).stat()
        return stat, Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot read the configuration: {error}"]) from None


def _lock_holder(path: Path) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="milliseconds")


def _job_result(words: list[str]) -> str:
    """One word for a run over several collections: the worst of theirs."""
    for word in ("failed", "stopped", "interrupted", "skipped", "warning"):
        if word in words:
            return word
    return "ok" if words else "skipped"


def _result_word(result: object) -> str:
    if isinstance(result, dict) and "result" in result:
        return str(result["result"])
    if isinstance(result, list):
        return f"{len(result)} done"
    return "done"


def _is_expected(error: Exception) -> bool:
    from sfm_archiver.errors import SfmError

    return isinstance(error, SfmError)
