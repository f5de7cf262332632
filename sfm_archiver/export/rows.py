"""One capture file's rows: which posts pass the filters, their values, and what the README counts.

The writing pass is this, file by file, in the export's own process or in a worker process
(`parallel.py`); both run the same `RowMaker`, so an export's files do not depend on where its
rows were made. A `FileTally` carries one file's counts back to the export's result.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from sfm_archiver.export.columns import EXTRA, column_picker, select_columns
from sfm_archiver.export.flatteners import FLATTENERS, ROW_FLATTENERS, meta_platform
from sfm_archiver.export.index import position
from sfm_archiver.export.lines import read_lines
from sfm_archiver.export.scan import index_entries, light_record
from sfm_archiver.export.sources import CaptureFile

PROBLEMS_KEPT = 1000
FinalUrl = Callable[[str], "str | None"]
Emit = Callable[[Any], None]
Flattener = Any  # a platform's flattener (`flatteners.py`)


@dataclass(frozen=True)
class RowFilter:
    """What decides whether a post is exported: the request's filters, accounts resolved."""

    start: str | None = None
    end: str | None = None
    by: str = "posted"
    account_ids: frozenset[str] = frozenset()
    account_names: frozenset[str] = frozenset()
    accounts: bool = False  # whether --account was given (even if it matched no id)
    include_referenced: bool = False

    @property
    def active(self) -> bool:
        return bool(self.start or self.end or self.accounts)


@dataclass(frozen=True)
class RowSpec:
    """Everything a process needs to make rows like the export's own process (picklable)."""

    item: str  # the writer's item: "row", "post" or "id"
    columns: str | None
    filter: RowFilter
    index_path: Path | None = None  # the export index, read for link finals when it holds links
    platform: str = "x"  # whose captures these are (`__sfm.platform`): the flattener and table used


@dataclass
class FileTally:
    """What one file's writing pass adds to the export's counts."""

    captures: int = 0
    rows: int = 0
    by_account: Counter = field(default_factory=Counter)
    account_names: dict[str, str] = field(default_factory=dict)
    unknown: Counter = field(default_factory=Counter)
    captured_range: list[str] = field(default_factory=list)
    posted_range: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    notes: Counter = field(default_factory=Counter)  # adjustments made while preparing the file's rows

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(text)


