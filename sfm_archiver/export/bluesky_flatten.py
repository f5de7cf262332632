"""From a raw Bluesky capture line to posts and rows of `BLUESKY_COLUMNS`.

Two kinds of line carry posts: an author-feed page (`app.bsky.feed.getAuthorFeed`'s answer:
`feed`, a list of FeedViewPost items, each `post` a PostView) and a Jetstream event (one commit;
only `create` of an `app.bsky.feed.post` record is a post). A repost in a feed is the reposted
post, as the feed shows it, with `repost.by` naming the reposting account; its dedupe key is the
post's URI plus the reposter, so the repost and the post itself stay two rows (a pin is the post).

The raw line is never changed; fields this table does not know are reported, never an error.
"""

from __future__ import annotations

from typing import Any, Iterator

from sfm_archiver.platforms.bluesky_jetstream import created_post_uri
from sfm_archiver.platforms.bluesky_platform import BLUESKY, MENTION, TAG, facet_features

REPOST = "app.bsky.feed.defs#reasonRepost"

# The lexicon fields this version knows (held in a column, or known and left to the raw capture
# and the jsonl format: avatars, labels, viewer state, embed views). Anything else is reported.
_PROFILE = {"did", "handle", "displayName", "avatar", "labels", "createdAt", "associated", "viewer", "verification",
            "status", "pronouns", "$type"}
_RECORD = {"$type", "text", "createdAt", "langs", "facets", "embed", "reply", "tags", "labels", "entities"}
KNOWN_FEED_ITEM: dict[str, Any] = {
    "post": {"$type": None, "uri": None, "cid": None, "author": _PROFILE, "record": _RECORD, "embed": None,
             "replyCount": None, "repostCount": None, "likeCount": None, "quoteCount": None, "bookmarkCount": None,
             "indexedAt": None, "labels": None, "viewer": None, "threadgate": None},
    "reply": None, "reason": None, "feedContext": None, "reqId": None,
}
KNOWN_EVENT: dict[str, Any] = {
    "did": None, "time_us": None, "kind": None,
    "commit": {"rev": None, "operation": None, "collection": None, "rkey": None, "cid": None, "record": _RECORD},
}


def line_posts(record: dict) -> Iterator[tuple[int, dict]]:
    """(slot, item) of a line's posts: feed items with a post URI, or the line itself when it is
    a Jetstream post creation."""
    feed = record.get("feed")
    if isinstance(feed, list):
        for slot, item in enumerate(feed):
            if isinstance(item, dict) and isinstance(_dict(item.get("post")).get("uri"), str):
                yield slot, item
    elif created_post_uri(record) is not None:
        yield 0, record


def is_event(item: dict) -> bool:
    return "commit" in item and "post" not in item


def post_uri(item: dict) -> str:
    """The post's at:// URI (a Jetstream event's is made of its DID, collection and rkey)."""
    if is_event(item):
        return created_post_uri(item) or ""  # line_posts yields only the events that create a post
    return item["post"]["uri"]


def dedupe_key(item: dict) -> str:
    """The post's URI; a repost's, with the reposter (a repost is not the post)."""
    reposter = _reposter(item)
    uri = post_uri(item)
    return f"{uri} repost:{reposter.get('did')}" if reposter else uri


def created_at(item: dict) -> Any:
    return _record(item).get("createdAt")


def author(item: dict) -> tuple[Any, Any]:
    """(DID, handle) of the post's author."""
    if is_event(item):
        return item.get("did"), None
    profile = _dict(item["post"].get("author"))
    return profile.get("did"), profile.get("handle")


def account(item: dict) -> tuple[Any, Any]:
    """(DID, handle) of the account whose feed holds the item: the reposter of a repost."""
    reposter = _reposter(item)
    return (reposter.get("did"), reposter.get("handle")) if reposter else author(item)


