"""Bluesky as a `Platform`: what the archive reads of AppView answers, with no HTTP stack imported
(the export, fetch-urls and crash recovery use it on captures; `platforms/bluesky.py` is the client).

An author feed is newest first by each item's sort time, and its items are the account's posts
and reposts. The checkpoint of an account is `"<sort time> <item URI>"` of the newest item
captured (`checkpoint_of`); a later harvest stops at that item, or, when it was deleted since,
at the first item sorted before its time (`already_captured`).

Sort time: the AppView sorts a post at the earlier of its record's `createdAt` and its
`indexedAt` (a post dated in the future does not jump the feed), and a repost at its own time,
which a feed shows only as `reason.indexedAt` (its indexing, which may come later than the time
it sorts at); the repost record's key is a TID made when the repost was, so the earlier of the
two is used. Times are compared in whole milliseconds (records carry no more), so an item of the
same millisecond as the checkpoint is never taken for an older one: a deleted checkpoint can cost
a duplicate of a post of that very millisecond, never a gap.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterator, Mapping

from sfm_archiver.config_redact import redact_url_credentials
from sfm_archiver.platforms.bluesky_jetstream import created_post_uri
from sfm_archiver.ratelimit import Quota, http_date
from sfm_archiver.timeutil import parse_timestamp, rfc3339_ms

if TYPE_CHECKING:
    from sfm_archiver.config import Config

REPOST = "app.bsky.feed.defs#reasonRepost"
PIN = "app.bsky.feed.defs#reasonPin"
LINK = "app.bsky.richtext.facet#link"
MENTION = "app.bsky.richtext.facet#mention"
TAG = "app.bsky.richtext.facet#tag"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_EPOCH_SECONDS = 1_000_000_000  # a ratelimit-reset below this is a number of seconds, not a moment


def quota_of(headers: Mapping[str, str], server_date: float | None = None) -> Quota | None:
    """The window of the ratelimit-limit/-remaining/-reset headers (None when absent or broken).

    Bluesky sends `reset` as epoch seconds; the IETF draft the names come from makes it seconds
    from now, so a small value is taken as that (from the server's `Date`, else the local clock)."""
    try:
        limit, remaining = int(headers["ratelimit-limit"]), int(headers["ratelimit-remaining"])
        reset = float(headers["ratelimit-reset"])
    except (KeyError, TypeError, ValueError):
        return None
    if reset < _EPOCH_SECONDS:
        reset += server_date if server_date is not None else datetime.now(timezone.utc).timestamp()
    return Quota(limit, remaining, reset)


def feed_items(record: dict) -> list[dict]:
    """The items of an author-feed page that hold a post (each a FeedViewPost)."""
    feed = record.get("feed")
    return [item for item in feed if isinstance(item, dict) and isinstance(_dict(item.get("post")).get("uri"), str)] \
        if isinstance(feed, list) else []


def is_repost(item: dict) -> bool:
    return _dict(item.get("reason")).get("$type") == REPOST


def item_uri(item: dict) -> str:
    """What names the item in its feed: the repost record for a repost (one post may be reposted
    again later), else the post."""
    reason = _dict(item.get("reason"))
    if is_repost(item) and isinstance(reason.get("uri"), str):
        return reason["uri"]
    return item["post"]["uri"]


def sort_time(item: dict) -> str | None:
    """When the item sorts in its feed, as RFC 3339 UTC in milliseconds (None: no usable time)."""
    if is_repost(item):
        reason = _dict(item.get("reason"))
        uri = reason.get("uri")
        candidates = [_moment(reason.get("indexedAt")), _tid_moment(uri.rsplit("/", 1)[-1]) if isinstance(uri, str) else None]
    else:
        post = item["post"]
        candidates = [_moment(_dict(post.get("record")).get("createdAt")), _moment(post.get("indexedAt"))]
    known = [moment for moment in candidates if moment is not None]
    return rfc3339_ms(min(known)) if known else None


def checkpoint_of(item: dict) -> str:
    """The checkpoint an item leads to: its sort time (`-` when it has none) and its URI."""
    return f"{sort_time(item) or '-'} {item_uri(item)}"


def already_captured(item: dict, checkpoint: str) -> bool:
    """True for the checkpoint's own item and for every item sorted before it: an earlier sort
    time, or the same millisecond and an older record key (TIDs grow with creation time, and
    every item of that millisecond the feed held then was captured with the checkpoint's item),
    so posts made in one millisecond are not captured again once the checkpoint's item is gone."""
    time, _, uri = checkpoint.partition(" ")
    own = item_uri(item)
    if own == uri:
        return True
    mine = sort_time(item)
    if time == "-" or mine is None:
        return False
    return (mine, _record_key(own)) < (time, _record_key(uri))  # same formats, so text order is time order


def _record_key(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


class BlueskyPlatform:
    name = "bluesky"

    def secrets(self, config: Config) -> list[str]:
        return [config.bluesky.app_password] if config.bluesky.app_password else []

    def summary(self, config: Config) -> str:
        settings = config.bluesky
        login = (f"{settings.identifier} at {redact_url_credentials(settings.service_url)}" if settings.identifier
                 else "none: public AppView")
        return (f"bluesky {redact_url_credentials(settings.appview_url)}, jetstream {redact_url_credentials(settings.jetstream_url)}"
                f" (login {login})")

    def capture_meta(self) -> dict:
        return {"platform": self.name}

    def rate_reading(self, headers: Mapping[str, str]) -> tuple[Quota | None, float | None]:
        server_date = http_date(headers)
        return quota_of(headers, server_date), server_date

    def record_posts(self, record: dict) -> Iterator[dict]:
        """The PostView of each feed item (a repost: the reposted post), as the export reads a page,
        or for a Jetstream line that creates a post, that post with a PostView's `uri`, `cid` and
        `record`. The reply context and quoted posts a page also shows are other accounts' posts,
        harvested with their own feeds; their links are not this collection's."""
        for item in feed_items(record):
            yield item["post"]
        uri = created_post_uri(record)
        if uri is not None:
            commit = record["commit"]
            yield {"uri": uri, "cid": commit.get("cid"), "record": _dict(commit.get("record"))}

    def page_newest(self, record: dict) -> str | None:
        items = [item for item in feed_items(record) if _dict(item.get("reason")).get("$type") != PIN]
        return checkpoint_of(items[0]) if items else None

    def post_id(self, post: dict) -> str | None:
        uri = post.get("uri")
        return uri if isinstance(uri, str) else None

    def post_links(self, post: dict) -> Iterator[str]:
        """The URIs of the record's link facets, then of its external embed (also inside a
        record-with-media embed, and as the PostView's hydrated embed shows it), each once."""
        record = _dict(post.get("record"))
        found = [feature.get("uri") for feature in facet_features(record, LINK)]
        for embed in (_dict(record.get("embed")), _dict(post.get("embed"))):
            found.append(_dict(embed.get("external")).get("uri"))
            found.append(_dict(_dict(embed.get("media")).get("external")).get("uri"))
        yield from dict.fromkeys(uri.strip() for uri in found if isinstance(uri, str) and uri.strip())

    def open_client(self, config: Config, limiter=None, user_agent: str | None = None):
        from sfm_archiver.platforms.bluesky import BlueskyClient  # requests comes only with a client

        return BlueskyClient(config.bluesky, limiter=limiter, user_agent=user_agent)


def facet_features(record: dict, kind: str) -> Iterator[dict]:
    """The features of one `$type` (link, mention, tag) of a record's facets."""
    facets = record.get("facets")
    for facet in facets if isinstance(facets, list) else ():
        features = facet.get("features") if isinstance(facet, dict) else None
        for feature in features if isinstance(features, list) else ():
            if isinstance(feature, dict) and feature.get("$type") == kind:
                yield feature


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError):
        return None


def _tid_moment(key: str) -> datetime | None:
    """When a TID record key was made (13 base32-sortable characters: µs since 1970, then a clock id)."""
    if len(key) != 13 or any(char not in _TID_ALPHABET for char in key):
        return None
    value = 0
    for char in key:
        value = value * 32 + _TID_ALPHABET.index(char)
    try:
        return datetime.fromtimestamp((value >> 10) / 1_000_000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


BLUESKY = BlueskyPlatform()
