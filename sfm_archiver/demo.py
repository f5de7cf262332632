"""`sfm-archiver demo`: the simulator and the real daemon, end to end, in a few minutes.

The demo starts the built-in X API simulator (scenario `sfm_archiver/demo/scenario.yaml`) and
the Bluesky simulator (AppView and Jetstream, `sfm_archiver/demo/bluesky-scenario.yaml`) in
this process, writes a configuration (`sfm_archiver/demo/config.yaml`: one X and one Bluesky
timeline collection, an X filter stream and a Jetstream following the Bluesky accounts,
schedules of seconds, hourly bags without grace) and runs `sfm-archiver run` on it as a child
process, exactly as systemd would (it even owns the `NOTIFY_SOCKET` and waits for READY=1).
Once the daemon has resolved the accounts, the demo renames one X and one Bluesky account on
the simulators and suspends an X one, and posts for a Bluesky account every few seconds. It
watches the folders for: timeline captures of both platforms, the `renamed` (X and Bluesky)
and `suspended` ledger events, the Bluesky posts arriving through Jetstream, link expansions,
a validated bag in the outbox, the alert about the suspension at a JSON webhook the demo
listens on (an Apprise `json://` target, as a chat service would be), and the HTML report the
daemon's `report` job writes. It prints the status table and where everything is, stops the
daemon with SIGTERM and exits 0 only if all of it happened.

Why the bag is of an earlier hour: a period is bagged only once it is over (its end plus
`grace` has passed), and a demo of two minutes rarely crosses an hour. Shortening periods
(minutes) or running the daemon on a shifted clock would show a bagger that does not exist in
production. Instead the demo does what an archive migrating from SFM does on its first day:
it imports a legacy SFM stream file (`<collection>-YYYY-MM-DDTHH-MM-SSZ.gz`, here made of
messages read from the simulator's sample stream and dated two hours back) with the real
`organize` job, and the daemon's scheduled `bag` job bags that completed hour like any other.
The live captures of the current hour stay in the archive until their hour is over.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from sfm_archiver.errors import DemoError, UsageError
from sfm_archiver.timeutil import utcnow

if TYPE_CHECKING:
    from sfm_archiver.simulator import Simulator
    from sfm_archiver.simulator.bluesky import BlueskySimulator

MARKER = ".sfm-archiver-demo"
TIMELINES = "demo-timelines"
STREAM = "demo-stream"
BLUESKY_TIMELINES = "demo-bluesky"
JETSTREAM = "demo-jetstream"
BLUESKY_RENAME = {"from": "oldname.bsky.demo", "to": "newname.bsky.demo"}
BLUESKY_POSTER = "library.bsky.demo"
BLUESKY_POST_EVERY = 3.0
RENAME = {"id": "200004", "from": "oldhandle", "to": "newhandle"}
SUSPEND = {"id": "200003", "username": "campus_events"}
LEGACY_HOURS_BACK = 2
STOP_TIMEOUT = 75.0


@dataclass
class Findings:
    """What the demo has seen so far (each item printed once, when it first appears)."""

    capture_files: list[Path] = field(default_factory=list)
    posts: int = 0
    renamed: dict | None = None
    suspended: dict | None = None
    link_results: int = 0
    links_resolved: int = 0
    bag: Path | None = None
    bag_problems: list[str] = field(default_factory=list)
    alert: dict | None = None
    report: Path | None = None
    bluesky_posts: int = 0
    bluesky_renamed: dict | None = None
    jetstream_posts: int = 0

    @property
    def complete(self) -> bool:
        return bool(
            self.posts and self.renamed and self.suspended and self.links_resolved
            and self.bag is not None and not self.bag_problems and self.alert and self.report
            and self.bluesky_posts and self.bluesky_renamed and self.jetstream_posts
        )

    def missing(self) -> list[str]:
        wanted = [
            ("timeline captures", self.posts),
            ("the 'renamed' ledger event", self.renamed),
            ("the 'suspended' ledger event", self.suspended),
            ("link expansions", self.links_resolved),
            ("a validated bag in the outbox", self.bag is not None and not self.bag_problems),
            ("an alert at the demo's webhook", self.alert),
            ("the HTML report", self.report),
            ("Bluesky timeline captures", self.bluesky_posts),
            ("the Bluesky 'renamed' ledger event", self.bluesky_renamed),
            ("Bluesky posts through Jetstream", self.jetstream_posts),
        ]
        return [what for what, seen in wanted if not seen]


def run_demo(folder: Path, minutes: float = 2.0, out: Callable[[str], None] = print) -> int:
    """Run the whole demo in `folder`; 0 when every step was seen, 1 otherwise."""
    from sfm_archiver.simulator import Scenario, Simulator
    from sfm_archiver.simulator.bluesky import BlueskyScenario, BlueskySimulator

    if minutes <= 0:
        raise UsageError("--minutes must be more than 0")
    folder = prepare_folder(Path(folder))
    scenario_path = folder / "scenario.yaml"
    scenario_path.write_bytes(_data("scenario.yaml"))
    bluesky_scenario_path = folder / "bluesky-scenario.yaml"
    bluesky_scenario_path.write_bytes(_data("bluesky-scenario.yaml"))
    simulator = Simulator(Scenario.from_yaml(scenario_path))
    bluesky = BlueskySimulator(BlueskyScenario.from_yaml(bluesky_scenario_path))
    api = simulator.start()
    bluesky.start()
    started = time.monotonic()
    daemon = None
    inbox = AlertInbox(folder / "alerts")
    try:
        config_path = write_config(folder, api, inbox.port, bluesky)
        out(f"sfm-archiver demo in {folder}")
        out(f"  simulator   {api}  (scenario {scenario_path})")
        out(f"  bluesky     {bluesky.appview_url} and {bluesky.jetstream_url}  (scenario {bluesky_scenario_path})")
        out(f"  alerts      json://127.0.0.1:{inbox.port}/demo-alerts (a webhook the demo listens on; copies in {inbox.folder})")
        legacy = import_legacy_file(folder, api)
        out(f"  legacy SFM  {legacy.name} imported by `organize` into {legacy.parent.relative_to(folder)}/")
        daemon = DemoDaemon(folder, config_path)
        daemon.wait_ready(30)
        out(f"  daemon      pid {daemon.process.pid}: READY=1 received (log: {daemon.log})")
        findings = watch(folder, Simulators(simulator, bluesky), daemon, started + minutes * 60, out, started, inbox)
        out("")
        out(_status_table(config_path))
        code = daemon.stop()
        daemon = None
        out("")
        out(where_everything_is(folder, config_path, findings))
        if code != 0:
            out(f"demo: the daemon exited with {code} on SIGTERM (see {folder / 'daemon.log'})")
            return 1
        if not findings.complete:
            out(f"demo: not seen within {minutes:g} minute(s): {', '.join(findings.missing())}")
            return 1
        out(f"demo: every step seen in {time.monotonic() - started:.0f} s")
        return 0
    finally:
        if daemon is not None:
            daemon.stop()
        simulator.stop()
        bluesky.stop()
        inbox.stop()


def prepare_folder(folder: Path) -> Path:
    """An empty folder for the demo; a previous demo's folder (with its marker) is emptied."""
    folder = folder.expanduser().resolve()
    if folder.exists() and any(folder.iterdir()):
        if not (folder / MARKER).exists():
            raise UsageError(f"{folder} is not empty and not a previous demo folder: choose another --dir")
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("written by sfm-archiver demo; the folder is emptied by the next demo run\n")
    return folder


