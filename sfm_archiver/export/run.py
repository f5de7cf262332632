"""`export`: captures (archive, bags, outboxes) to files researchers use (DESIGN.md section 12).

The export is built in `<out>.partial` beside the requested folder and renamed into place whole,
with `README.txt` and `manifest-sha256.txt`, so a folder named like the request is always a
finished export. Reading streams from gzip to the writers; with dedupe, a first pass fills the
on-disk index (`index.py`) and a second pass writes. Sources are never written to.
"""

from __future__ import annotations

import gc
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator

from sfm_archiver.errors import UsageError
from sfm_archiver.export.columns import TABLES, check_column_names, select_columns
from sfm_archiver.export.flatten import POST_KINDS
from sfm_archiver.export.flatteners import DEFAULT_PLATFORM, file_platform
from sfm_archiver.export.index import ExportIndex, position
from sfm_archiver.export.lines import read_lines, read_records
from sfm_archiver.export.parallel import SPILL_BATCH, forget_maker, index_part, map_files, worker_count, write_part
from sfm_archiver.export.rows import PROBLEMS_KEPT, FileTally, RowFilter, RowMaker, RowSpec, captured_at, ignore_problem, widen
from sfm_archiver.export.scan import light_record
from sfm_archiver.export.sources import CaptureFile, Source, open_sources
from sfm_archiver.export.writers import FORMATS, Segments
from sfm_archiver.ledger import account_ids_named
from sfm_archiver.timeutil import parse_timestamp, rfc3339_ms, utcnow

DEDUPE = ("latest", "first", "none")
BY = ("posted", "captured")
DEFAULT_SEGMENT = 250_000
GC_THRESHOLD = 100_000  # allocations between young collections while exporting (Python's default: 700)
_NAME = re.compile(r"^_?[a-z0-9][a-z0-9_-]*$")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class ExportRequest:
    collections: tuple[str, ...]
    sources: tuple[Path, ...]
    out: Path | None = None
    format: str = "csv"
    start: str | None = None
    end: str | None = None
    by: str = "posted"
    accounts: tuple[str, ...] = ()
    kind: str | None = None
    dedupe: str = "latest"
    segment: int = DEFAULT_SEGMENT
    columns: str | None = None
    include_referenced: bool = False
    ledger_records: tuple[dict, ...] = ()
    jobs: int = 0  # worker processes for the writing pass: 0 one per core when it pays, 1 none


@dataclass
class ExportResult:
    out: Path
    request: ExportRequest
    started: datetime
    sources: list[Source] = field(default_factory=list)
    files: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    captures: int = 0
    rows: int = 0
    posts_indexed: int = 0
    by_collection: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)
    by_account: Counter = field(default_factory=Counter)
    account_names: dict[str, str] = field(default_factory=dict)
    unknown: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    captured_range: list[str] = field(default_factory=list)
    posted_range: list[str] = field(default_factory=list)
    account_ids: dict[str, set[str]] = field(default_factory=dict)
    links: int = 0
    platform: str = "x"  # whose posts the rows are (`__sfm.platform` of the captures)

    @property
    def exit_code(self) -> int:
        """0 when every input was read whole, 1 when something was skipped (the export is written)."""
        return 1 if self.problem_count or any(source.skipped for source in self.sources) else 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(text)

    def add(self, tally: FileTally, file: CaptureFile) -> None:
        """One file's writing pass, into the totals."""
        self.captures += tally.captures
        self.rows += tally.rows
        self.by_collection[file.collection] += tally.rows
        self.by_kind[file.kind] += tally.rows
        self.by_account.update(tally.by_account)
        self.account_names.update(tally.account_names)
        self.unknown.update(tally.unknown)
        self.notes.update(tally.notes)
        for span, part in ((self.captured_range, tally.captured_range), (self.posted_range, tally.posted_range)):
            for value in part:
                widen(span, value)
        self.problems.extend(tally.problems[:max(PROBLEMS_KEPT - len(self.problems), 0)])
        self.problem_count += tally.problem_count


def check_request(request: ExportRequest) -> None:
    """Refuse a wrong command line before anything is read (exit 2)."""
    if not request.collections:
        raise UsageError("name at least one collection to export")
    for name in request.collections:
        if not _NAME.match(name) or len(name) > 64:
            raise UsageError(f"invalid collection name {name!r}")
    choices = {"format": (request.format, tuple(FORMATS)), "dedupe": (request.dedupe, DEDUPE), "by": (request.by, BY),
               "kind": (request.kind or POST_KINDS[0], POST_KINDS)}
    for option, (value, allowed) in choices.items():
        if value not in allowed:
            raise UsageError(f"--{option} {value!r}: use one of {', '.join(allowed)}")
    if request.segment < 1:
        raise UsageError(f"--segment {request.segment}: must be at least 1")
    if request.jobs < 0:
        raise UsageError(f"--jobs {request.jobs}: must be 0 (one per core) or more")
    check_column_names(request.columns)  # against the platform's table once the captures are known
    start, end = time_bounds(request.start, request.end)
    if start and end and end <= start:
        raise UsageError(f"--end {request.end} is not after --start {request.start}")


