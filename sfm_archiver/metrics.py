"""Prometheus metrics: a text file for node_exporter's textfile collector and/or `/metrics`.

Values are read when collected: gauges from the very report `status --json` prints
(`status.collect`), so the two never disagree; counters (`..._total`) from sums over the state
store and the ledger. Names follow Prometheus conventions: the `sfm_archiver_` prefix, base
units (seconds, bytes), `_total` for counters, timestamps as `..._timestamp_seconds`.
The text file is written to a temporary name and renamed over the old one, so the collector
never reads half a file.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Callable

from sfm_archiver import status
from sfm_archiver.config import Config
from sfm_archiver.notify.lifecycle import read_new
from sfm_archiver.notify.store import NotifyStore
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import parse_timestamp

log = logging.getLogger("sfm_archiver.metrics")
LEVELS = {status.OK: 0, status.WARNING: 1, status.CRITICAL: 2}


def _seconds(text: str | None) -> float | None:
    return None if not text else parse_timestamp(text).timestamp()


class ArchiverCollector:
    """A prometheus_client collector over the state store of one configuration."""

    def __init__(self, config: Callable[[], Config]):
        self._config = config

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        config = self._config()
        report = status.collect(config)
        store = StateStore(config.paths.state)
        try:
            yield from _gauges(report, GaugeMetricFamily)
            yield from _counters(store, config, CounterMetricFamily, GaugeMetricFamily)
        finally:
            store.close()


def _gauges(report: dict, Gauge):
    overall = Gauge("sfm_archiver_status", "Overall status as `status` reports it: 0 ok, 1 warning, 2 critical")
    overall.add_metric([], LEVELS[report["overall"]])
    yield overall
    daemon = report["daemon"]
    up = Gauge("sfm_archiver_daemon_up", "1 when the daemon runs and writes its heartbeat")
    up.add_metric([], 1 if daemon["responding"] else 0)
    yield up
    connected = Gauge("sfm_archiver_stream_connected", "1 while the stream collection is connected", labels=["collection"])
    down = Gauge("sfm_archiver_stream_disconnected_24h_seconds", "Seconds not connected in the last 24 hours", labels=["collection"])
    hour = Gauge("sfm_archiver_stream_messages_last_hour", "Stream messages captured in the last hour", labels=["collection"])
    for entry in report["collections"]:
        stream = entry.get("stream")
        if stream is None:
            continue
        connected.add_metric([entry["name"]], 1 if stream["connected"] else 0)
        hour.add_metric([entry["name"]], stream["messages_last_hour"])
        if stream["disconnected_seconds_24h"] is not None:
            down.add_metric([entry["name"]], stream["disconnected_seconds_24h"])
    yield from (connected, down, hour)
    accounts = Gauge("sfm_archiver_accounts", "Tracked accounts by state", labels=["state"])
    for state, n in report["accounts"]["by_state"].items():
        accounts.add_metric([state], n)
    yield accounts
    remaining = Gauge("sfm_archiver_rate_limit_remaining", "Requests left in the current rate-limit window", labels=["credential", "endpoint"])
    limit = Gauge("sfm_archiver_rate_limit_limit", "Requests allowed per rate-limit window", labels=["credential", "endpoint"])
    reset = Gauge("sfm_archiver_rate_limit_reset_timestamp_seconds", "When the rate-limit window resets", labels=["credential", "endpoint"])
    for entry in report["api"]["rate_limits"]:
        labels = [entry["credential"], entry["endpoint"]]
        remaining.add_metric(labels, entry["remaining"] or 0)
        limit.add_metric(labels, entry["rate_limit"] or 0)
        if entry.get("reset"):
            reset.add_metric(labels, entry["reset"])
    yield from (remaining, limit, reset)
    capped = Gauge("sfm_archiver_usage_capped", "1 while a usage cap pauses harvesting", labels=["scope"])
    for cap in report["api"]["usage_caps"]:
        capped.add_metric([cap["scope"]], 1)
    yield capped
    free = Gauge("sfm_archiver_disk_free_bytes", "Free bytes on the filesystem of each path", labels=["path"])
    total = Gauge("sfm_archiver_disk_size_bytes", "Size of the filesystem of each path", labels=["path"])
    for name, space in report["disk"]["paths"].items():
        if space["free_bytes"] is not None:
            free.add_metric([name], space["free_bytes"])
            total.add_metric([name], space["total_bytes"])
    yield from (free, total)
    bags = Gauge("sfm_archiver_bags", "Bag records by state", labels=["state"])
    for state, n in report["bags"]["by_state"].items():
        bags.add_metric([state], n)
    pending = Gauge("sfm_archiver_bag_periods_pending", "Complete periods not bagged yet")
    pending.add_metric([], report["bags"]["pending_count"])
    yield from (bags, pending)


def _counters(store: StateStore, config: Config, Counter_, Gauge):
    notify = NotifyStore(store)
    posts = Counter_("sfm_archiver_posts_captured", "Posts captured by timeline harvests", labels=["collection"])
    for name, n in notify.posts_captured().items():
        posts.add_metric([name], n)
    messages = Counter_("sfm_archiver_stream_messages_captured", "Stream messages captured", labels=["collection"])
    for name, n in notify.stream_messages().items():
        messages.add_metric([name], n)
    failures = Counter_("sfm_archiver_run_failures", "Job runs that failed", labels=["job", "collection"])
    for row in notify.failure_counts():
        failures.add_metric([row["job"], row["collection"] or ""], row["n"])
    success = Gauge("sfm_archiver_last_success_timestamp_seconds", "Start of the last successful run", labels=["job", "collection"])
    for row in notify.last_success():
        success.add_metric([row["job"], row["collection"] or ""], _seconds(row["started_at"]))
    limited = Counter_("sfm_archiver_rate_limited_responses", "HTTP 429 answers received", labels=["credential", "endpoint"])
    for row in store.rate_limited_counts():
        limited.add_metric([row["credential"], row["endpoint"]], row["responses"])
    yield from (posts, messages, failures, success, limited)
    handed = Counter_("sfm_archiver_bags_handed_off", "Bags built, validated and placed in the outbox", labels=["collection"])
    handed_bytes = Counter_("sfm_archiver_bags_handed_off_bytes", "Bytes of the bags handed off", labels=["collection"])
    for row in notify.bags_handed_off():
        handed.add_metric([row["collection"]], row["n"])
        handed_bytes.add_metric([row["collection"]], row["bytes"])
    yield from (handed, handed_bytes)
    events = Counter_("sfm_archiver_ledger_events", "Account ledger events by type", labels=["event"])
    records, _end = read_new(config.paths.state, 0)  # a plain read: no lock taken, nothing repaired
    for event, n in Counter(record.get("event") for record in records).items():
        events.add_metric([event], n)
    yield events
    alerts = Gauge("sfm_archiver_alerts_active", "Alert conditions active now", labels=["kind"])
    for kind, n in Counter(row.kind for row in notify.active_alerts().values()).items():
        alerts.add_metric([kind], n)
    queued = Gauge("sfm_archiver_notifications_queued", "Notifications waiting for delivery")
    queued.add_metric([], notify.queued())
    yield from (alerts, queued)


def registry_for(config: Callable[[], Config]):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ArchiverCollector(config))
    return registry


def metrics_text(config: Config) -> str:
    """The metrics of a configuration in the Prometheus text format."""
    from prometheus_client import generate_latest

    return generate_latest(registry_for(lambda: config)).decode()


class MetricsExporter:
    """The text file (rewritten every `metrics.interval`) and the `/metrics` server, as configured."""

    def __init__(self, config: Callable[[], Config]):
        self._config = config
        self._registry = registry_for(config)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server = None

    def start(self) -> None:
        settings = self._config().metrics
        if settings.listen is not None:
            from prometheus_client import start_http_server

            host, port = settings.listen
            try:
                self._server, _thread = start_http_server(port, addr=host, registry=self._registry)
                log.info("metrics served at http://%s:%d/metrics", host, port)
            except OSError as error:
                log.error("metrics: cannot listen on %s:%d: %s", host, port, error)
        if settings.textfile is not None:
            self._thread = threading.Thread(target=self._write_loop, name="metrics-textfile", daemon=True)
            self._thread.start()

    def _write_loop(self) -> None:
        from prometheus_client import write_to_textfile

        while not self._stop.is_set():
            settings = self._config().metrics
            if settings.textfile is not None:
                try:
                    write_to_textfile(str(settings.textfile), self._registry)
                except Exception as error:  # noqa: BLE001 - metrics must never stop the daemon
                    log.error("metrics: cannot write %s: %s", settings.textfile, error)
            self._stop.wait(settings.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
