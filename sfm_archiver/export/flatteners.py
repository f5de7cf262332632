"""One flattener per platform: what the export's rows need of a capture line, by `__sfm.platform`.

A capture line names its platform in `__sfm.platform` (X's captures, older than the field, have
none: they are X's). The export writes one platform's table (`columns.TABLES`); `RowMaker` asks
the flattener of that platform for a line's posts, each post's keys, filter values and row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from sfm_archiver.export import bluesky_flatten as bsky
from sfm_archiver.export.flatten import (
    Includes,
    extra_fields,
    line_posts,
    lookup,
    nested_post,
    unknown_fields,
)
from sfm_archiver.export.lines import read_records
from sfm_archiver.export.xrows import XLine, author_of, extra_of, flatten_values, links_of, read_x_lines, unknown_of
from sfm_archiver.platforms.x_platform import X
from sfm_archiver.storage.reader import Opener, ProblemSink

DEFAULT_PLATFORM = "x"


def line_platform(record: dict) -> str:
    """The platform of a capture line (`__sfm.platform`; none: X)."""
    return meta_platform(line_meta(record))


def line_meta(record: dict) -> dict:
    """A capture line's `__sfm` (empty when it has none)."""
    meta = record.get("__sfm")
    return meta if isinstance(meta, dict) else {}


def meta_platform(meta: dict) -> str:
    platform = meta.get("platform")
    return platform if isinstance(platform, str) else DEFAULT_PLATFORM


def file_platform(label: str, opener=None) -> str | None:
    """The platform of a capture file: that of its first JSON object (None: it holds none).
    A collection is of one platform, and so is each of its files."""
    for _line, record in read_records(Path(label), lambda problem: None, opener):
        return line_platform(record)
    return None


class _DictLines:
    """Flatteners of lines decoded into dicts (`read_records`)."""

    meta = staticmethod(line_meta)

    @staticmethod
    def read(path: Path, on_problem: ProblemSink, opener: Opener | None, referenced: bool) -> Iterator[tuple[int, dict]]:
        return read_records(path, on_problem, opener)


class XFlattener(_DictLines):
    """X API v2 lines: posts of `data` (and the referenced posts), joined through `includes`."""

    platform = "x"

    context = Includes

    @staticmethod
    def posts(record: dict, referenced: bool) -> Iterator[tuple[int, dict, bool]]:
        return line_posts(record, referenced)

    @staticmethod
    def key(post: dict) -> str:
        return post["id"]

    post_id = key

    @staticmethod
    def created_at(post: dict) -> Any:
        return post.get("created_at")

    @staticmethod
    def author(post: dict, includes: Includes) -> tuple[Any, Any]:
        author_id = post.get("author_id")
        return author_id, (lookup(includes.users, author_id) or {}).get("username")

    account = author

    @staticmethod
    def links(post: dict) -> Iterator[str]:
        return X.post_links(post)

    @staticmethod
    def nested(post: dict, includes: Includes, meta: dict, record: dict) -> dict:
        return nested_post(post, includes, meta, record.get("matching_rules"))

    @staticmethod
    def unknown(post: dict, includes: Includes) -> list[str]:
        return unknown_fields(post, lookup(includes.users, post.get("author_id")))

    @staticmethod
    def extra(post: dict, includes: Includes) -> dict | None:
        return extra_fields(post, lookup(includes.users, post.get("author_id")))


class BlueskyFlattener(_DictLines):
    """Bluesky lines: author-feed pages and Jetstream post creations (`bluesky_flatten`)."""

    platform = "bluesky"

    @staticmethod
    def context(record: dict) -> None:
        return None  # a feed item holds its author and references itself

    @staticmethod
    def posts(record: dict, referenced: bool) -> Iterator[tuple[int, dict, bool]]:
        for slot, item in bsky.line_posts(record):
            yield slot, item, False

    key = staticmethod(bsky.dedupe_key)
    post_id = staticmethod(bsky.post_uri)
    created_at = staticmethod(bsky.created_at)

    @staticmethod
    def author(item: dict, context: None) -> tuple[Any, Any]:
        return bsky.author(item)

    @staticmethod
    def account(item: dict, context: None) -> tuple[Any, Any]:
        return bsky.account(item)

    links = staticmethod(bsky.links)

    @staticmethod
    def values(item: dict, context: None, meta: dict, kind: str, collection: str, referenced: bool,
               record: dict, finals: list[str] | None) -> tuple:
        return bsky.values(item, meta, kind, collection, finals)

    @staticmethod
    def nested(item: dict, context: None, meta: dict, record: dict) -> dict:
        return bsky.nested(item, meta)

    @staticmethod
    def unknown(item: dict, context: None) -> list[str]:
        return bsky.unknown_fields(item)

    @staticmethod
    def extra(item: dict, context: None) -> dict | None:
        return bsky.extra_fields(item)


class XRowFlattener:
    """X's rows (`item` "row"): lines read as structs (`xrows`), the same answers from them as
    `XFlattener` gives from dicts, faster."""

    platform = "x"
    read = staticmethod(read_x_lines)

    @staticmethod
    def meta(line: XLine) -> dict:
        return line.meta

    @staticmethod
    def context(line: XLine) -> XLine:
        return line

    @staticmethod
    def posts(line: XLine, referenced: bool) -> list[tuple[int, Any, bool]]:
        return line.posts  # referenced posts are among them when `read` was asked for them

    @staticmethod
    def key(post: Any) -> str:
        return post.id

    post_id = key

    @staticmethod
    def created_at(post: Any) -> Any:
        return post.created_at

    author = account = staticmethod(author_of)
    links = staticmethod(links_of)

    @staticmethod
    def values(post: Any, line: XLine, meta: dict, kind: str, collection: str, referenced: bool,
               record: XLine, finals: list[str] | None) -> tuple:
        return flatten_values(post, line, meta, kind, collection, referenced, finals)

    unknown = staticmethod(unknown_of)
    extra = staticmethod(extra_of)


FLATTENERS = {flattener.platform: flattener for flattener in (XFlattener(), BlueskyFlattener())}
# the writing pass of the row formats (CSV, TSV, XLSX, Parquet); any other platform: as above
ROW_FLATTENERS = FLATTENERS | {"x": XRowFlattener()}
