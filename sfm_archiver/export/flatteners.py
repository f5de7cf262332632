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
    flatten_values,
    line_posts,
    lookup,
    nested_post,
    unknown_fields,
)
from sfm_archiver.export.lines import read_records
from sfm_archiver.platforms.x_platform import X

DEFAULT_PLATFORM = "x"


def line_platform(record: dict) -> str:
    """The platform of a capture line (`__sfm.platform`; none: X)."""
    meta = record.get("__sfm")
    platform = meta.get("platform") if isinstance(meta, dict) else None
    return platform if isinstance(platform, str) else DEFAULT_PLATFORM


def file_platform(label: str, opener=None) -> str | None:
    """The platform of a capture file: that of its first JSON object (None: it holds none).
    A collection is of one platform, and so is each of its files."""
    for _line, record in read_records(Path(label), lambda problem: None, opener):
        return line_platform(record)
    return None


class XFlattener:
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
    def values(post: dict, includes: Includes, meta: dict, kind: str, collection: str, referenced: bool,
               record: dict, finals: list[str] | None) -> tuple:
        return flatten_values(post, includes, meta, kind, collection, referenced, record.get("matching_rules"), finals)

    @staticmethod
    def nested(post: dict, includes: Includes, meta: dict, record: dict) -> dict:
        return nested_post(post, includes, meta, record.get("matching_rules"))

    @staticmethod
    def unknown(post: dict, includes: Includes) -> list[str]:
        return unknown_fields(post, lookup(includes.users, post.get("author_id")))

    @staticmethod
    def extra(post: dict, includes: Includes) -> dict | None:
        return extra_fields(post, lookup(includes.users, post.get("author_id")))


class BlueskyFlattener:
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


FLATTENERS = {flattener.platform: flattener for flattener in (XFlattener(), BlueskyFlattener())}
