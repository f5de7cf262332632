"""Invariants of a whole archive: what was published is held exactly once, and nothing is half-made.

Two entry points, both returning a `Report` (violations as data, plus counts):

    check_storage(archive, outbox)          no simulator needed. Every capture file
                                            decompresses and parses, every bag validates, no
                                            capture file is in two places, no partial bag.
    check_run(config, published, accounts)  tests and soak runs: the above, plus a comparison with
                                            what the simulator published (`Simulator.published()`
                                            or GET /_sim/published), the ledger and the state store.

Captures are read wherever they are: in the archive, in bag folders and inside `.tar` bags in
the outbox. A bag is validated with bagit-python; a `.tar` bag is unpacked into a temporary
folder first (members are checked so none can land outside it).
"""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import tempfile
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Iterable, Mapping

from sfm_archiver.storage import layout
from sfm_archiver.streams.routes import routes_of_document
from sfm_archiver.timeutil import parse_timestamp

STAGING = ".staging"
BAG_NAME = re.compile(r"^(?P<collection>" + layout.ARCHIVE_NAME.pattern.strip("^$")
                      + r")_(?P<label>\d{4}-\d{2}(?:-\d{2}(?:T\d{2})?)?)$")
MARKER_SUFFIXES = (".ready", ".done")
TIMELINE_CAP = 3200
_SHOWN = 5  # ids quoted in one violation message

