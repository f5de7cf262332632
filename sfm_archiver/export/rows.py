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
from sfm_archiver.export.flatten import (
    Includes,
    extra_fields,
    flatten_values,
    line_posts,
    lookup,
    nested_post,
    unknown_fields,
)
from sfm_archiver.export.index import position
from sfm_archiver.export.lines import read_lines, read_records
from sfm_archiver.export.scan import index_entries, light_record
from sfm_archiver.export.sources import CaptureFile
from sfm_archiver.platforms.x_platform import X

PROBLEMS_KEPT = 1000
FinalUrl = Callable[[str], "str | None"]
Emit = Callable[[Any], None]


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

    def problem(self, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < PROBLEMS_KEPT:
            self.problems.append(text)


class RowMaker:
    def __init__(self, spec: RowSpec, final_url: FinalUrl | None):
        self.spec, self.filter = spec, spec.filter
        self.columns = select_columns(spec.columns)
        self.with_extra = EXTRA in self.columns
        self.pick = column_picker(self.columns)
        self.final_url = final_url

    # -- filters -----------------------------------------------------------------------------

    def wanted_posts(self, record: dict) -> list[tuple[int, dict, bool]]:
        """(slot, post, is_referenced) of a line's posts that pass the filters; referenced posts
        come with a page of which at least one post passed."""
        active = self.filter.active
        posts = []
        includes = Includes(record) if active and self.filter.accounts else None
        page_passed = False
        for slot, post, is_referenced in line_posts(record, self.filter.include_referenced):
            if is_referenced:
                if page_passed:
                    posts.append((slot, post, True))
            elif not active or self._post_wanted(post, record, includes):
                page_passed = True
                posts.append((slot, post, False))
        return posts

    def _post_wanted(self, post: dict, record: dict, includes: Includes | None) -> bool:
        wanted = self.filter
        if wanted.start or wanted.end:
            stamp = captured_at(record) if wanted.by == "captured" else post.get("created_at")
            if not isinstance(stamp, str) or (wanted.start and stamp < wanted.start) or (wanted.end and stamp >= wanted.end):
                return False
        if wanted.accounts:
            author_id = post.get("author_id")
            if author_id.__class__ is str and author_id in wanted.account_ids:
                return True
            author = lookup((includes or Includes(record)).users, author_id) or {}
            return str(author.get("username", "")).lower() in wanted.account_names
        return True

    # -- one file ----------------------------------------------------------------------------

    def write_file(self, file: CaptureFile, winners: set[int] | None, emit: Emit) -> FileTally:
        """Every wanted post of `file` (only the `winners` positions under dedupe) to `emit`."""
        tally = FileTally()
        for line, record in read_records(Path(file.label), lambda problem: tally.problem(str(problem)), file.opener):
            posts = self.wanted_posts(record)
            if not posts:
                continue
            tally.captures += len(posts)
            meta = record.get("__sfm") if isinstance(record.get("__sfm"), dict) else {}
            includes = Includes(record)
            written = 0
            for slot, post, referenced in posts:
                if winners is not None and ((line << 12) | slot) not in winners:
                    continue
                emit(self._item(post, includes, meta, record, file, referenced))
                self._count(tally, post, includes, file)
                written += 1
            if written:
                tally.rows += written
                widen(tally.captured_range, meta.get("captured_at"))
        return tally

    def index_file(self, file: CaptureFile, number: int, emit: Emit) -> None:
        """The index pass of one file when no filter applies: (captured_at, line position,
        [(slot, post id)]) of each line with posts, straight from the decoded schema
        (`scan.index_entries`); a line it does not fit goes the general way."""
        referenced = self.filter.include_referenced
        for line, raw in read_lines(Path(file.label), ignore_problem, file.opener):
            found = index_entries(raw, referenced)
            if found is None:
                record = light_record(raw) if raw.strip() else None
                if record is None:  # not an object: the writing pass reports it
                    continue
                found = captured_at(record), [(slot, post["id"]) for slot, post, _ in self.wanted_posts(record)]
            if found[1]:
                emit((found[0], position(number, line, 0), found[1]))

    def _item(self, post: dict, includes: Includes, meta: dict, record: dict, file: CaptureFile, referenced: bool):
        kind = self.spec.item
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
        if self.final_url is None:
            return None
        finals = [self.final_url(url) for url in dict.fromkeys(X.post_links(post))]
        return [final for final in finals if final] or None

    @staticmethod
    def _count(tally: FileTally, post: dict, includes: Includes, file: CaptureFile) -> None:
        """Per-row facts for the README: timeline accounts, fields outside the columns, posting times."""
        author_id = post.get("author_id")
        author = lookup(includes.users, author_id)
        if file.kind == "timeline" and author_id.__class__ is str:
            tally.by_account[author_id] += 1
            if author and author.get("username").__class__ is str:
                tally.account_names[author_id] = author["username"]
        for path in unknown_fields(post, author):
            tally.unknown[path] += 1
        widen(tally.posted_range, post.get("created_at"))


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