def links(item: dict) -> list[str]:
    """The URIs of the text's link facets, then that of an external embed, each once (as
    fetch-urls finds them: `Platform.post_links`)."""
    return list(BLUESKY.post_links({"record": _record(item)}))


def values(item: dict, meta: dict, kind: str, collection: str, finals: list[str] | None) -> tuple:
    """One row: the values of BLUESKY_COLUMNS in their order (missing values are None)."""
    record = _record(item)
    event = is_event(item)
    post = {} if event else item["post"]
    profile = _dict(post.get("author"))
    reply = _dict(record.get("reply"))
    reposter = _reposter(item)
    tags = [feature.get("tag") for feature in facet_features(record, TAG)]
    tags += record["tags"] if isinstance(record.get("tags"), list) else []
    commit = _dict(item.get("commit"))
    return (
        post_uri(item),                                                 # uri
        commit.get("cid") if event else post.get("cid"),                # cid
        item.get("did") if event else profile.get("did"),               # did
        profile.get("handle"),                                          # handle
        profile.get("displayName"),                                     # display_name
        record.get("createdAt"),                                        # created_at
        post.get("indexedAt"),                                          # indexed_at
        record.get("text"),                                             # text
        record.get("langs"),                                            # langs
        post.get("replyCount"),                                         # reply_count
        post.get("repostCount"),                                        # repost_count
        post.get("likeCount"),                                          # like_count
        post.get("quoteCount"),                                         # quote_count
        links(item) or None,                                            # links
        [feature.get("did") for feature in facet_features(record, MENTION)] or None,  # mentions
        [tag for tag in tags if isinstance(tag, str)] or None,          # tags
        _dict(reply.get("parent")).get("uri"),                          # reply.parent
        _dict(reply.get("root")).get("uri"),                            # reply.root
        quoted_uri(record),                                             # quote.uri
        reposter.get("did"),                                            # repost.by
        reposter.get("handle"),                                         # repost.by_handle
        item.get("time_us") if event else None,                         # time_us
        finals,                                                         # urls.final
        meta.get("captured_at"),                                        # captured_at
        collection,                                                     # collection
        kind,                                                           # kind
    )


def quoted_uri(record: dict) -> Any:
    """The URI of a record embed (a quote), also inside a record-with-media embed."""
    embed = _dict(record.get("embed"))
    if embed.get("$type") == "app.bsky.embed.record":
        return _dict(embed.get("record")).get("uri")
    if embed.get("$type") == "app.bsky.embed.recordWithMedia":
        return _dict(_dict(embed.get("record")).get("record")).get("uri")
    return None


def nested(item: dict, meta: dict) -> dict:
    """The item as captured (a feed item, or a Jetstream event) plus its capture's `__sfm`."""
    return {**item, "__sfm": meta}


def unknown_fields(item: dict) -> list[str]:
    found: list[str] = []
    _unknown(item, KNOWN_EVENT if is_event(item) else KNOWN_FEED_ITEM, "", found)
    return sorted(found)


def extra_fields(item: dict) -> dict | None:
    paths = unknown_fields(item)
    if not paths:
        return None
    extra = {}
    for path in paths:
        holder: Any = item
        for part in path.split("."):
            holder = holder.get(part) if isinstance(holder, dict) else None
        extra[path] = holder
    return extra


def _unknown(obj: dict, known: Any, prefix: str, found: list[str]) -> None:
    for key, value in obj.items():
        if key not in known:
            found.append(prefix + key)
            continue
        inner = known[key] if isinstance(known, dict) else None
        if inner is not None and isinstance(value, dict):
            _unknown(value, inner, f"{prefix}{key}.", found)


def _record(item: dict) -> dict:
    holder = item.get("commit") if is_event(item) else item.get("post")
    return _dict(_dict(holder).get("record"))


def _reposter(item: dict) -> dict:
    reason = _dict(item.get("reason"))
    return _dict(reason.get("by")) if reason.get("$type") == REPOST else {}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}