# simulator action -> ledger event it must cause (once per real change of state)
LEDGER_EVENT_OF = {
    "rename": "renamed", "protect": "protected", "unprotect": "unprotected", "suspend": "suspended",
    "unsuspend": "unsuspended", "deactivate": "deactivated", "reactivate": "reactivated",
}
_FLAG_OF = {"protect": ("protected", True), "unprotect": ("protected", False),
            "suspend": ("suspended", True), "unsuspend": ("suspended", False),
            "deactivate": ("deactivated", True), "reactivate": ("deactivated", False)}


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One broken promise: `check` names the invariant (e.g. `timeline.missing`)."""

    check: str
    message: str
    where: str = ""

    def __str__(self) -> str:
        return f"{self.check}: {self.where + ': ' if self.where else ''}{self.message}"


@dataclass
class Report:
    violations: list[Violation] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, check: str, message: str, where: str | Path = "") -> None:
        self.violations.append(Violation(check, message, str(where)))

    def summary(self) -> str:
        """Counts and violations, one per line (what a test or the soak prints)."""
        lines = [f"{name}: {value}" for name, value in sorted(self.counts.items())]
        lines.append(f"violations: {len(self.violations)}")
        lines += [f"  {violation}" for violation in self.violations[:200]]
        if len(self.violations) > 200:
            lines.append(f"  ... and {len(self.violations) - 200} more")
        return "\n".join(lines)


# -- where captures are ----------------------------------------------------------------------


@dataclass(frozen=True)
class CaptureRef:
    """One capture file, in the archive or inside a bag."""

    collection: str
    relpath: str          # YYYY/MM/DD/HH/<name>
    location: str         # "archive" or the bag's name
    display: str          # path (or `bag.tar!member`) for messages
    opener: Callable[[], IO[bytes]]

    @property
    def name(self) -> str:
        return PurePosixPath(self.relpath).name

    @property
    def hour(self) -> datetime:
        year, month, day, hour = (int(part) for part in PurePosixPath(self.relpath).parts[:4])
        return datetime(year, month, day, hour, tzinfo=timezone.utc)

    @property
    def is_jsonl(self) -> bool:
        return self.name.endswith(".jsonl.gz")


@dataclass
class BagRef:
    name: str
    path: Path
    collection: str
    label: str
    serialized: bool
    period: tuple[datetime, datetime] | None = None
    captures: list[CaptureRef] = field(default_factory=list)
    root: Path | None = None  # the bag's folder (for a tar, where it was unpacked)


def _open_path(path: Path) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")


def archive_captures(archive: Path, report: Report) -> list[CaptureRef]:
    """Capture files under `<archive>/<collection>/YYYY/MM/DD/HH/`; symlinks are reported, not read."""
    found: list[CaptureRef] = []
    archive = Path(archive)
    if not archive.is_dir():
        return found
    for collection_dir in sorted(archive.iterdir()):
        if collection_dir.is_symlink():
            report.add("archive.symlink", "a symlinked collection folder (never followed)", collection_dir)
            continue
        if not collection_dir.is_dir() or not layout.ARCHIVE_NAME.match(collection_dir.name):
            continue
        _report_symlinks(collection_dir, report)
        for folder in layout.hour_folders(collection_dir):
            relfolder = folder.relative_to(collection_dir).as_posix()
            for path in sorted(folder.iterdir()):
                parts = layout.parse_capture_name(path.name)
                if path.is_symlink() or not path.is_file():
                    continue
                if not parts:
                    report.counts["archive_other_files"] += 1
                    report.notes.append(f"{path}: not a capture file name (a file placed by organize?)")
                    continue
                found.append(CaptureRef(collection_dir.name, f"{relfolder}/{path.name}", "archive", str(path),
                                        _open_path(path)))
    return found


def _report_symlinks(root: Path, report: Report) -> None:
    for path in root.rglob("*"):
        if path.is_symlink():
            report.add("archive.symlink", "a symlink in the archive (never followed, never bagged)", path)


def outbox_bags(outbox: Path, report: Report, staging_cutoff: float | None = None) -> list[BagRef]:
    """Every bag in the outbox; anything else there (partial bags, strays, symlinks) is a violation.

    `staging_cutoff` (epoch seconds): `.staging` entries older than this are leftovers of a dead
    bagger; None treats every entry as a leftover (call it while no bagger runs).
    """
    bags: list[BagRef] = []
    outbox = Path(outbox)
    if not outbox.is_dir():
        return bags
    names = {entry.name for entry in outbox.iterdir()}
    for entry in sorted(outbox.iterdir()):
        if entry.is_symlink():
            report.add("outbox.symlink", "the outbox must never hold a symlink", entry)
        elif entry.name == STAGING:
            _check_staging(entry, report, staging_cutoff)
        elif entry.name.endswith(MARKER_SUFFIXES) and entry.is_file():
            stem = entry.name.rsplit(".", 1)[0]
            if stem not in names and f"{stem}.tar" not in names:
                report.add("outbox.stray_marker", f"marker without its bag {stem}", entry)
        else:
            bag = _bag_ref(entry)
            if bag is None:
                report.add("outbox.not_a_bag", "a name in the outbox that is not a complete bag", entry)
            else:
                bags.append(bag)
    return bags


def _check_staging(staging: Path, report: Report, cutoff: float | None) -> None:
    if not staging.is_dir():
        report.add("outbox.partial_bag", "the staging name is not a folder", staging)
        return
    for entry in sorted(staging.iterdir()):
        if cutoff is None or entry.lstat().st_mtime < cutoff:
            report.add("outbox.partial_bag", "a staged bag left behind (no bagger is building it)", entry)


def _bag_ref(entry: Path) -> BagRef | None:
    serialized = entry.is_file() and entry.name.endswith(".tar")
    name = entry.name[:-4] if serialized else entry.name
    match = BAG_NAME.match(name)
    if not match:
        return None
    if not serialized and not (entry.is_dir() and (entry / "bagit.txt").is_file()):
        return None
    return BagRef(name, entry, match["collection"], match["label"], serialized)


# -- bags --------------------------------------------------------------------------------------


def check_bag(bag: BagRef, report: Report, workdir: Path) -> None:
    """Validate one bag (bagit, bag-info contract, payload layout) and list its capture files."""
    root = bag.path
    if bag.serialized:
        root = _unpack_tar(bag, report, workdir)
        if root is None:
            return
    bag.root = root
    problems = validate_bag_folder(root, bag.name)
    for problem in problems:
        report.add("bag.invalid", problem, bag.path)
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            report.add("bag.symlink", "a symlink in a bag (a bag holds its own files)", path)
    if not problems:
        report.counts["bags_validated"] += 1
    info = _bag_info(root)
    bag.period = _period_of(info)
    for path in sorted((root / "data").rglob("*")) if (root / "data").is_dir() else []:
        relative = path.relative_to(root / "data")
        if path.is_symlink() or relative.parts[0] == "provenance" or not path.is_file():
            continue
        parts = layout.parse_capture_name(path.name)
        if parts is None or len(relative.parts) != 5 or layout.hour_of_folder(Path(), Path(*relative.parts[:4])) is None:
            report.add("bag.layout", f"payload file outside data/YYYY/MM/DD/HH/: {relative}", bag.path)
            continue
        ref = CaptureRef(parts["collection"], relative.as_posix(), bag.name, f"{bag.path}!data/{relative}",
                         _open_path(path))
        if parts["collection"] != bag.collection:
            report.add("bag.layout", f"{relative} belongs to collection {parts['collection']}", bag.path)
        if bag.period and not (bag.period[0] <= ref.hour < bag.period[1]):
            report.add("bag.period", f"{relative} lies outside the bag's period", bag.path)
        bag.captures.append(ref)


def validate_bag_folder(root: Path, name: str) -> list[str]:
    """bagit-python's full validation plus the bag-info fields that DESIGN.md section 9 promises."""
    import bagit

    problems: list[str] = []
    try:
        bagit.Bag(str(root)).validate(processes=1)
    except bagit.BagValidationError as error:
        details = getattr(error, "details", None) or []
        problems += [f"bagit: {detail}" for detail in details[:_SHOWN]] or [f"bagit: {error}"]
    except (bagit.BagError, OSError, ValueError) as error:
        problems.append(f"bagit: {error}")
    info = _bag_info(root)
    for key in ("Source-Organization", "Bagging-Date", "Payload-Oxum", "External-Identifier",
                "Bag-Group-Identifier", "SFM-Period-Start", "SFM-Period-End"):
        if key not in info:
            problems.append(f"bag-info.txt lacks {key}")
    if info.get("External-Identifier", name) != name:
        problems.append(f"External-Identifier {info['External-Identifier']!r} is not the bag name {name!r}")
    return problems


