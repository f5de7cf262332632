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
from sfm_archiver.export.columns import EXTRA, column_picker, select_columns
from sfm_archiver.export.flatten import (
    POST_KINDS,
    Includes,
    extra_fields,
    flatten_values,
    line_posts,
    lookup,
    nested_post,
    unknown_fields,
)
from sfm_archiver.export.index import ExportIndex, position
from sfm_archiver.export.lines import read_lines, read_records
from sfm_archiver.export.scan import index_entries, light_record
from sfm_archiver.export.sources import CaptureFile, Source, open_sources
from sfm_archiver.export.writers import FORMATS, Segments
from sfm_archiver.ledger import account_ids_named
from sfm_archiver.timeutil import parse_timestamp, rfc3339_ms, utcnow

DEDUPE = ("latest", "first", "none")
BY = ("posted", "captured")
DEFAULT_SEGMENT = 250_000
PROBLEMS_KEPT = 1000
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

    @property
    def exit_code(self) -> int:
        """0 when every input was read whole, 1 when something was skipped (the export is written)."""
        return 1 if self.problem_count or any(source.skipped for source in self.sources) else 0

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(text)


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
    select_columns(request.columns)
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
        self.columns = select_columns(request.columns)
        self.with_extra = EXTRA in self.columns
        self.pick = column_picker(self.columns)
        self.start, self.end = time_bounds(request.start, request.end)
        self.kinds = {request.kind} if request.kind else set(POST_KINDS)
        self.filtered = bool(self.start or self.end or request.accounts)
        self.account_ids: set[str] = set()
        self.account_names: set[str] = set()

    def execute(self) -> None:
        request, result = self.request, self.result
        kinds = self.kinds | {"urls"}
        result.sources = open_sources(request.sources, list(request.collections), kinds, self.stack)
        self._resolve_accounts()
        files = [file for source in result.sources for file in source.files if self._hour_wanted(file)]
        self._load_links([file for file in files if file.kind == "urls"])
        files = [file for file in files if file.kind in self.kinds]
        if request.dedupe != "none":
            if self.filtered:
                for number, line, record, posts in self._captures(files, "indexing"):
                    self.index.offer_line(_captured_at(record), position(number, line, 0),
                                          [(slot, post["id"]) for slot, post, _referenced in posts])
            else:
                self._index_all(files)
            result.posts_indexed = self.index.seal()
        self._write(files)

    # -- filters -----------------------------------------------------------------------------

    def _resolve_accounts(self) -> None:
        records = list(self.request.ledger_records) + [r for s in self.result.sources for r in s.ledger_records]
        for wanted in self.request.accounts:
            ids = account_ids_named(records, wanted)
            self.result.account_ids[wanted] = ids
            self.account_ids |= ids
            if wanted.isdigit():
                self.account_ids.add(wanted)
            self.account_names.add(wanted.lstrip("@").lower())

    def _hour_wanted(self, file: CaptureFile) -> bool:
        if self.request.by != "captured" or file.hour is None or file.kind == "urls":
            return True
        hour = rfc3339_ms(file.hour)
        return not ((self.end and hour >= self.end) or (self.start and rfc3339_ms(file.hour + timedelta(hours=1)) <= self.start))

    def _post_wanted(self, post: dict, record: dict, includes: Includes | None) -> bool:
        if self.start or self.end:
            stamp = _captured_at(record) if self.request.by == "captured" else post.get("created_at")
            if not isinstance(stamp, str) or (self.start and stamp < self.start) or (self.end and stamp >= self.end):
                return False
        if self.request.accounts:
            author_id = post.get("author_id")
            if author_id.__class__ is str and author_id in self.account_ids:
                return True
            author = lookup((includes or Includes(record)).users, author_id) or {}
            return str(author.get("username", "")).lower() in self.account_names
        return True

    # -- reading -----------------------------------------------------------------------------

    def _captures(self, files: list[CaptureFile], phase: str) -> Iterator[tuple[int, int, dict, list]]:
        """(file number, line, record, wanted posts) of every capture line, in file order. The
        index pass reads only the fields it needs (`scan.light_record`), the writing pass all."""
        meter = _Meter(self.progress, phase)
        for number, file in enumerate(files):
            for line, record in self._records(file, phase):
                posts = self._wanted_posts(record)
                meter.add(len(posts))
                if posts:
                    yield number, line, record, posts
        meter.done()

    def _wanted_posts(self, record: dict) -> list[tuple[int, dict, bool]]:
        """(slot, post, is_referenced) of a line's posts that pass the filters; referenced posts
        come with a page of which at least one post passed."""
        filtered = self.filtered
        posts = []
        includes = Includes(record) if filtered and self.request.accounts else None
        page_passed = False
        for slot, post, is_referenced in line_posts(record, self.request.include_referenced):
            if is_referenced:
                if page_passed:
                    posts.append((slot, post, True))
            elif not filtered or self._post_wanted(post, record, includes):
                page_passed = True
                posts.append((slot, post, False))
        return posts

    def _index_all(self, files: list[CaptureFile]) -> None:
        """The index pass when no filter applies: ids and capture times straight from the
        decoded schema (`scan.index_entries`); a line it does not fit goes the general way."""
        meter = _Meter(self.progress, "indexing")
        referenced = self.request.include_referenced
        for number, file in enumerate(files):
            for line, raw in read_lines(Path(file.label), self._on_problem("indexing"), file.opener):
                found = index_entries(raw, referenced)
                if found is None:
                    record = light_record(raw) if raw.strip() else None
                    if record is None:  # not an object: the writing pass reports it
                        continue
                    found = _captured_at(record), [(slot, post["id"]) for slot, post, _ in self._wanted_posts(record)]
                if found[1]:
                    self.index.offer_line(found[0], position(number, line, 0), found[1])
                    meter.add(len(found[1]))
        meter.done()

    def _records(self, file: CaptureFile, phase: str) -> Iterator[tuple[int, dict]]:
        if phase == "writing":
            yield from read_records(Path(file.label), self._on_problem(phase), file.opener)
            return
        for line, raw in read_lines(Path(file.label), self._on_problem(phase), file.opener):
            record = light_record(raw) if raw.strip() else None
            if record is not None:
                yield line, record

    def _on_problem(self, phase: str):
        # Each damaged line is met by both passes: report it once, from the writing pass.
        if phase == "writing":
            return lambda problem: self.result.problem(str(problem))
        return lambda problem: None

    def _load_links(self, files: list[CaptureFile]) -> None:
        def pairs():
            for file in files:
                for _line, record in read_records(Path(file.label), self._on_problem("writing"), file.opener):
                    if isinstance(record.get("url"), str):
                        yield record["url"], record.get("final_url")
        self.index.add_links(pairs())
        self.result.links = self.index.links

    # -- writing -----------------------------------------------------------------------------

    def _write(self, files: list[CaptureFile]) -> None:
        request, result = self.request, self.result
        writer = FORMATS[request.format](self.columns, result.notes)
        segments = Segments(self.folder, export_name(request.collections), writer, request.segment,
                            lambda path, rows: result.files.append((path.name, rows)))
        dedupe = request.dedupe != "none"
        current, winners = -1, set()
        for number, line, record, posts in self._captures(files, "writing"):
            result.captures += len(posts)
            if number != current:
                current = number
                winners = self.index.winners(number) if dedupe else winners
            meta = record.get("__sfm") if isinstance(record.get("__sfm"), dict) else {}
            includes = Includes(record)
            file = files[number]
            written = 0
            for slot, post, referenced in posts:
                if dedupe and ((line << 12) | slot) not in winners:
                    continue
                segments.write(self._item(writer.item, post, includes, meta, record, file, referenced))
                self._count(post, includes, file)
                written += 1
            if written:
                result.rows += written
                result.by_collection[file.collection] += written
                result.by_kind[file.kind] += written
                _widen(result.captured_range, meta.get("captured_at"))
        segments.close()

    def _item(self, kind: str, post: dict, includes: Includes, meta: dict, record: dict, file: CaptureFile,
              referenced: bool):
        if kind == "id":
            return post["id"]
        rules = record.get("matching_rules")
        if kind == "post":
            return nested_post(post, includes, meta, rules)
        values = flatten_values(post, includes, meta, file.kind, file.collection, referenced, rules, self._finals(post))
        if self.with_extra:
            values += (extra_fields(post, lookup(includes.users, post.get("author_id"))),)
        return self.pick(values)

    def _finals(self, post: dict) -> list[str] | None:
        if not self.index.links:
            return None
        from sfm_archiver.jobs.urls import tweet_links  # with its HTTP stack: only when there are links to join

        finals = [self.index.final_url(url) for url in dict.fromkeys(tweet_links(post))]
        return [final for final in finals if final] or None

    def _count(self, post: dict, includes: Includes, file: CaptureFile) -> None:
        """Per-row facts for the README: timeline accounts, fields outside the columns, posting times."""
        result = self.result
        author_id = post.get("author_id")
        author = lookup(includes.users, author_id)
        if file.kind == "timeline" and author_id.__class__ is str:
            result.by_account[author_id] += 1
            if author and author.get("username").__class__ is str:
                result.account_names[author_id] = author["username"]
        for path in unknown_fields(post, author):
            result.unknown[path] += 1
        _widen(result.posted_range, post.get("created_at"))


def _widen(span: list[str], value: object) -> None:
    if not isinstance(value, str):
        return
    if not span:
        span.extend((value, value))
    elif value < span[0]:
        span[0] = value
    elif value > span[1]:
        span[1] = value


def _captured_at(record: dict) -> str:
    meta = record.get("__sfm")
    stamp = meta.get("captured_at") if isinstance(meta, dict) else None
    return stamp if isinstance(stamp, str) else ""


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

