"""The chaos run: the real daemon against the simulator through a compressed "day" of trouble.

Used by the CI test (tests/chaos/test_chaos.py, a 60 s day per wire style, >= 10 kills) and the soak
(benchmarks/soak.py, >= 100 kills). One seed decides everything random (kill moments, event
jitter, the bag serialization, the simulator's own randomness), so a failure can be replayed
with `SFM_CHAOS_SEED=<seed>`.

The day, as fractions of its length D:
  0.00  daemon starts: timelines every 2s, account checks every 3s, links every 15s, bags every
        4s (period hour, grace 0), a filtered stream (two collections) and the sample stream
  0.10  rename            0.15 protect ... 0.45 unprotect      0.20 suspend ... 0.50 unsuspend
  0.25  deactivate ... 0.55 reactivate   0.30 deactivate the holder of a configured username,
  0.40  reassign that username to a new account
  0.12-0.22 5xx answers   0.32-0.40 latency spikes   0.42-0.52 truncated and malformed bodies
  0.18  operational disconnect   0.38 stall (longer than the stall timeout)   0.58 dropped socket
  0.33  SIGHUP: pause an account   0.47 SIGHUP: add a stream rule   0.52 SIGHUP with an invalid
        file (refused), then the valid file again   0.62 SIGHUP: resume the account
  0.60  usage cap hit   0.70 usage cap lifted   0.63-0.67 stream connects answered 429 (and a
        disconnect to make the streams meet them)
  all along: SIGKILL at random moments, restart at once; live posts from several accounts
  Bluesky, beside it: a timeline collection and a Jetstream following its accounts, with handle
  changes, a takedown, a slow AppView and Jetstream drops (tests/chaos/bluesky_day.py)
A longer day (the soak) repeats this in cycles of about 110 s (the reassignment once).
Then: SIGTERM (a clean stop, exit 0), a final `update-usernames`, `user-timeline` and `bag`, and
the invariant checker over archive, outbox, ledger and state store.

Bagging in a compressed day: a period is complete only when its end has passed, so the run
starts from an archive that already holds captures of earlier hours (a real harvest and a
short sample-stream run made just before, their files moved into those hours), which the bag
job bags during the chaos,
kills included; the current hour stays in the archive, where the checker reads it too.

The usage cap: the daemon pauses harvesting for `USAGE_CAP_RECHECK` (1 h) after a capped answer
and offers no setting to shorten it, so after lifting the cap the run moves the recorded
resume time to now: the one constant of the day that cannot be scaled otherwise. Harvesting
must then resume by itself.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import yaml

from sfm_archiver.config import load_config
from sfm_archiver.simulator import Scenario, Simulator
from sfm_archiver.state import StateStore
from sfm_archiver.storage import layout
from sfm_archiver.timeutil import utcnow
from tests.chaos import bluesky_day
from tests.chaos.bluesky_day import BlueskyDay
from tests.invariants import Report, RunExpectations, check_run

TOKEN = "chaos-token-7f3e91d2c4b8a605"
EXPECTATIONS = RunExpectations(loss_window_seconds=5.0, staging_cutoff=None)
OLD_HOURS = (6, 5, 4, 3, 2)
TIMELINE_ACCOUNTS = ["sfm_alpha", "sfm_beta", "sfm_gamma", "sfm_delta", "sfm_eps", "sfm_zeta", "sfm_ghost",
                     "sfm_locked"]


@dataclass(frozen=True)
class ChaosSettings:
    seed: int
    duration: float = 110.0                 # seconds of chaos (the compressed day)
    min_kills: int = 10
    kill_gap: tuple[float, float] = (3.0, 9.0)
    messages_per_second: float = 8.0
    log: Callable[[str], None] = print
    wire: str = "compact"                   # the simulator's JSON: X's bytes, or a legal variant

    @property
    def serialization(self) -> str:
        return "tar" if self.seed % 2 else "none"


@dataclass
class ChaosResult:
    seed: int
    counts: Counter = field(default_factory=Counter)
    report: Report | None = None
    problems: list[str] = field(default_factory=list)   # run-level failures (not invariants)

    @property
    def ok(self) -> bool:
        return not self.problems and self.report is not None and self.report.ok

    def summary(self) -> str:
        lines = [f"chaos seed: {self.seed} (replay with SFM_CHAOS_SEED={self.seed})"]
        lines += [f"{name}: {value}" for name, value in sorted(self.counts.items())]
        if self.report is not None:
            lines.append(self.report.summary())
        lines += [f"RUN PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


# -- the world ---------------------------------------------------------------------------------


def scenario_document(settings: ChaosSettings) -> dict:
    slow = {"tweets": 40, "posts_per_second": 0.3}
    return {
        "seed": settings.seed,
        "wire": settings.wire,
        "tokens": [TOKEN],
        "accounts": [
            {"id": "100001", "username": "sfm_alpha", "tweets": 150, "posts_per_second": 0.5},
            {"id": "100002", "username": "sfm_beta", "tweets": 400, "tweet_interval_seconds": 60},
            {"id": "100003", "username": "sfm_gamma", **slow},
            {"id": "100004", "username": "sfm_delta", **slow},
            {"id": "100005", "username": "sfm_eps", **slow},
            {"id": "100006", "username": "sfm_zeta", **slow},
            {"id": "100007", "username": "sfm_ghost", "tweets": 20},
            {"id": "100008", "username": "sfm_locked", "tweets": 10, "protected": True},
        ],
        "rate_limits": {"window_seconds": 15, "user_tweets": 45, "users_lookup": 60},
        "streams": {"messages_per_second": settings.messages_per_second, "keepalive_seconds": 1.0,
                    "multi_match_probability": 0.3, "message_bytes": 1500},
        "links": {"probability": 0.2, "mix": {"chain": 88, "end": 5, "head405": 5, "loop": 2}},
    }


def config_document(api: str, root: Path, settings: ChaosSettings, *, gamma_paused: bool = False,
                    extra_rule: bool = False, bluesky: dict | None = None) -> dict:
    accounts: list[Any] = [name if name != "sfm_gamma" or not gamma_paused else {"username": name, "active": False}
                           for name in TIMELINE_ACCOUNTS]
    cop_rules = [{"value": "cop30", "tag": "cop"}] + ([{"value": "cop30 climate", "tag": "cop2"}] if extra_rule else [])
    return {
        "organization": {"name": "Chaos Library", "contact_email": "archives@example.edu"},
        "paths": {"archive": str(root / "archive"), "state": str(root / "state"), "outbox": str(root / "outbox")},
        "x": {"api_base_url": api, "bearer_token": TOKEN, "max_retries": 2, "request_timeout": "5s"},
        "collections": [
            {"name": "tl", "type": "timeline", "schedule": "every 2s", "backfill": 300, "accounts": accounts},
            {"name": "tl2", "type": "timeline", "schedule": "every 3s", "backfill": 300,
             "accounts": [{"id": "100001"}, {"id": "100005"}]},
            {"name": "climate", "type": "filter_stream", "rules": [{"value": "climate", "tag": "cc"}]},
            {"name": "cop", "type": "filter_stream", "rules": cop_rules},
            {"name": "sample", "type": "sample_stream"},
            *(bluesky_day.collections() if bluesky else []),
        ],
        **({"bluesky": bluesky} if bluesky else {}),
        "jobs": {"update_usernames": "every 3s", "fetch_urls": "every 15s", "bag": "every 4s"},
        "bagging": {"period": "hour", "grace": "0s", "checksums": ["sha256"], "serialization": settings.serialization},
        "storage": {"stream_flush_seconds": "500ms"},
        "streams": {"stall_timeout": "3s"},
        "urls": {"timeout": "3s", "max_hops": 5},
        "disk": {"warning_free": "50MB", "min_free": "10MB"},
    }


CYCLE_SECONDS = 110.0


def day_plan(settings: ChaosSettings, rng: random.Random) -> list[tuple[float, str, dict]]:
    """(seconds from the start, kind, detail) of every scheduled trouble, sorted.

    A day longer than CYCLE_SECONDS (the soak) repeats the plan in cycles of about that length;
    the username reassignment happens in the first cycle only (the username stays taken).
    """
    cycles = max(1, round(settings.duration / CYCLE_SECONDS))
    length = settings.duration / cycles
    plan: list[tuple[float, str, dict]] = []
    for cycle in range(cycles):
        plan += _cycle_plan(cycle, cycle * length, length, rng)
    return sorted(plan, key=lambda item: item[0])


def _cycle_plan(cycle: int, offset: float, d: float, rng: random.Random) -> list[tuple[float, str, dict]]:
    def at(fraction: float) -> float:
        return offset + max(1.0, (fraction + rng.uniform(-0.01, 0.01)) * d)

    events = [
        (0.10, {"action": "rename", "account": "100003", "username": f"sfm_gamma_{cycle + 1}"}),
        (0.15, {"action": "protect", "account": "100004"}), (0.45, {"action": "unprotect", "account": "100004"}),
        (0.20, {"action": "suspend", "account": "100005"}), (0.50, {"action": "unsuspend", "account": "100005"}),
        (0.25, {"action": "deactivate", "account": "100006"}), (0.55, {"action": "reactivate", "account": "100006"}),
        (0.12, {"action": "faults", "error_rate": 0.15, "error_status": 503}),
        (0.22, {"action": "faults", "error_rate": 0.0}),
        (0.32, {"action": "faults", "latency_ms": 400, "endpoint_latency_ms": {"user_tweets": 900}}),
        (0.40, {"action": "faults", "latency_ms": 0, "endpoint_latency_ms": {}}),
        (0.42, {"action": "faults", "truncate_rate": 0.2, "malformed_rate": 0.2}),
        (0.52, {"action": "faults", "truncate_rate": 0.0, "malformed_rate": 0.0}),
        (0.18, {"action": "stream_disconnect"}),
        (0.38, {"action": "stream_stall", "seconds": 5}),
        (0.58, {"action": "stream_drop"}),
        (0.63, {"action": "faults", "error_rate": 1.0, "error_status": 429, "endpoints": ["search_stream", "sample_stream"]}),
        (0.64, {"action": "stream_disconnect"}),
        (0.67, {"action": "faults", "error_rate": 0.0, "error_status": 503, "endpoints": []}),
        (0.60, {"action": "usage_cap"}),
        (0.70, {"action": "lift_usage_cap"}),
    ]
    if cycle == 0:
        events += [(0.30, {"action": "deactivate", "account": "100007"}),
                   (0.40, {"action": "reassign_username", "username": "sfm_ghost", "id": "100100", "tweets": 5})]
    for _ in range(int(d / 8)):
        events.append((rng.uniform(0.05, 0.7), {"action": "post", "account": rng.choice(["100001", "100002"]),
                                                 "count": rng.randint(1, 4)}))
    plan = [(at(fraction), "event", event) for fraction, event in events]
    plan += [(at(fraction), "bluesky", event) for fraction, event in bluesky_day.cycle_events(cycle, d, rng)]
    plan += [(at(0.33), "reload", {"gamma_paused": True}), (at(0.47), "reload", {"gamma_paused": True, "extra_rule": True}),
             (at(0.52), "invalid_reload", {}), (at(0.62), "reload", {"extra_rule": True})]
    plan += [(at(0.71), "compress_usage_cap", {}), (at(0.75), "compress_usage_cap", {})]
    return plan


# -- the run -------------------------------------------------------------------------------------


class ChaosRun:
    def __init__(self, root: Path, settings: ChaosSettings):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.result = ChaosResult(settings.seed)
        self.counts = self.result.counts
        self.log_path = self.root / "daemon.log"
        self.config_path = self.root / "config.yaml"
        self.scenario = Scenario.from_dict(scenario_document(settings))
        self.sim = Simulator(self.scenario)
        self.bluesky = BlueskyDay(settings)
        self.process: subprocess.Popen | None = None
        self.notify = ReadySocket()
        self.config_options: dict = {}
        self._kill_expected = False

    # -- phases ---------------------------------------------------------------------------

    def run(self) -> ChaosResult:
        say = self.settings.log
        say(f"chaos seed: {self.settings.seed} (replay with SFM_CHAOS_SEED={self.settings.seed}); "
            f"{self.settings.duration:.0f}s day, bags serialized as {self.settings.serialization}")
        self.sim.start()
        self.bluesky.start()
        try:
            self.write_config()
            self.prepare_old_hours()
            self.chaos()
            self.finish()
            self.check()
        finally:
            self.stop_daemon(signal.SIGKILL)
            self.sim.stop()
            self.bluesky.stop()
            self.notify.close()
        return self.result

    def write_config(self, **options: Any) -> None:
        self.config_options = options
        document = config_document(self.sim.base_url, self.root, self.settings, **options,
                                   bluesky=bluesky_day.config_section(self.bluesky.sim))
        _atomic_text(self.config_path, yaml.safe_dump(document, sort_keys=False))

    def prepare_old_hours(self) -> None:
        """A real harvest and stream, then their files moved into earlier hours (for the bag job)."""
        for name in ("tl", "tl2"):
            self.one_shot("user-timeline", name)
        # only the sample stream: a one-shot `stream climate` installs the rules of every filter
        # collection but writes only climate, so messages of `cop` would be dropped (by design of
        # the one-shot command) and show up as misrouted
        self.one_shot("stream", "sample", "--duration", "2")
        moved = 0
        for name in ("tl", "tl2", "climate", "cop", "sample"):
            files = sorted((self.root / "archive" / name).rglob("*.gz")) if (self.root / "archive" / name).is_dir() else []
            for index, path in enumerate(files):
                hours_ago = OLD_HOURS[index % len(OLD_HOURS)]
                moment = utcnow() - timedelta(hours=hours_ago)
                parts = layout.parse_capture_name(path.name)
                folder = layout.hour_folder(self.root / "archive", name, moment)
                folder.mkdir(parents=True, exist_ok=True)
                target = layout.unused_capture_path(folder, name, parts["kind"], moment, parts["ext"])
                path.rename(target)
                moved += 1
        for folder in sorted((self.root / "archive").rglob("*"), reverse=True):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        self.counts["old_hour_files_placed"] = moved

    def chaos(self) -> None:
        settings = self.settings
        plan = day_plan(settings, self.rng)
        self.start_daemon()
        self.wait_jetstream()  # the Jetstream's first connection starts live: the day begins after it
        started = time.monotonic()
        next_kill = started + self.rng.uniform(*settings.kill_gap)
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= settings.duration and self.counts["kills"] >= settings.min_kills:
                break
            while plan and plan[0][0] <= elapsed:
                _, kind, detail = plan.pop(0)
                self.apply(kind, detail)
            if time.monotonic() >= next_kill:
                self.kill_and_restart()
                next_kill = time.monotonic() + self.rng.uniform(*settings.kill_gap)
            self.watch_daemon()
            _pause(0.05)
        self.counts["chaos_seconds"] = round(time.monotonic() - started)

    def finish(self) -> None:
        """A clean stop, then a final account check, harvest and bag pass as one-shot commands."""
        self.wait_ready()
        self.bluesky.quiet()
        code = self.stop_daemon(signal.SIGTERM, timeout=90)
        if code != 0:
            self.problem(f"the daemon exited {code} on SIGTERM; log tail:\n{self.log_tail()}")
        for command in ("update-usernames", "user-timeline", "bag"):
            self.one_shot(command)

    def check(self) -> None:
        config = load_config(self.config_path)
        published = self.sim.published()
        self.save_published(published)
        report = check_run(config, published, self.scenario.accounts, EXPECTATIONS, also_visit=self.bluesky.visit)
        self.result.report = report
        self._check_bluesky(config, report)
        self._verify_bags(report)
        self._scan_log(report)
        counters = self.sim.counters()
        self.counts["api_calls"] = counters["calls_total"]
        self.counts["api_rate_limited_429"] = counters["rate_limited"]
        self.counts["api_usage_capped_429"] = counters["usage_capped"]
        for name, value in counters["faults"].items():
            self.counts[f"api_faults_{name}"] = value
        self.counts["stream_rejected_too_many_connections_429"] = counters["streams"]["rejected_too_many_connections"]
        self.counts["bags_made"] = report.counts["bags"]
        if counters["usage_capped"] == 0:
            self.problem("the usage cap was never hit: the cap part of the day did not happen")

    def save_published(self, published: dict) -> None:
        """What the simulator published, kept beside the archive so the check can be re-run."""
        document = {"scenario": scenario_document(self.settings), "published": published}
        with gzip.open(self.root / "published.json.gz", "wt") as handle:
            json.dump(document, handle)

    # -- the steps of the day ---------------------------------------------------------------

    def apply(self, kind: str, detail: dict) -> None:
        if kind in ("event", "bluesky"):
            apply_event, counter = ((self.sim.apply_event, "sim_events_applied") if kind == "event"
                                    else (self.bluesky.apply, "bluesky_events_applied"))
            try:
                apply_event(detail)
                self.counts[counter] += 1
            except Exception as error:  # an event that cannot apply is a broken plan
                self.problem(f"{kind} {detail} not applied: {error}")
        elif kind == "reload":
            self.write_config(**detail)
            self.signal(signal.SIGHUP)
            self.counts["sighup_valid"] += 1
        elif kind == "invalid_reload":
            self.invalid_reload()
        elif kind == "compress_usage_cap":
            self.compress_usage_cap()

    def invalid_reload(self) -> None:
        """An invalid edit: the daemon must refuse it, keep running and say so; then the fix."""
        valid = self.config_path.read_text()
        self.wait_ready()  # a daemon starting up must not read the invalid file (it would exit 2)
        store = StateStore(self.root / "state")
        try:
            before = (store.daemon_values().get("last_reload_error") or {}).get("at")
            _atomic_text(self.config_path, valid + "\ncollections: [\n")
            self.signal(signal.SIGHUP)
            self.counts["sighup_invalid"] += 1
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                error = store.daemon_values().get("last_reload_error") or {}
                if error.get("at") and error.get("at") != before:
                    self.counts["invalid_reloads_refused"] += 1
                    break
                if self.process is None or self.process.poll() is not None:
                    break
                _pause(0.1)
            if self.process is not None and self.process.poll() is not None and not self._kill_expected:
                self.problem(f"the daemon died on an invalid reload; log tail:\n{self.log_tail()}")
        finally:
            store.close()
            _atomic_text(self.config_path, valid)
        self.signal(signal.SIGHUP)
        self.counts["sighup_valid"] += 1

    def compress_usage_cap(self) -> None:
        """The cap was lifted: bring the recorded recheck time (1 h away) forward to now."""
        store = StateStore(self.root / "state")
        try:
            caps = store.usage_caps()
            for cap in caps:
                if cap.get("resume_at"):
                    store.set_usage_cap(cap["scope"], utcnow(), cap.get("detail") or "")
            self.counts["usage_cap_pauses_seen"] = max(self.counts["usage_cap_pauses_seen"], len(caps))
        finally:
            store.close()

    # -- the daemon process ----------------------------------------------------------------

    def start_daemon(self) -> None:
        env = {key: value for key, value in os.environ.items() if key not in ("SFM_ARCHIVER_CONFIG", "NOTIFY_SOCKET")}
        env["NOTIFY_SOCKET"] = self.notify.address
        self.notify.expect_start()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(self.config_path), "run"],
                                            stdout=subprocess.DEVNULL, stderr=log, env=env)
        self.counts["daemon_starts"] += 1

    def kill_and_restart(self) -> None:
        self._kill_expected = True
        self.stop_daemon(signal.SIGKILL)
        self._kill_expected = False
        self.counts["kills"] += 1
        self.start_daemon()
        self.counts["restarts"] += 1

    def stop_daemon(self, signum: int, timeout: float = 30) -> int | None:
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signum)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.problem(f"the daemon did not exit within {timeout}s of signal {signum}")
                process.kill()
                process.wait()
        self.process = None
        return process.returncode

    def signal(self, signum: int) -> None:
        """Send a signal once the daemon is READY (as systemd does: no reload before start-up ends)."""
        if self.process is not None and self.process.poll() is None:
            self.wait_ready()
            self.process.send_signal(signum)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not self.notify.ready() and time.monotonic() < deadline and self.process and self.process.poll() is None:
            _pause(0.05)
        if not self.notify.ready():
            self.problem(f"the daemon did not report READY=1 within {timeout}s; log tail:\n{self.log_tail()}")

    def watch_daemon(self) -> None:
        """A daemon that exits by itself (not our kill) is a failure; it is restarted to go on."""
        if self.process is not None and self.process.poll() is not None:
            self.problem(f"the daemon exited by itself with {self.process.returncode}; log tail:\n{self.log_tail()}")
            self.counts["unexpected_exits"] += 1
            self.start_daemon()

    def one_shot(self, command: str, *args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "sfm_archiver", "--config", str(self.config_path), command, *args],
                                capture_output=True, text=True, timeout=300,
                                env={k: v for k, v in os.environ.items() if k != "SFM_ARCHIVER_CONFIG"})
        self.counts[f"one_shot_{command}"] += 1
        if result.returncode != 0:
            self.problem(f"`{command} {' '.join(args)}` exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")

    def wait_jetstream(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.bluesky.sim.counters["jetstream_connections"] < 1 and time.monotonic() < deadline:
            _pause(0.05)
        if self.bluesky.sim.counters["jetstream_connections"] < 1:
            self.problem(f"the jetstream collection did not connect within {timeout}s; log tail:\n{self.log_tail()}")

    # -- checks beyond the checker ---------------------------------------------------------

    def _check_bluesky(self, config: Any, report: Report) -> None:
        from sfm_archiver.ledger import Ledger

        store = StateStore(config.paths.state)
        try:
            self.bluesky.check(store, list(Ledger(config.paths.state).records()), report)
        finally:
            store.close()
        counters = self.bluesky.sim.counters
        self.counts["bluesky_xrpc_calls"] = counters["xrpc_calls"]
        self.counts["bluesky_429s"] = counters["429s"]
        self.counts["jetstream_connections"] = counters["jetstream_connections"]

    def _verify_bags(self, report: Report) -> None:
        from sfm_archiver.bagging import verify_paths

        bags = [p for p in sorted((self.root / "outbox").iterdir()) if p.name != ".staging" and not p.name.endswith(".ready")]
        problems = verify_paths(bags, workers=1) if bags else []
        for problem in problems:
            report.add("bag.verify", problem)
        self.counts["bags_verified_by_verify"] = len(bags) if not problems else 0

    def _scan_log(self, report: Report) -> None:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if TOKEN in text:
            report.add("secret.leak", "the daemon log holds the bearer token", self.log_path)
        self.counts["log_tracebacks"] = text.count("Traceback (most recent call last)")

    def problem(self, message: str) -> None:
        self.result.problems.append(message)
        self.settings.log(f"PROBLEM: {message[:500]}")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class ReadySocket:
    """A stand-in for systemd's notify socket (abstract namespace): tells when a start is READY."""

    def __init__(self) -> None:
        name = f"sfm-chaos-{os.getpid()}-{id(self)}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name)
        self.sock.setblocking(False)
        self.address = "@" + name
        self.readies = 0
        self.wanted = 0

    def expect_start(self) -> None:
        self._drain()
        self.wanted = self.readies + 1

    def ready(self) -> bool:
        self._drain()
        return self.readies >= self.wanted

    def _drain(self) -> None:
        while True:
            try:
                message = self.sock.recv(4096).decode(errors="replace")
            except (BlockingIOError, InterruptedError):
                return
            self.readies += message.split("\n").count("READY=1")

    def close(self) -> None:
        self.sock.close()


def _atomic_text(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(text)
    os.replace(temp, path)


def _pause(seconds: float) -> None:
    threading.Event().wait(seconds)


def run_chaos(root: Path, settings: ChaosSettings) -> ChaosResult:
    return ChaosRun(root, settings).run()


def recheck(root: Path) -> Report:
    """The invariant check again over a finished run's folder (e.g. after changing the checker)."""
    with gzip.open(Path(root) / "published.json.gz", "rt") as handle:
        document = json.load(handle)
    scenario = Scenario.from_dict(document["scenario"])
    return check_run(load_config(Path(root) / "config.yaml"), document["published"], scenario.accounts, EXPECTATIONS)


def seed_from_environment(default: int | None = None) -> int:
    value = os.environ.get("SFM_CHAOS_SEED")
    if value:
        return int(value)
    return default if default is not None else random.SystemRandom().randrange(1, 10**6)


__all__ = ["ChaosResult", "ChaosRun", "ChaosSettings", "recheck", "run_chaos", "seed_from_environment"]