def write_config(folder: Path, api: str, hook_port: int, bluesky: BlueskySimulator) -> Path:
    """The demo configuration with the simulators' and the webhook's addresses filled in."""
    path = folder / "config.yaml"
    text = _data("config.yaml").decode()
    for placeholder, value in (("@API@", api), ("@HOOK@", str(hook_port)), ("@BSKY@", bluesky.appview_url),
                               ("@JETSTREAM@", bluesky.jetstream_url)):
        text = text.replace(placeholder, value)
    path.write_text(text)
    return path


@dataclass
class Simulators:
    """The two simulators the demo drives, and when it last posted on Bluesky."""

    x: Simulator
    bluesky: BlueskySimulator
    last_post: float = 0.0


class AlertInbox:
    """A JSON webhook on 127.0.0.1 (what a chat service would be): keeps each alert, also as a file."""

    def __init__(self, folder: Path):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.folder = folder
        self.received: list[dict] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                inbox.folder.mkdir(parents=True, exist_ok=True)
                (inbox.folder / f"alert-{len(inbox.received) + 1:03d}.json").write_text(json.dumps(body, indent=1))
                inbox.received.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def import_legacy_file(folder: Path, api: str, messages: int = 20) -> Path:
    """A legacy SFM stream file of an earlier hour, sorted into the archive by `organize`."""
    from sfm_archiver.jobs.organize import organize

    legacy_dir = folder / "legacy-sfm-files"
    legacy_dir.mkdir()
    stamp = (utcnow() - timedelta(hours=LEGACY_HOURS_BACK)).replace(minute=15, second=0, microsecond=0)
    path = legacy_dir / f"{STREAM}-{stamp.strftime('%Y-%m-%dT%H-%M-%SZ')}.gz"
    with gzip.open(path, "wb") as handle:
        for line in sample_stream_lines(api, messages):
            handle.write(line + b"\n")
    report = organize(legacy_dir, folder / "archive", include_recent=True)
    if not report.moved:
        raise DemoError(f"organize did not move {path}: {report}")
    return report.moved[0][1]