def time_bounds(start: str | None, end: str | None) -> tuple[str | None, str | None]:
    """[start, end) as RFC 3339 strings; a date as --end includes its whole day."""
    return _bound(start, "--start", False), _bound(end, "--end", True)


def _bound(text: str | None, option: str, is_end: bool) -> str | None:
    if not text:
        return None
    try:
        moment = parse_timestamp(text)
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date (2026-11-27) or time (2026-11-27T13:00:00Z)") from None
    if is_end and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text.strip()):
        moment += timedelta(days=1)
    return rfc3339_ms(moment)


def default_out(collections: tuple[str, ...], now: datetime) -> Path:
    return Path(f"{export_name(collections)}_export_{now.strftime('%Y%m%dT%H%M%SZ')}")


def export_name(collections: tuple[str, ...]) -> str:
    return "+".join(collections)[:80]


def run_export(request: ExportRequest, progress: Progress | None = None) -> ExportResult:
    """Write the export; returns what was done (the CLI prints it and exits with `exit_code`)."""
    check_request(request)
    started = utcnow()
    out = Path(request.out) if request.out else default_out(request.collections, started)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out}: exists and is not empty (an export never mixes with other files)")
    for source in request.sources:
        if Path(source).is_dir() and out.resolve().is_relative_to(Path(source).resolve()):
            raise UsageError(f"--out {out}: inside the source {source} (an export never writes into what it reads)")
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        raise UsageError(f"{partial}: left by an export that did not finish; remove it and run again")
    partial.mkdir(parents=True)
    result = ExportResult(out, request, started)
    try:
        with tempfile.TemporaryDirectory(prefix=".sfm-export-", dir=partial.parent) as temp, ExitStack() as stack:
            index = stack.enter_context(closing(ExportIndex(Path(temp), request.dedupe)))
            stack.enter_context(_rare_collections())
            _Export(request, result, index, partial, progress or (lambda message: None), stack).execute()
        from sfm_archiver.export.readme import write_readme_and_manifest

        write_readme_and_manifest(partial, result)
        if out.exists():
            out.rmdir()
        os.replace(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return result


@contextmanager
def _rare_collections() -> Iterator[None]:
    """Cyclic garbage collection seldom while exporting: each line decoded makes hundreds of
    containers, none in a cycle, and the default thresholds would scan the rows a Parquet batch
    holds again and again (a tenth of that format's time). Reference counting frees them all."""
    before = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _Export:
    def __init__(self, request: ExportRequest, result: ExportResult, index: ExportIndex, folder: Path,
                 progress: Progress, stack: ExitStack):
        self.request, self.result, self.index, self.folder = request, result, index, folder
        self.progress, self.stack = progress, stack
        self.start, self.end = time_bounds(request.start, request.end)
        self.kinds = {request.kind} if request.kind else set(POST_KINDS)

    def execute(self) -> None:
        request, result = self.request, self.result
        kinds = self.kinds | {"urls"}
        result.sources = open_sources(request.sources, list(request.collections), kinds, self.stack)
        files = [file for source in result.sources for file in source.files if self._hour_wanted(file)]
        self._load_links([file for file in files if file.kind == "urls"])
        files = [file for file in files if file.kind in self.kinds]
        result.platform = self._platform(files)
        select_columns(request.columns, result.platform)
        self.spec = RowSpec(FORMATS[request.format].item, request.columns, self._row_filter(),
                            self.index.path if self.index.links else None, result.platform)
        self.maker = RowMaker(self.spec, None)  # the index passes (rows are made by `write_part`)
        if request.dedupe != "none":
            if self.spec.filter.active:
                self._index_filtered(files)
            else:
                self._index_all(files, worker_count(request.jobs, files))
            result.posts_indexed = self.index.seal()
        self._write(files)

    def _platform(self, files: list[CaptureFile]) -> str:
        """The one platform of the captures (from each collection's first file that holds a line);
        collections of several platforms are refused: their posts have different columns."""
        found: dict[str, str] = {}
        for file in files:
            if file.collection not in found:
                platform = file_platform(file.label, file.opener)
                if platform is not None:
                    found[file.collection] = platform
        platforms = sorted(set(found.values()))
        if len(platforms) > 1:
            by_platform = "; ".join(f"{platform}: {', '.join(sorted(c for c, p in found.items() if p == platform))}"
                                    for platform in platforms)
            raise UsageError(f"these collections hold posts of different platforms ({by_platform}), whose columns "
                             "differ: export each platform's collections on their own")
        if platforms and platforms[0] not in TABLES:
            raise UsageError(f"the captures are of the platform {platforms[0]!r}, which this version cannot export")
        return platforms[0] if platforms else DEFAULT_PLATFORM

    # -- filters -----------------------------------------------------------------------------

    def _row_filter(self) -> RowFilter:
        records = list(self.request.ledger_records) + [r for s in self.result.sources for r in s.ledger_records]
        ids: set[str] = set()
        names: set[str] = set()
        for wanted in self.request.accounts:
            found = account_ids_named(records, wanted)
            self.result.account_ids[wanted] = found
            ids |= found
            if wanted.isdigit() or wanted.startswith("did:"):  # an X id, a Bluesky DID
                ids.add(wanted)
            names.add(wanted.lstrip("@").lower())
        return RowFilter(self.start, self.end, self.request.by, frozenset(ids), frozenset(names),
                         bool(self.request.accounts), self.request.include_referenced)

    def _hour_wanted(self, file: CaptureFile) -> bool:
        if self.request.by != "captured" or file.hour is None or file.kind == "urls":
            return True
        hour = rfc3339_ms(file.hour)
        return not ((self.end and hour >= self.end) or (self.start and rfc3339_ms(file.hour + timedelta(hours=1)) <= self.start))

    # -- the index pass ----------------------------------------------------------------------

    def _index_filtered(self, files: list[CaptureFile]) -> None:
        """The index pass with filters: lines read through the light schema, posts filtered."""
        meter = _Meter(self.progress, "indexing")
        for number, file in enumerate(files):
            for line, raw in read_lines(Path(file.label), ignore_problem, file.opener):
                record = light_record(raw) if raw.strip() else None
                posts = self.maker.wanted_posts(record) if record is not None else []
                if posts:
                    self.index.offer_line(captured_at(record), position(number, line, 0), self.maker.keys(posts))
                    meter.add(len(posts))
        meter.done()

    def _index_all(self, files: list[CaptureFile], workers: int) -> None:
        """The index pass when no filter applies, file by file here or in worker processes."""
        meter = _Meter(self.progress, "indexing")

        def offer(entry: tuple[str, int, list]) -> None:
            self.index.offer_line(*entry)
            meter.add(len(entry[2]))

        if workers:
            tasks = ((self.spec, number, file) for number, file in enumerate(files))
            for _none, entries in map_files(index_part, tasks, workers, self.index.path.parent):
                for entry in entries:
                    offer(entry)
        else:
            for number, file in enumerate(files):
                self.maker.index_file(file, number, offer)
        meter.done()

    def _load_links(self, files: list[CaptureFile]) -> None:
        def pairs():
            for file in files:
                for _line, record in read_records(Path(file.label), lambda problem: self.result.problem(str(problem)),
                                                  file.opener):
                    if isinstance(record.get("url"), str):
                        yield record["url"], record.get("final_url")
        self.index.add_links(pairs())
        self.result.links = self.index.links

    # -- the writing pass --------------------------------------------------------------------

    def _write(self, files: list[CaptureFile]) -> None:
        """Each file's rows, in file order, made here or by worker processes (`parallel.py`)."""
        request, result = self.request, self.result
        writer = FORMATS[request.format](select_columns(request.columns, result.platform), result.notes)
        segments = Segments(self.folder, export_name(request.collections), writer, request.segment,
                            lambda path, rows: result.files.append((path.name, rows)))
        dedupe = request.dedupe != "none"
        tasks = ((file, self.index.winners(number) if dedupe else None) for number, file in enumerate(files))
        meter = _Meter(self.progress, "writing")
        workers = worker_count(request.jobs, files)
        jobs = ((self.spec, request.format, *task) for task in tasks)
        if workers:
            per_pickle = 1 if writer.batch_rows else SPILL_BATCH  # a batch is spilled as soon as it is made
            made = map_files(write_part, jobs, workers, self.index.path.parent, per_pickle)
        else:
            made = ((write_part(*job, segments.put), ()) for job in jobs)
        try:
            for file, (tally, prepared) in zip(files, made, strict=True):
                for item in prepared:
                    segments.put(item)
                result.add(tally, file)
                meter.add(tally.captures)
        finally:
            forget_maker()
        meter.done()
        segments.close()


class _Meter:
    """Progress of one pass (items, rate, elapsed), at most twice a second."""

    def __init__(self, progress: Progress, phase: str):
        self.progress, self.phase = progress, phase
        self.count = 0
        self.began = self.last = time.monotonic()

    def add(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= 0.5:
            self.last = now
            self.show(now)

    def show(self, now: float) -> None:
        elapsed = max(now - self.began, 1e-9)
        self.progress(f"{self.phase}: {self.count:,} posts, {self.count / elapsed:,.0f}/s, "
                      f"{int(elapsed) // 60}:{int(elapsed) % 60:02d} elapsed")

    def done(self) -> None:
        self.show(time.monotonic())

