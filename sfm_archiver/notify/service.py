"""The daemon's side of notify: evaluate conditions on its main-loop tick, deliver in the background.

`NotifyService.tick()` is cheap when nothing is due (a clock check); every `EVALUATE_SECONDS`
it reads the conditions from the state store, steps the alerts, reads new ledger events, sends
the digest when due, samples free disk space hourly, and stores all of it with the message to
send in one transaction. Delivery (and the metrics exporter) run in their own threads, so a
dead mail server never holds up the loop, the signals or any harvest.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from sfm_archiver import diskguard
from sfm_archiver.config import Config
from sfm_archiver.logsetup import add_secrets
from sfm_archiver.notify import conditions, digest, lifecycle
from sfm_archiver.notify.alerts import step
from sfm_archiver.notify.delivery import Deliverer, secrets, target_ids
from sfm_archiver.notify.messages import compose
from sfm_archiver.notify.store import NotifyStore, iso
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import Clock, parse_timestamp, utcnow

log = logging.getLogger("sfm_archiver.notify")

EVALUATE_SECONDS = 2.0
DISK_SAMPLE_EVERY = timedelta(hours=1)
DIGEST_DUE = "digest_due_at"


def evaluate(store: StateStore, config: Config, now: datetime, spaces: list[diskguard.PathSpace]) -> dict | None:
    """One evaluation; returns the alert message queued (None when nothing changed)."""
    notify = NotifyStore(store)
    result = step(notify.active_alerts(), conditions.gather(store, config, now, spaces), now, config.notify.repeat,
                  conditions.holds(config))
    cursor = notify.value(lifecycle.CURSOR)
    records, offset = lifecycle.read_new(config.paths.state, cursor)
    usernames = lambda account_id: (store.account(account_id) or {}).get("username")  # noqa: E731
    notices = result.notices + lifecycle.notices(records, usernames)
    message = compose(notices, now, config.organization.name)
    targets = list(target_ids(config))
    if result.saved or result.ended or message or offset != cursor:  # a quiet evaluation writes nothing
        notify.apply(result.saved, result.ended, message, targets, now, {lifecycle.CURSOR: offset})
    for notice in notices:
        log.log(logging.INFO if notice.kind == "end" else logging.WARNING, "alert %s: %s", notice.kind, notice.title)
    return message


def digest_if_due(store: StateStore, config: Config, now: datetime, spaces: list[diskguard.PathSpace]) -> bool:
    """Queue the digest when its time has come (once, even across restarts); True when queued."""
    notify = NotifyStore(store)
    due_text = notify.value(DIGEST_DUE)
    next_time = digest.next_digest_time(now, config.notify.digest, config.notify.digest_at)
    due = parse_timestamp(due_text) if due_text else None
    if due is None or next_time is None or due > next_time:  # first sight, digests off, or an earlier schedule now
        if due_text != iso(next_time):
            notify.set_value(DIGEST_DUE, iso(next_time))
        return False
    if due > now:
        return False
    data = digest.build(store, config, now, spaces)
    notify.enqueue(digest.message(data, config.organization.name), list(target_ids(config)), now)
    notify.set_value(DIGEST_DUE, iso(next_time))
    log.info("digest queued; next at %s", iso(next_time))
    return True


def anchor_ledger_cursor(store: StateStore, config: Config) -> None:
    """Set the ledger cursor to the ledger's end when there is none yet (a first start)."""
    notify = NotifyStore(store)
    if notify.value(lifecycle.CURSOR) is None:
        notify.set_value(lifecycle.CURSOR, lifecycle.read_new(config.paths.state, None)[1])


def sample_disk(store: StateStore, spaces: list[diskguard.PathSpace], now: datetime) -> None:
    notify = NotifyStore(store)
    last = notify.value("disk_sampled_at")
    if last is not None and now - parse_timestamp(last) < DISK_SAMPLE_EVERY:
        return
    for space in spaces:
        if space.free is not None:
            notify.add_disk_sample(space.name, now, space.free, space.total or 0)
    notify.set_value("disk_sampled_at", iso(now))


class NotifyService:
    """Started with the daemon: `tick()` from the main loop, `stop()` on the way out."""

    def __init__(self, store: StateStore, config, clock: Clock = utcnow, monotonic=time.monotonic):
        self.store = store
        self._config = config
        self._clock = clock
        self._monotonic = monotonic
        self._next = 0.0
        self.deliverer = Deliverer(store, config, clock)
        self.metrics = None
        self._masked_for = None

    def start(self) -> None:
        """Before any job runs: a first start tells of ledger events from now on, not of the
        whole history (and not of nothing: a job's first events must not race the first tick)."""
        from sfm_archiver.metrics import MetricsExporter

        anchor_ledger_cursor(self.store, self._config())
        self.deliverer.start()
        self.metrics = MetricsExporter(self._config)
        self.metrics.start()

    def tick(self) -> None:
        if self._monotonic() < self._next:
            return
        self._next = self._monotonic() + EVALUATE_SECONDS
        try:
            config, now = self._config(), self._clock()
            if config is not self._masked_for:  # at start and after each reload
                add_secrets(secrets(config))
                self._masked_for = config
            spaces = diskguard.measure(config)
            sample_disk(self.store, spaces, now)
            queued = evaluate(self.store, config, now, spaces) is not None
            queued = digest_if_due(self.store, config, now, spaces) or queued
            if queued:
                self.deliverer.wake()
        except Exception as error:  # noqa: BLE001 - telling about problems must never become one
            log.error("notify: evaluating alerts failed: %s", error, exc_info=True)

    def stop(self) -> None:
        self.deliverer.stop()
        if self.metrics is not None:
            self.metrics.stop()