def sample_stream_lines(api: str, count: int, timeout: float = 15.0) -> list[bytes]:
    """`count` raw messages from the simulator's sample stream (keep-alives skipped)."""
    import requests

    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    with requests.get(
        f"{api}/2/tweets/sample/stream", headers={"Authorization": "Bearer demo-token-not-secret"}, stream=True, timeout=10
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.strip():
                lines.append(line.strip())
            if len(lines) >= count or time.monotonic() > deadline:
                break
    if not lines:
        raise DemoError("the simulator's sample stream sent no messages")
    return lines


class DemoDaemon:
    """`sfm-archiver run` as a child process, with a notify socket as systemd would give it."""

    def __init__(self, folder: Path, config_path: Path):
        self.log = folder / "daemon.log"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"sfm-archiver-demo-{os.getpid()}-{time.monotonic_ns()}"
        self.socket.bind("\0" + name)
        self.socket.settimeout(0.2)
        env = {**os.environ, "NOTIFY_SOCKET": "@" + name}
        env.pop("SFM_ARCHIVER_CONFIG", None)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "sfm_archiver", "--config", str(config_path), "run"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DemoError(f"the daemon exited with {self.process.returncode}:\n{_tail(self.log)}")
            try:
                if b"READY=1" in self.socket.recv(4096).split(b"\n"):
                    return
            except TimeoutError:
                continue
        raise DemoError(f"no READY=1 from the daemon within {timeout:.0f} s:\n{_tail(self.log)}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.socket.close()
        return self.process.returncode


def watch(
    folder: Path, simulators: Simulators, daemon: DemoDaemon, deadline: float, out: Callable[[str], None], started: float,
    inbox: AlertInbox,
) -> Findings:
    """Poll the folders until everything was seen or the deadline passed; print each new sight."""
    findings = Findings()
    x_events_applied = bluesky_renamed = False
    renamed_did = simulators.bluesky.did_of(BLUESKY_RENAME["from"])
    poster_did = simulators.bluesky.did_of(BLUESKY_POSTER)

    def say(text: str) -> None:
        out(f"[{time.monotonic() - started:4.0f}s] {text}")

    while time.monotonic() < deadline and not findings.complete:
        if daemon.process.poll() is not None:
            say(f"the daemon exited with {daemon.process.returncode}:\n{_tail(daemon.log)}")
            break
        if not x_events_applied and _resolved(folder, {RENAME["id"], SUSPEND["id"]}):
            simulators.x.apply_event({"action": "rename", "account": RENAME["from"], "username": RENAME["to"]})
            simulators.x.apply_event({"action": "suspend", "account": SUSPEND["username"]})
            say(f"simulator: @{RENAME['from']} renamed itself @{RENAME['to']}; @{SUSPEND['username']} was suspended")
            x_events_applied = True
        if not bluesky_renamed and _resolved(folder, {renamed_did}):
            simulators.bluesky.rename(renamed_did, BLUESKY_RENAME["to"])
            say(f"bluesky: @{BLUESKY_RENAME['from']} changed its handle to @{BLUESKY_RENAME['to']}")
            bluesky_renamed = True
        if time.monotonic() - simulators.last_post >= BLUESKY_POST_EVERY:
            simulators.bluesky.post(poster_did)
            simulators.last_post = time.monotonic()
        _look(folder, findings, say)
        _look_bluesky(folder, findings, say, renamed_did, poster_did)
        _look_notify(folder, findings, say, inbox)
        time.sleep(0.5)
    return findings


def _look(folder: Path, findings: Findings, say: Callable[[str], None]) -> None:
    archive = folder / "archive"
    if not findings.posts:
        files = sorted((archive / TIMELINES).rglob(f"{TIMELINES}-timeline-*.jsonl.gz"))
        posts = sum(_posts(path) for path in files)
        if posts:
            findings.capture_files, findings.posts = files, posts
            say(f"captures: {posts} posts in {len(files)} file(s), e.g. {files[0].relative_to(folder)}")
    for key, event, account in (("renamed", "renamed", RENAME["id"]), ("suspended", "suspended", SUSPEND["id"])):
        if getattr(findings, key) is None:
            record = _ledger_event(folder, account, event)
            if record:
                setattr(findings, key, record)
                change = f" {record.get('from')} -> {record.get('to')}" if event == "renamed" else ""
                say(f"ledger: seq {record['seq']} account {account} {event}{change}")
    if not findings.links_resolved:
        results = [r for path in sorted(archive.rglob("*-urls-*.jsonl.gz")) for r in _records(path)]
        resolved = [r for r in results if r.get("final_status") == 200]
        if resolved:
            findings.link_results, findings.links_resolved = len(results), len(resolved)
            example = resolved[0]
            say(f"links: {len(resolved)} of {len(results)} expanded, e.g. {example.get('url')} -> {example.get('final_url')} "
                f"({len(example.get('chain') or [])} hops)")
    if findings.bag is None:
        bags = sorted(p for p in (folder / "outbox").glob(f"{STREAM}_*") if not p.name.startswith("."))
        if bags:
            from sfm_archiver.bagging import verify_paths

            findings.bag = bags[0]
            findings.bag_problems = verify_paths([bags[0]])
            verdict = "valid (BagIt and every capture file checked)" if not findings.bag_problems else "INVALID: " + "; ".join(findings.bag_problems[:3])
            say(f"bag: {bags[0].relative_to(folder)} {verdict}")


def _look_bluesky(folder: Path, findings: Findings, say: Callable[[str], None], renamed_did: str, poster_did: str) -> None:
    archive = folder / "archive"
    if not findings.bluesky_posts:
        files = sorted((archive / BLUESKY_TIMELINES).rglob(f"{BLUESKY_TIMELINES}-timeline-*.jsonl.gz"))
        posts = sum(len(record.get("feed") or []) for path in files for record in _records(path))
        if posts:
            findings.bluesky_posts = posts
            say(f"bluesky captures: {posts} feed items in {len(files)} file(s), e.g. {files[0].relative_to(folder)}")
    if findings.bluesky_renamed is None:
        record = _ledger_event(folder, renamed_did, "renamed")
        if record:
            findings.bluesky_renamed = record
            say(f"ledger: seq {record['seq']} bluesky account {renamed_did} renamed {record.get('from')} -> {record.get('to')}")
    if not findings.jetstream_posts:
        files = sorted((archive / JETSTREAM).rglob(f"{JETSTREAM}-stream-*.jsonl.gz"))
        creates = [record for path in files for record in _records(path)
                   if record.get("did") == poster_did and (record.get("commit") or {}).get("operation") == "create"]
        if creates:
            findings.jetstream_posts = len(creates)
            say(f"jetstream: {len(creates)} new post(s) of @{BLUESKY_POSTER} captured as they were made, "
                f"e.g. {files[0].relative_to(folder)}")


def _look_notify(folder: Path, findings: Findings, say: Callable[[str], None], inbox: AlertInbox) -> None:
    if findings.alert is None:
        suspended = [body for body in inbox.received if SUSPEND["username"] in body.get("message", "")]
        if suspended:
            findings.alert = suspended[0]
            say(f"alert: the webhook received {suspended[0].get('title')!r}")
    report = folder / "state" / "report" / "index.html"
    if findings.report is None and report.exists():
        findings.report = report
        say(f"report: {report.relative_to(folder)} written by the daemon's report job")


def _resolved(folder: Path, account_ids: set[str]) -> bool:
    from sfm_archiver.ledger import Ledger

    added = {r["account_id"] for r in Ledger(folder / "state").records() if r["event"] == "added"}
    return account_ids <= added


def _ledger_event(folder: Path, account_id: str, event: str) -> dict | None:
    from sfm_archiver.ledger import Ledger

    return next((r for r in Ledger(folder / "state").records() if r["account_id"] == account_id and r["event"] == event), None)


def _records(path: Path) -> list[dict]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, EOFError, ValueError):
        return []  # being written: read again on the next look


def _posts(path: Path) -> int:
    return sum(len(record.get("data") or []) for record in _records(path))


def _status_table(config_path: Path) -> str:
    from sfm_archiver import status

    config, problems = status.load_for_reading(config_path)
    return status.render_text(status.collect(config, config_problems=problems))


def where_everything_is(folder: Path, config_path: Path, findings: Findings) -> str:
    cli = f"sfm-archiver --config {config_path}"
    lines = [
        "Where everything is:",
        f"  configuration   {config_path}",
        f"  captures        {folder / 'archive'}/<collection>/YYYY/MM/DD/HH/*.jsonl.gz  (gzip JSON lines, raw API objects + __sfm)",
        f"  link results    {folder / 'archive'}/{TIMELINES}/.../{TIMELINES}-urls-*.jsonl.gz (+ .warc.gz of the requests)",
        f"  ledger          {folder / 'state' / 'ledger.jsonl'}   ({cli} ledger show)",
        f"  state           {folder / 'state' / 'state.sqlite3'}",
        f"  bags            {folder / 'outbox'}/" + (f"   e.g. {findings.bag.name}" if findings.bag else ""),
        f"  daemon log      {folder / 'daemon.log'}",
        f"  alerts          {folder / 'alerts'}/alert-*.json  (what the webhook target received)",
        f"  report          open file://{folder / 'state' / 'report' / 'index.html'}  (refreshed by the daemon; "
        f"{cli} report writes one now)",
        "",
        "Try next:",
        f"  {cli} status",
        f"  {cli} ledger show --account {RENAME['to']}",
        f"  {cli} verify {findings.bag or folder / 'outbox' / '<bag>'}",
        f"  {cli} run        # the daemon again (Ctrl-C stops it); this hour's captures are bagged once the hour is over",
    ]
    return "\n".join(lines)


def _data(name: str) -> bytes:
    return resources.files("sfm_archiver").joinpath("demo", name).read_bytes()


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
