"""The fetch-urls job: where did the links in a day's captures lead? (DESIGN.md section 8)

Links are collected from the timeline and stream captures of a capture-date range
(the links of every post of a capture line, as its platform reads them: `Platform.record_posts`
and `Platform.post_links`), each distinct URL is resolved once, and one `kind=urls` capture line is
written per URL with the posts that carry it. The URL cache in the state store keeps a URL from
being requested again on later runs (`refetch=True` overrides); failures that may be passing
(timeouts, unreachable hosts, 5xx, 429) are not cached, so a later run tries them again.
A cached URL gets a line (marked `"cached": true`) naming only the posts that no earlier line of
the collection named, so every collection's captures say where its links led and runs over the
same range (a cron re-run, today's then yesterday's pass) write each (link, post) once;
`refetch=True` resolves again and records the fresh observation for every post.

Crash safety: a URL enters the cache, and its (link, posts) the record of lines written, only
after its line (and its WARC records) are durable, in one transaction; a killed run loses at
most the batch in flight, which the next run writes again (a kill between the write and that
transaction can repeat the batch's lines, never lose them).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sfm_archiver.errors import UsageError
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.runs import RunRecorder
from sfm_archiver.linkcheck import LinkCheckSettings, LinkResolver, LinkResult
from sfm_archiver.locks import collection_lock
from sfm_archiver.platforms import platform_of
from sfm_archiver.platforms.base import Platform
from sfm_archiver.platforms.x_platform import X
from sfm_archiver.storage import warc
from sfm_archiver.storage.reader import CaptureProblem, capture_files, read_records
from sfm_archiver.storage.records import json_line, sfm_metadata
from sfm_archiver.storage.writer import CaptureWriter

JOB = "fetch_urls"
SOURCE_KINDS = ("timeline", "stream")
BATCH_RESULTS = 500
BATCH_SECONDS = 5.0
PROBLEMS_LISTED = 20
NO_POST = ""  # the post id recorded for a link whose posts have no id


@dataclass
class Links:
    """Distinct URLs of a range of captures, each with the ids of the posts carrying it."""

    posts: dict[str, dict[str, None]] = field(default_factory=dict)
    files: int = 0
    records: int = 0
    tweets: int = 0
    problems: list[CaptureProblem] = field(default_factory=list)

    def add(self, url: str, tweet_id: str | None) -> None:
        ids = self.posts.setdefault(url, {})
        if tweet_id is not None:
            ids[tweet_id] = None

    def tweet_ids(self, url: str) -> list[str]:
        return list(self.posts[url])


def fetch_urls(ctx: JobContext, collection_name: str, start: date, end: date, refetch: bool = False) -> dict:
    """Resolve the links of the captures made from `start` to `end` (UTC dates, inclusive)."""
    config = ctx.config
    try:
        config.collection(collection_name)
    except KeyError:
        known = ", ".join(c.name for c in config.collections) or "none"
        raise UsageError(f"unknown collection {collection_name!r} (configured: {known})") from None
    if end < start:
        raise UsageError(f"the range ends ({end}) before it starts ({start})")
    with collection_lock(config.paths.state, collection_name, "urls", ctx.lock_wait):
        with RunRecorder(ctx.store, JOB, collection_name) as run:
            _UrlRun(ctx, run, collection_name, start, end, refetch).execute()
    return ctx.store.run(run.run_id)


def yesterday(now: datetime) -> date:
    """The default range of the daily job: the previous UTC day."""
    return (now.astimezone(timezone.utc) - timedelta(days=1)).date()


# -- collecting links ----------------------------------------------------------------------


def collect_links(archive_root: Path, collection: str, start: date, end: date,
                  platform: Platform = X) -> Links:
    """Every link of the timeline and stream captures made from `start` to `end` inclusive, as
    the collection's platform finds them in its posts."""
    links = Links()
    first = datetime.combine(start, datetime.min.time(), timezone.utc)
    after = datetime.combine(end + timedelta(days=1), datetime.min.time(), timezone.utc)
    for path in capture_files(archive_root, collection, SOURCE_KINDS, first, after):
        links.files += 1
        for _line, record in read_records(path, links.problems.append):
            links.records += 1
            for post in platform.record_posts(record):
                links.tweets += 1
                post_id = platform.post_id(post)
                for url in platform.post_links(post):
                    links.add(url, post_id)
    return links


# -- one run -------------------------------------------------------------------------------