class RowMaker:
    def __init__(self, spec: RowSpec, final_url: FinalUrl | None):
        self.spec, self.filter = spec, spec.filter
        self.flat = FLATTENERS[spec.platform]  # the index passes (dicts)
        self.writing = ROW_FLATTENERS[spec.platform] if spec.item == "row" else self.flat  # the writing pass
        self.columns = select_columns(spec.columns, spec.platform)
        self.with_extra = EXTRA in self.columns
        self.pick = column_picker(self.columns, spec.platform)
        self.final_url = final_url

    # -- filters -----------------------------------------------------------------------------

    def wanted_posts(self, record: Any, flat: Flattener | None = None) -> list[tuple[int, Any, bool]]:
        """(slot, post, is_referenced) of a line's posts that pass the filters; referenced posts
        come with a page of which at least one post passed. A line of another platform than
        the export's has none (the writing pass reports it). `flat` read the line (default: the
        index passes' flattener, of dicts)."""
        flat = flat or self.flat
        if meta_platform(flat.meta(record)) != self.spec.platform:
            return []
        active = self.filter.active
        posts = []
        context = flat.context(record) if active and self.filter.accounts else None
        page_passed = False
        for slot, post, is_referenced in flat.posts(record, self.filter.include_referenced):
            if is_referenced:
                if page_passed:
                    posts.append((slot, post, True))
            elif not active or self._post_wanted(post, record, context, flat):
                page_passed = True
                posts.append((slot, post, False))
        return posts

    def _post_wanted(self, post: Any, record: Any, context: Any, flat: Flattener) -> bool:
        wanted = self.filter
        if wanted.start or wanted.end:
            stamp = flat.meta(record).get("captured_at") if wanted.by == "captured" else flat.created_at(post)
            if not isinstance(stamp, str) or (wanted.start and stamp < wanted.start) or (wanted.end and stamp >= wanted.end):
                return False
        if wanted.accounts:
            author_id, name = flat.author(post, context if context is not None else flat.context(record))
            if author_id.__class__ is str and author_id in wanted.account_ids:
                return True
            return str(name or "").lower() in wanted.account_names
        return True

    def keys(self, posts: list[tuple[int, dict, bool]]) -> list[tuple[int, str]]:
        """(slot, dedupe key) of posts, for the index."""
        return [(slot, self.flat.key(post)) for slot, post, _referenced in posts]

    # -- one file ----------------------------------------------------------------------------

    def write_file(self, file: CaptureFile, winners: set[int] | None, emit: Emit) -> FileTally:
        """Every wanted post of `file` (only the `winners` positions under dedupe) to `emit`."""
        tally = FileTally()
        flat = self.writing
        for line, record in flat.read(Path(file.label), lambda problem: tally.problem(str(problem)), file.opener,
                                      self.filter.include_referenced):
            posts = self.wanted_posts(record, flat)
            meta = flat.meta(record)
            if not posts:
                if meta_platform(meta) != self.spec.platform:
                    tally.problem(f"{file.label}:{line}: a {meta_platform(meta)} capture in an export of "
                                  f"{self.spec.platform} captures: skipped")
                continue
            tally.captures += len(posts)
            context = flat.context(record)
            written = 0
            for slot, post, referenced in posts:
                if winners is not None and ((line << 12) | slot) not in winners:
                    continue
                emit(self._item(post, context, meta, record, file, referenced))
                self._count(tally, post, context, file)
                written += 1
            if written:
                tally.rows += written
                widen(tally.captured_range, meta.get("captured_at"))
        return tally

    def index_file(self, file: CaptureFile, number: int, emit: Emit) -> None:
        """The index pass of one file when no filter applies: (captured_at, line position,
        [(slot, key)]) of each line with posts, straight from the decoded schema
        (`scan.index_entries`, X's lines); a line it does not fit goes the general way."""
        referenced = self.filter.include_referenced
        for line, raw in read_lines(Path(file.label), ignore_problem, file.opener):
            found = index_entries(raw, referenced) if self.spec.platform == "x" else None
            if found is None:
                record = light_record(raw) if raw.strip() else None
                if record is None:  # not an object: the writing pass reports it
                    continue
                found = captured_at(record), self.keys(self.wanted_posts(record))
            if found[1]:
                emit((found[0], position(number, line, 0), found[1]))

    def _item(self, post: Any, context: Any, meta: dict, record: Any, file: CaptureFile, referenced: bool):
        kind, flat = self.spec.item, self.writing
        if kind == "id":
            return flat.post_id(post)
        if kind == "post":
            return flat.nested(post, context, meta, record)
        values = flat.values(post, context, meta, file.kind, file.collection, referenced, record, self._finals(post))
        if self.with_extra:
            values += (flat.extra(post, context),)
        return self.pick(values)

    def _finals(self, post: Any) -> list[str] | None:
        if self.final_url is None:
            return None
        finals = [self.final_url(url) for url in dict.fromkeys(self.writing.links(post))]
        return [final for final in finals if final] or None

    def _count(self, tally: FileTally, post: Any, context: Any, file: CaptureFile) -> None:
        """Per-row facts for the README: timeline accounts, fields outside the columns, posting times."""
        flat = self.writing
        if file.kind == "timeline":
            account_id, name = flat.account(post, context)
            if account_id.__class__ is str:
                tally.by_account[account_id] += 1
                if name.__class__ is str:
                    tally.account_names[account_id] = name
        for path in flat.unknown(post, context):
            tally.unknown[path] += 1
        widen(tally.posted_range, flat.created_at(post))


def widen(span: list[str], value: object) -> None:
    """Stretch a [first, last] range of strings to hold `value` (non-strings are ignored)."""
    if not isinstance(value, str):
        return
    if not span:
        span.extend((value, value))
    elif value < span[0]:
        span[0] = value
    elif value > span[1]:
        span[1] = value


def captured_at(record: dict) -> str:
    meta = record.get("__sfm")
    stamp = meta.get("captured_at") if isinstance(meta, dict) else None
    return stamp if isinstance(stamp, str) else ""


def ignore_problem(problem: object) -> None:
    """Each damaged line is met by both passes: the writing pass reports it, the index pass not."""