def _bag_info(root: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        text = (root / "bag-info.txt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return info
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            info[key] += " " + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip()
            info[key] = value.strip()
    return info


def _period_of(info: Mapping[str, str]) -> tuple[datetime, datetime] | None:
    try:
        return parse_timestamp(info["SFM-Period-Start"]), parse_timestamp(info["SFM-Period-End"])
    except (KeyError, ValueError):
        return None


def _unpack_tar(bag: BagRef, report: Report, workdir: Path) -> Path | None:
    """Unpack a `.tar` bag under `workdir`; refuse members that are links or leave `<name>/`."""
    target = Path(tempfile.mkdtemp(prefix="tarbag-", dir=workdir))
    try:
        with tarfile.open(bag.path, "r:") as archive:
            members = archive.getmembers()
            for member in members:
                member_path = PurePosixPath(member.name)
                if member_path.is_absolute() or ".." in member_path.parts or member_path.parts[:1] != (bag.name,):
                    report.add("bag.tar", f"member {member.name!r} is not inside {bag.name}/", bag.path)
                    return None
                if not (member.isfile() or member.isdir()):
                    report.add("bag.tar", f"member {member.name!r} is a link or device", bag.path)
                    return None
            archive.extractall(target, members=members, filter="data")
    except (tarfile.TarError, OSError) as error:
        report.add("bag.tar", f"cannot read the tar file: {error}", bag.path)
        return None
    root = target / bag.name
    if not (root / "bagit.txt").is_file():
        report.add("bag.tar", "no bagit.txt in the tar file", bag.path)
        return None
    return root


# -- reading captures --------------------------------------------------------------------------


RecordVisitor = Callable[[CaptureRef, dict], None]


def read_capture(ref: CaptureRef, report: Report, visit: RecordVisitor | None = None,
                 secrets: tuple[bytes, ...] = ()) -> None:
    """Decompress a capture file to its end; parse JSON lines and hand each record to `visit`.

    Any of `secrets` found in the decompressed bytes is a violation (`secret.leak`).
    """
    scan = SecretScan(secrets, ref.display, report)
    try:
        with ref.opener() as raw, gzip.GzipFile(fileobj=raw) as handle:
            if not ref.is_jsonl:
                while chunk := handle.read(1 << 20):
                    scan.feed(chunk)
                return
            for number, line in enumerate(handle, start=1):
                scan.feed(line)
                _visit_line(ref, number, line, report, visit)
    except (OSError, EOFError, zlib.error) as error:
        report.add("capture.damaged", f"does not decompress: {error}", ref.display)


class SecretScan:
    """Finds secrets in a byte stream fed in pieces (a secret may straddle two pieces)."""

    def __init__(self, secrets: tuple[bytes, ...], where: str, report: Report):
        self.secrets = tuple(secret for secret in secrets if secret)
        self.where, self.report = where, report
        self.keep = max((len(secret) for secret in self.secrets), default=1) - 1
        self.tail = b""
        self.found = False

    def feed(self, data: bytes) -> None:
        if not self.secrets or self.found:
            return
        window = self.tail + data
        if any(secret in window for secret in self.secrets):
            self.found = True
            self.report.add("secret.leak", "holds a secret (the bearer token?)", self.where)
        self.tail = window[-self.keep:] if self.keep else b""


def scan_file_for_secrets(path: Path, secrets: tuple[bytes, ...], report: Report) -> None:
    """Raw bytes of any file, and its decompressed bytes when it is gzip."""
    scan = SecretScan(secrets, str(path), report)
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                scan.feed(chunk)
        if path.name.endswith(".gz") and not scan.found:
            with gzip.open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    scan.feed(chunk)
    except (OSError, EOFError, zlib.error):
        pass  # damage is reported by the capture and bag checks


def _visit_line(ref: CaptureRef, number: int, line: bytes, report: Report, visit: RecordVisitor | None) -> None:
    if not line.strip():
        return
    report.counts["capture_lines"] += 1
    try:
        record = json.loads(line)
    except ValueError as error:
        report.add("capture.bad_line", f"line {number} is not JSON: {error}", ref.display)
        return
    if not isinstance(record, dict) or not isinstance(record.get("__sfm"), dict):
        report.add("capture.bad_line", f"line {number} is not a capture record (object with __sfm)", ref.display)
        return
    if visit is not None:
        visit(ref, record)


# -- the storage check (operators) -------------------------------------------------------------


def check_storage(archive: Path, outbox: Path, *, staging_cutoff: float | None = None,
                  visit: RecordVisitor | None = None, secrets: Iterable[str | bytes] = ()) -> Report:
    """Everything that can be checked without knowing what was published.

    Every capture file (archive, bag folders, `.tar` bags) decompresses and every line parses;
    every bag validates; no capture file is in two places; no period has both a bag and files
    still in the archive; the outbox holds only complete bags (and their markers). With
    `secrets`, no file of the archive or of any bag holds one (decompressed or not).
    """
    secret_bytes = tuple(s.encode() if isinstance(s, str) else s for s in secrets if s)
    report = Report()
    with tempfile.TemporaryDirectory(prefix="sfm-check-") as work:
        captures = archive_captures(Path(archive), report)
        bags = outbox_bags(Path(outbox), report, staging_cutoff)
        for bag in bags:
            check_bag(bag, report, Path(work))
        report.counts["bags"] = len(bags)
        report.counts["capture_files_archive"] = len(captures)
        report.counts["capture_files_bagged"] = sum(len(bag.captures) for bag in bags)
        everything = captures + [ref for bag in bags for ref in bag.captures]
        _check_places(everything, report)
        _check_reopened(captures, bags, report)
        for ref in everything:
            read_capture(ref, report, visit, secret_bytes)
        if secret_bytes:
            _scan_other_files(Path(archive), bags, {ref.display for ref in everything}, secret_bytes, report)
    return report


def _scan_other_files(archive: Path, bags: list[BagRef], scanned: set[str], secrets: tuple[bytes, ...],
                      report: Report) -> None:
    """Tag files, provenance and anything else in the archive and the bags (captures are done)."""
    roots = [archive] + [bag.root for bag in bags if bag.root is not None]
    for root in roots:
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if not path.is_file() or path.is_symlink():
                continue
            shown = str(path)
            for bag in bags:
                if bag.root is not None and path.is_relative_to(bag.root):
                    shown = f"{bag.path}!{path.relative_to(bag.root).as_posix()}"
            if shown not in scanned:
                scan_file_for_secrets(path, secrets, report)


def _check_places(captures: Iterable[CaptureRef], report: Report) -> None:
    places: dict[tuple[str, str], list[str]] = defaultdict(list)
    for ref in captures:
        places[(ref.collection, ref.relpath)].append(ref.location)
    for (collection, relpath), where in sorted(places.items()):
        if len(where) > 1:
            report.add("capture.two_places", f"{collection}/{relpath} is in {', '.join(where)}")


def _check_reopened(captures: list[CaptureRef], bags: list[BagRef], report: Report) -> None:
    periods = defaultdict(list)
    for bag in bags:
        if bag.period:
            periods[bag.collection].append((bag.period, bag.name))
    for ref in captures:
        for (start, end), name in periods.get(ref.collection, ()):
            if start <= ref.hour < end:
                report.add("period.reopened", f"captured in a period already bagged as {name}", ref.display)


# -- what the captures hold ----------------------------------------------------------------------


@dataclass
class Captured:
    """Ids found in captures: timeline posts per (collection, account), stream messages per collection."""

    timeline: dict[tuple[str, str], Counter] = field(default_factory=lambda: defaultdict(Counter))
    stream: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    stream_tags: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    texts_with: Counter = field(default_factory=Counter)
    bad_stream_meta: Counter = field(default_factory=Counter)  # per file: lines naming neither connection nor url

    def visit(self, ref: CaptureRef, record: dict) -> None:
        kind = layout.parse_capture_name(ref.name)["kind"]
        if kind == "timeline":
            self._timeline_page(ref.collection, record)
        elif kind == "stream":
            if not stream_line_provenance(record["__sfm"]):
                self.bad_stream_meta[ref.display] += 1
            self._stream_message(ref.collection, record)

    def _timeline_page(self, collection: str, record: dict) -> None:
        account = (record["__sfm"].get("account") or {}).get("id")
        for tweet in record.get("data") or []:
            if isinstance(tweet, dict) and "id" in tweet:
                owner = str(account or tweet.get("author_id"))
                self.timeline[(collection, owner)][str(tweet["id"])] += 1

    def _stream_message(self, collection: str, record: dict) -> None:
        data = record.get("data")
        if not isinstance(data, dict) or "id" not in data:
            return
        tweet_id = str(data["id"])
        self.stream[collection][tweet_id] += 1
        self.stream_tags[tweet_id].update(routes_of_document(record) or ())


def stream_line_provenance(meta: dict) -> str | None:
    """Where a stream line came from: `__sfm.connection` (its connection, whose request URL the
    state store records once), or `__sfm.url` on lines written before connections were named.
    None when it has neither (a broken capture contract)."""
    for key in ("connection", "url"):
        value = meta.get(key)
        if isinstance(value, str) and value:
            return value
    return None


# -- the full check against the simulator ------------------------------------------------------------


@dataclass(frozen=True)
class RunExpectations:
    """Knobs of `check_run`.

    loss_window_seconds: stream messages sent this close to the end of their connection may be
        missing (in flight, or in the unflushed batch of a killed process), provided the break
        is known; anything earlier is a loss while connected.
    staging_cutoff: see `outbox_bags`.
    """

    loss_window_seconds: float = 5.0
    staging_cutoff: float | None = None


def check_run(config: Any, published: Mapping[str, Any], initial_accounts: Iterable[Any],
              expectations: RunExpectations = RunExpectations(),
              stream_messages: Iterable[Mapping[str, Any]] | None = None,
              also_visit: RecordVisitor | None = None) -> Report:
    """The storage check plus every promise about what the simulator published.

    `config`: the final Config; `published`: `Simulator.published()`; `initial_accounts`: the
    scenario's AccountSpecs (their starting flags, to know who is collectable at the end).
    `stream_messages` stands in for `published["stream_messages"]` when that was not built
    (`Simulator.published(stream_messages=False)`; pass `Simulator.stream_messages()`).
    The configured bearer token must appear in no file of the archive or the outbox.
    `also_visit` sees every record of every capture too (archive and bags: another checker's
    reading, e.g. of another platform's collections). Call it after a clean stop and a final harvest.
    """
    from sfm_archiver.ledger import Ledger
    from sfm_archiver.state import StateStore

    captured = Captured()
    report = check_storage(config.paths.archive, config.paths.outbox, staging_cutoff=expectations.staging_cutoff,
                           visit=_both(captured.visit, also_visit), secrets=(config.x.bearer_token,))
    store = StateStore(config.paths.state)
    try:
        states = final_account_states(initial_accounts, published.get("events", []))
        _check_timelines(config, store, published, states, captured, report)
        _check_checkpoints(config, store, captured, report)
        messages = published.get("stream_messages") if stream_messages is None else stream_messages
        _check_streams(config, store, published, messages or (), captured, expectations, report)
        _check_ledger(config, store, Ledger(config.paths.state), published, initial_accounts, report)
    finally:
        store.close()
    return report


def _both(first: RecordVisitor, second: RecordVisitor | None) -> RecordVisitor:
    if second is None:
        return first

    def visit(ref: CaptureRef, record: dict) -> None:
        first(ref, record)
        second(ref, record)
    return visit


@dataclass
class AccountState:
    username: str
    protected: bool = False
    suspended: bool = False
    deactivated: bool = False

    @property
    def collectable(self) -> bool:
        return not (self.protected or self.suspended or self.deactivated)

    @property
    def status(self) -> str:
        """What the API shows: deactivated hides everything, then suspended, then protected."""
        if self.deactivated:
            return "deactivated"
        if self.suspended:
            return "suspended"
        return "protected" if self.protected else "active"


def final_account_states(initial_accounts: Iterable[Any], events: Iterable[Mapping[str, Any]]) -> dict[str, AccountState]:
    """Each account's flags after replaying the simulator's applied events."""
    states = {str(spec.id): AccountState(spec.username, spec.protected, spec.suspended, spec.deactivated)
              for spec in initial_accounts}
    for event in events:
        if "error" in event:
            continue
        result = event.get("result") or {}
        account = str(result.get("account", ""))
        action = event.get("action")
        if action in _FLAG_OF and account in states:
            flag, value = _FLAG_OF[action]
            setattr(states[account], flag, value)
        elif action == "rename" and account in states:
            states[account].username = str(result.get("username"))
        elif action == "reassign_username" and account:
            states[account] = AccountState(str(result.get("username")))
    return states


def _timeline_collections(config: Any) -> list[Any]:
    """The X timeline collections (what this checker knows the simulator of; Bluesky collections
    are checked against their own simulator: tests/chaos/bluesky_day.py)."""
    return [c for c in config.collections if c.type == "timeline" and c.platform == "x"]


def _check_timelines(config: Any, store: Any, published: Mapping[str, Any], states: Mapping[str, AccountState],
                     captured: Captured, report: Report) -> None:
    posts = {account: [int(post["id"]) for post in items] for account, items in published.get("posts", {}).items()}
    created = {int(post["id"]): _epoch(post["created_at"]) for items in published.get("posts", {}).values()
               for post in items}
    for collection in _timeline_collections(config):
        last = store.last_run(collection.name, "user_timeline", finished_only=True)
        cutoff = _epoch(last["started_at"]) if last else None
        members = {m["account_id"]: m for m in store.memberships(collection.name, include_removed=True)}
        for (name, account), ids in captured.timeline.items():
            if name == collection.name and account not in members:
                report.add("timeline.not_member", f"{len(ids)} posts of account {account}, which the collection "
                           "does not hold (a reassigned username followed?)", name)
        for account, member in sorted(members.items()):
            counter = captured.timeline.get((collection.name, account), Counter())
            active = bool(member.get("active")) and not member.get("removed_at")
            state = states.get(account)
            collectable = active and state is not None and state.collectable
            due = [tweet for tweet in posts.get(account, []) if cutoff is not None and created[tweet] <= cutoff]
            _check_account(collection, account, posts.get(account, []), counter, due[-1] if collectable and due else None,
                           store.checkpoint(collection.name, account), report)


def _check_account(collection: Any, account: str, published_ids: list[int], counter: Counter, due: int | None,
                   checkpoint: str | None, report: Report) -> None:
    """Exactly once, and no holes between the oldest post captured and the newest that must be.

    `due`: the newest post the last finished harvest had to bring (None when the account is not
    collectable now); the checkpoint bounds the rest.
    """
    where = f"{collection.name}/{account}"
    report.counts["timeline_posts_published"] += len(published_ids)
    report.counts["timeline_posts_captured"] += len(counter)
    duplicates = sorted(tweet for tweet, count in counter.items() if count > 1)
    if duplicates:
        report.add("timeline.duplicate", f"{len(duplicates)} posts captured more than once: {_ids(duplicates)}", where)
    known = set(published_ids)
    strangers = sorted(tweet for tweet in counter if int(tweet) not in known)
    if strangers:
        report.add("timeline.unknown", f"{len(strangers)} captured posts the account never published: {_ids(strangers)}", where)
    bounds = [bound for bound in (due, int(checkpoint) if checkpoint else None) if bound is not None]
    if not bounds:
        return
    upper = max(bounds)
    if not counter:
        report.add("timeline.never_captured", f"nothing captured, but posts up to {upper} should be", where)
        return
    floor = min(int(tweet) for tweet in counter)
    expected = [tweet for tweet in published_ids if floor <= tweet <= upper]
    report.counts["timeline_posts_expected"] += len(expected)
    missing = [tweet for tweet in expected if str(tweet) not in counter]
    if missing:
        report.add("timeline.missing", f"{len(missing)} of {len(expected)} posts not captured: {_ids(missing)}", where)
    reachable = min(collection.backfill, TIMELINE_CAP, len([t for t in published_ids if t <= upper]))
    if floor > published_ids[0] and len(counter) < reachable:
        report.add("timeline.backfill", f"only {len(counter)} posts captured, the backfill reaches {reachable}", where)


def _check_checkpoints(config: Any, store: Any, captured: Captured, report: Report) -> None:
    """A checkpoint names a post whose page is durable in some capture (never ahead of the data)."""
    for collection in _timeline_collections(config):
        for account, since_id in sorted(store.checkpoints(collection.name).items()):
            report.counts["checkpoints"] += 1
            if since_id and since_id not in captured.timeline.get((collection.name, account), ()):
                report.add("checkpoint.ahead", f"since_id {since_id} is in no capture", f"{collection.name}/{account}")


# -- streams ------------------------------------------------------------------------------------------


def _check_streams(config: Any, store: Any, published: Mapping[str, Any], messages: Iterable[Mapping[str, Any]],
                   captured: Captured, expectations: RunExpectations, report: Report) -> None:
    by_kind = {"search": [c.name for c in config.collections if c.type == "filter_stream"],
               "sample": [c.name for c in config.collections if c.type == "sample_stream"]}
    connections = {conn["id"]: conn for conn in published.get("connections", [])}
    sent: dict[str, str] = {}
    at_break: dict[str, int] = {}  # messages sent within the loss window of their connection's end
    lost_by_connection: dict[int, list[str]] = defaultdict(list)
    for message in messages:
        tweet_id, conn = message["tweet_id"], connections.get(message["connection_id"], {})
        kind = conn.get("kind", "search")
        sent[tweet_id] = kind
        closed = conn.get("closed_at")
        if closed is not None and message["sent_at"] >= closed - expectations.loss_window_seconds:
            at_break[tweet_id] = message["connection_id"]
        report.counts[f"stream_messages_sent_{kind}"] += 1
        holders = [name for name in by_kind[kind] + [layout.UNROUTED] if tweet_id in captured.stream.get(name, ())]
        if holders:
            report.counts[f"stream_messages_captured_{kind}"] += 1
            continue
        if tweet_id in at_break:
            lost_by_connection[message["connection_id"]].append(tweet_id)
        else:
            report.add("stream.lost", f"message {tweet_id} sent at {_clock(message['sent_at'])} on connection "
                       f"{message['connection_id']} ({kind}, closed {_clock(closed)}) was never captured")
    _check_routing(by_kind["search"], captured, at_break, lost_by_connection, report)
    _check_unrouted(store, captured, sent, report)
    report.counts["stream_gaps"] = len(lost_by_connection)
    report.counts["stream_messages_lost_at_breaks"] = sum(len(set(ids)) for ids in lost_by_connection.values())
    report.counts["stream_connections"] = len(connections)
    _check_gaps_recorded(store, by_kind, connections, lost_by_connection, expectations, report)
    for name in by_kind["search"] + by_kind["sample"]:
        counter = captured.stream.get(name, Counter())
        report.counts["stream_messages_captured_copies"] += sum(counter.values())
        duplicates = sorted(tweet for tweet, count in counter.items() if count > 1)
        if duplicates:
            report.add("stream.duplicate", f"{len(duplicates)} messages captured more than once: {_ids(duplicates)}", name)
        strangers = sorted(tweet for tweet in counter if tweet not in sent)
        if strangers:
            report.add("stream.unknown", f"{len(strangers)} captured messages never sent: {_ids(strangers)}", name)


def _check_unrouted(store: Any, captured: Captured, sent: Mapping[str, str], report: Report) -> None:
    """Messages kept in `_unrouted` (no collection being captured wanted them) are not lost, but
    each must be recorded (the state store's counts, which `status` shows); lines naming
    neither their connection nor their URL break the capture contract."""
    counter = captured.stream.get(layout.UNROUTED, Counter())
    found = sum(counter.values())
    report.counts["stream_messages_unrouted"] = found
    recorded = store.stream_totals(layout.UNROUTED, datetime(1970, 1, 1, tzinfo=timezone.utc))["messages"]
    if found > recorded:
        report.add("stream.unrouted_unrecorded", f"{found} messages in {layout.UNROUTED}/ but only {recorded} "
                   "recorded in the state store (status would not show them)", layout.UNROUTED)
    strangers = sorted(tweet for tweet in counter if tweet not in sent)
    if strangers:
        report.add("stream.unknown", f"{len(strangers)} captured messages never sent: {_ids(strangers)}", layout.UNROUTED)
    for where, lines in sorted(captured.bad_stream_meta.items()):
        report.add("capture.provenance", f"{lines} stream lines name neither __sfm.connection nor __sfm.url", where)


def _check_gaps_recorded(store: Any, by_kind: Mapping[str, list[str]], connections: Mapping[int, Mapping[str, Any]],
                         lost_by_connection: Mapping[int, list[str]], expectations: RunExpectations,
                         report: Report) -> None:
    """Each break that lost messages is known: a disconnect (or stop, or error) of a collection
    the connection served, recorded within the loss window of the moment it ended (for a killed
    process, the restart records when the previous one went silent)."""
    window = expectations.loss_window_seconds
    events = [event for event in store.stream_events() if event.get("event") in ("disconnect", "stop", "error")]
    for conn_id in sorted(lost_by_connection):
        conn = connections[conn_id]
        closed, names = conn["closed_at"], set(by_kind.get(conn.get("kind", "search"), ()))
        if not any(event["stream"] in names and abs(_epoch(event["at"]) - closed) <= window for event in events):
            report.add("stream.gap_unrecorded", f"connection {conn_id} ended at {_clock(closed)} losing "
                       f"{len(lost_by_connection[conn_id])} messages, and no disconnect was recorded then")


def _check_routing(filter_collections: list[str], captured: Captured, at_break: Mapping[str, int],
                   lost_by_connection: dict[int, list[str]], report: Report) -> None:
    """A filtered message goes to every collection whose rule it matched.

    Each collection writes its own batches, so a kill can land between two of them: a copy
    missing from one collection at a break is a loss at that break (its record is checked like
    any other), not a routing fault.
    """
    configured = set(filter_collections)
    for tweet_id, tags in captured.stream_tags.items():
        for name in sorted(tags & configured):
            if tweet_id in captured.stream.get(name, ()):
                continue
            if tweet_id in at_break:
                lost_by_connection[at_break[tweet_id]].append(tweet_id)
                report.counts["stream_copies_lost_at_breaks"] += 1
            else:
                report.add("stream.misrouted", f"message {tweet_id} matched a rule of {name} but is not in it", name)


# -- ledger -------------------------------------------------------------------------------------------


def _check_ledger(config: Any, store: Any, ledger: Any, published: Mapping[str, Any], initial_accounts: Iterable[Any],
                  report: Report) -> None:
    verified = ledger.verify()
    for problem in verified.problems:
        report.add("ledger.chain", problem)
    records = [r for r in ledger.records() if r.get("platform", "x") == "x"]
    report.counts["ledger_events_found"] = len(records)
    tracked = _tracked_since(records)
    expected = expected_ledger_events(initial_accounts, published.get("events", []), tracked,
                                      _configured_usernames(config))
    found = Counter((r.get("account_id"), r.get("event")) for r in records if r.get("event") in LEDGER_EVENT_OF.values())
    found_reassigned = sum(1 for r in records if r.get("event") == "username_reassigned")
    report.counts["ledger_events_expected"] = sum(expected["changes"].values()) + expected["reassigned"]
    report.counts["ledger_events_matched"] = sum(min(count, found[key]) for key, count in expected["changes"].items())
    for key in sorted(set(expected["changes"]) | set(found)):
        want, have = expected["changes"].get(key, 0), found.get(key, 0)
        if want != have:
            report.add("ledger.events", f"account {key[0]}: {have} '{key[1]}' events recorded, {want} expected")
    if found_reassigned != expected["reassigned"]:
        report.add("ledger.events", f"{found_reassigned} 'username_reassigned' events recorded, "
                   f"{expected['reassigned']} expected")
    else:
        report.counts["ledger_events_matched"] += found_reassigned
    _check_added(store, config, records, report)


def _tracked_since(records: list[dict]) -> dict[str, float]:
    """When the ledger first shows each account (its first `added`)."""
    first: dict[str, float] = {}
    for record in records:
        if record.get("event") == "added" and record.get("account_id") not in first:
            first[str(record["account_id"])] = _epoch(record["at"])
    return first


def _configured_usernames(config: Any) -> Counter:
    """How many collections name each username (without an id)."""
    return Counter(entry.username.lower() for c in _timeline_collections(config) for entry in c.accounts
                   if entry.username and not entry.id)


def expected_ledger_events(initial_accounts: Iterable[Any], events: Iterable[Mapping[str, Any]],
                           tracked_since: Mapping[str, float], configured_usernames: Counter) -> dict[str, Any]:
    """Ledger events the simulator's events must have caused: one per visible change of a tracked account.

    The status an observer sees follows the API's precedence (deactivated hides everything,
    then suspended, then protected). An event before the account was first added is not
    expected (it was the account's state when tracking began), nor one that changes nothing
    visible (protecting a suspended account). `username_reassigned` is expected once per
    collection that names the reassigned username.
    """
    states = {str(spec.id): AccountState(spec.username, spec.protected, spec.suspended, spec.deactivated)
              for spec in initial_accounts}
    changes: Counter = Counter()
    reassigned = 0
    for event in events:
        if "error" in event:
            continue
        action, result = event.get("action"), event.get("result") or {}
        account = str(result.get("account", ""))
        watched = account in tracked_since and event.get("time", 0) >= tracked_since[account]
        if action in _FLAG_OF and account in states:
            before = states[account].status
            flag, value = _FLAG_OF[action]
            setattr(states[account], flag, value)
            name = _status_event(before, states[account].status)
            if name and watched:
                changes[(account, name)] += 1
        elif action == "rename" and account in states:
            if states[account].username.lower() != str(result.get("username")).lower() and watched:
                changes[(account, "renamed")] += 1
            states[account].username = str(result.get("username"))
        elif action == "reassign_username" and account:
            states[account] = AccountState(str(result.get("username")))
            reassigned += configured_usernames[str(result.get("username", "")).lower()]
    return {"changes": changes, "reassigned": reassigned}


def _status_event(before: str, after: str) -> str | None:
    """The ledger event for a visible change of status (DESIGN.md section 5)."""
    if before == after:
        return None
    if {before, after} <= {"active", "protected"}:
        return "protected" if after == "protected" else "unprotected"
    if after in ("suspended", "deactivated"):
        return after
    return "unsuspended" if before == "suspended" else "reactivated"


def _check_added(store: Any, config: Any, records: list[dict], report: Report) -> None:
    """Every account a timeline collection holds was `added` to the ledger, and only once per collection."""
    added = Counter(str(r.get("account_id")) for r in records if r.get("event") == "added")
    holders: Counter = Counter()
    for collection in _timeline_collections(config):
        for member in store.memberships(collection.name, include_removed=True):
            holders[member["account_id"]] += 1
    for account, count in sorted(holders.items()):
        if added[account] == 0:
            report.add("ledger.added", f"account {account} is collected but was never recorded as added")
        elif added[account] > count:
            report.add("ledger.added", f"account {account} recorded as added {added[account]} times "
                       f"for {count} collection(s)")


# -- helpers ------------------------------------------------------------------------------------------


def _ids(ids: list[Any]) -> str:
    shown = ", ".join(str(tweet) for tweet in ids[:_SHOWN])
    return shown + (f" ... (+{len(ids) - _SHOWN})" if len(ids) > _SHOWN else "")


def _epoch(text: str) -> float:
    return parse_timestamp(text).timestamp()


def _clock(moment: float | None) -> str:
    if moment is None:
        return "still open"
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


__all__ = [
    "BagRef", "CaptureRef", "Captured", "Report", "RunExpectations", "Violation", "archive_captures",
    "check_bag", "check_run", "check_storage", "expected_ledger_events", "final_account_states",
    "outbox_bags", "read_capture", "validate_bag_folder",
]