class _UrlRun:
    """One fetch-urls run of one collection: collect, resolve, write in durable batches."""

    def __init__(self, ctx: JobContext, run: RunRecorder, collection: str, start: date, end: date, refetch: bool):
        self.ctx = ctx
        self.run = run
        self.collection = collection
        self.start = start
        self.end = end
        self.refetch = refetch
        self.halt = threading.Event()
        self.pending_lines: list[bytes] = []
        self.pending_cache: list[tuple[str, dict]] = []
        self.pending_posts: list[tuple[str, list[str]]] = []
        self.last_commit = time.monotonic()
        self.started = time.monotonic()
        self.total = 0
        self.done = 0
        self.writer: CaptureWriter | None = None
        self.warc: warc.WarcWriter | None = None
        self.links = Links()

    def execute(self) -> None:
        ctx, run = self.ctx, self.run
        run.info(f"collecting links of captures from {self.start} to {self.end}")
        self.links = links = collect_links(ctx.config.paths.archive, self.collection, self.start, self.end,
                                            platform_of(self.collection, ctx.config))
        self._report_problems(links.problems)
        run.counts.update(files=links.files, records=links.records, posts=links.tweets, urls=len(links.posts))
        cached, to_resolve = self._split_cached(list(links.posts))
        run.counts["cached"] = len(cached)
        self.total = len(links.posts)
        if not links.posts:
            run.info("no links in this range")
            return
        if self._should_stop():
            return
        config = ctx.config
        self.writer = CaptureWriter(
            config.paths.archive, self.collection, "urls", clock=ctx.clock, registry=ctx.store,
            rotation=config.storage.rotation, compresslevel=config.storage.compresslevel, sync_every_flush=False,
        )
        self.warc = warc.link_writer(ctx, self.collection) if to_resolve else None
        try:
            self._write_cached(cached)
            if to_resolve and not self.halt.is_set():
                self._resolve(to_resolve)
            self._commit()
        finally:
            self.writer.close()
            if self.warc is not None:
                run.counts["warc_records"] = self.warc.records_written
                self.warc.close()
            self._progress(final=True)
        if ctx.stop.is_set():
            run.info(f"stopped after {self.done} of {self.total} links")
            run.interrupted()

    def _split_cached(self, urls: list[str]) -> tuple[list[tuple[str, dict]], list[str]]:
        if self.refetch:
            return [], urls
        cached, missing = [], []
        for url in urls:
            result = self.ctx.store.cached_url(url)
            if result is None:
                missing.append(url)
            else:
                cached.append((url, result))
        return cached, missing

    def _write_cached(self, cached: list[tuple[str, dict]]) -> None:
        for url, result in cached:
            if self._should_stop():
                return
            self.done += 1
            recorded = self.ctx.store.url_line_posts(self.collection, url)
            new_posts = [tweet_id for tweet_id in self._posts_of(url) if tweet_id not in recorded]
            if not new_posts:
                self.run.counts["already_recorded"] += 1
                continue
            self._append(url, result, from_cache=True, posts=new_posts)
            if len(self.pending_lines) >= BATCH_RESULTS:
                self._commit()

    def _resolve(self, urls: list[str]) -> None:
        settings = LinkCheckSettings.from_config(self.ctx.config)
        observer = self.warc.record if self.warc is not None else None
        resolver = LinkResolver(settings, observer=observer, clock=self.ctx.clock)
        try:
            resolver.resolve_all(urls, self._on_result, stop=self.halt, tick=self._tick)
        finally:
            self.run.counts["requests"] = resolver.requests_sent

    def _on_result(self, result: LinkResult) -> None:
        counts = self.run.counts
        counts["resolved"] += 1
        if result.error is not None:
            counts["failed"] += 1
            counts[f"error_{result.error['type']}"] += 1
        data = result.to_dict()
        self._append(result.url, data, from_cache=False, posts=self._posts_of(result.url))
        if not result.transient:
            self.pending_cache.append((result.url, data))
        self.done += 1
        if len(self.pending_lines) >= BATCH_RESULTS:
            self._commit()

    def _posts_of(self, url: str) -> list[str]:
        """The ids of the posts carrying `url` ("" stands for a link found in no identified post)."""
        return self.links.tweet_ids(url) or [NO_POST]

    def _append(self, url: str, result: dict, from_cache: bool, posts: list[str]) -> None:
        line = {
            "url": url,
            "final_url": result.get("final_url"),
            "final_status": result.get("final_status"),
            "chain": result.get("chain", []),
            "error": result.get("error"),
            "tweet_ids": [tweet_id for tweet_id in posts if tweet_id != NO_POST],
            "duration_ms": result.get("duration_ms"),
            "resolved_at": result.get("resolved_at"),
            "cached": from_cache,
            "__sfm": sfm_metadata(captured_at=self.ctx.clock(), collection=self.collection, job=JOB,
                                  run=self.run.run_id),
        }
        self.pending_lines.append(json_line(line))
        self.pending_posts.append((url, posts))

    def _tick(self) -> None:
        self._should_stop()
        if time.monotonic() - self.last_commit >= BATCH_SECONDS:
            self._commit()
        self._progress()

    def _commit(self) -> None:
        """Make the lines and WARC records written so far durable, then cache their URLs."""
        if not self.ctx.disk_ok():
            self._should_stop()
            return
        assert self.writer is not None
        if self.pending_lines:
            self.writer.write_batch(self.pending_lines)
        if self.warc is not None:
            self.warc.sync()
        self.ctx.store.store_url_lines(self.collection, self.pending_posts, self.pending_cache)
        self.pending_lines.clear()
        self.pending_cache.clear()
        self.pending_posts.clear()
        self.last_commit = time.monotonic()

    def _should_stop(self) -> bool:
        if self.ctx.stop.is_set():
            self.halt.set()
            return True
        if not self.ctx.disk_ok():
            if not self.halt.is_set():
                self.run.warn("free disk space is below the minimum: stopped early, the rest waits for the next run")
            self.halt.set()
            return True
        return self.halt.is_set()

    def _report_problems(self, problems: list[CaptureProblem]) -> None:
        for problem in problems[:PROBLEMS_LISTED]:
            self.run.warn(f"damaged capture skipped: {problem}")
        if len(problems) > PROBLEMS_LISTED:
            self.run.warn(f"{len(problems) - PROBLEMS_LISTED} more damaged capture lines skipped")
        self.run.counts["damaged"] = len(problems)

    def _progress(self, final: bool = False) -> None:
        if self.ctx.progress is None:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        failed = self.run.counts["failed"]
        self.ctx.report(
            f"fetch-urls {self.collection}: {progress_bar(self.done, self.total)} {self.done}/{self.total} links, "
            f"{failed} failed, {self.done / elapsed:.0f}/s" + (" done" if final else "")
        )


def progress_bar(done: int, total: int, width: int = 24) -> str:
    filled = width if total <= 0 else min(width, int(width * done / total))
    return "[" + "#" * filled + "." * (width - filled) + "]"
