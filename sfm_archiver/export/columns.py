"""The export's columns: one stable, documented table (names as in twarc-csv where they overlap).

Each column has a type that the typed formats honour (Parquet) and the text formats render:
`id` (a string of digits: ids are never numbers, so 19-digit ids survive spreadsheets), `str`,
`int`, `bool`, `time` (RFC 3339 UTC), `json` (a list or object as compact JSON text).
The export's README and docs/export.md list this table; `--columns` picks from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from sfm_archiver.errors import UsageError


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    prose: bool = False  # text people type: commas, quotes, line breaks and a leading @ are common


COLUMNS: tuple[Column, ...] = (
    Column("id", "id", "the post id"),
    Column("conversation_id", "id", "id of the post that started the conversation"),
    Column("referenced_tweets.replied_to.id", "id", "the post this one replies to"),
    Column("referenced_tweets.retweeted.id", "id", "the post this one reposts"),
    Column("referenced_tweets.quoted.id", "id", "the post this one quotes"),
    Column("author_id", "id", "the author's account id"),
    Column("in_reply_to_user_id", "id", "the account replied to"),
    Column("in_reply_to_username", "str", "its username (from includes)"),
    Column("retweeted_user_id", "id", "author of the reposted post (from includes)"),
    Column("retweeted_username", "str", "its username"),
    Column("quoted_user_id", "id", "author of the quoted post (from includes)"),
    Column("quoted_username", "str", "its username"),
    Column("created_at", "time", "posting time, UTC"),
    Column("text", "str", "the full text: a long post's `note_tweet.text`, else `text`", prose=True),
    Column("lang", "str", "language X detected"),
    Column("source", "str", "the posting client, where X still sends it"),
    Column("public_metrics.impression_count", "int", "views, as of capture time"),
    Column("public_metrics.reply_count", "int", "replies, as of capture time"),
    Column("public_metrics.retweet_count", "int", "reposts, as of capture time"),
    Column("public_metrics.quote_count", "int", "quotes, as of capture time"),
    Column("public_metrics.like_count", "int", "likes, as of capture time"),
    Column("public_metrics.bookmark_count", "int", "bookmarks, as of capture time"),
    Column("reply_settings", "str", "who may reply"),
    Column("possibly_sensitive", "bool", "X's sensitive-media flag"),
    Column("edit_history_tweet_ids", "json", "ids of the post's versions"),
    Column("edit_controls.edits_remaining", "int", "edits left, as of capture time"),
    Column("edit_controls.editable_until", "time", "end of the edit window"),
    Column("edit_controls.is_edit_eligible", "bool", "whether the post could be edited"),
    Column("entities.hashtags", "json", "hashtags (of the full text for long posts)"),
    Column("entities.cashtags", "json", "cashtags"),
    Column("entities.mentions", "json", "mentioned accounts"),
    Column("entities.urls", "json", "links with their t.co, expanded and display forms"),
    Column("entities.annotations", "json", "named entities X found"),
    Column("context_annotations", "json", "X's topic annotations"),
    Column("attachments.media_keys", "json", "keys of attached media"),
    Column("attachments.media", "json", "the attached media objects (from includes)"),
    Column("attachments.poll_ids", "json", "ids of attached polls"),
    Column("geo.place_id", "str", "tagged place"),
    Column("geo.full_name", "str", "its name (from includes)", prose=True),
    Column("withheld.country_codes", "json", "countries where the post is withheld"),
    Column("author.id", "id", "the author's id (from includes)"),
    Column("author.username", "str", "the author's username at capture time"),
    Column("author.name", "str", "the author's display name at capture time", prose=True),
    Column("author.created_at", "time", "when the account was created"),
    Column("author.description", "str", "profile text at capture time", prose=True),
    Column("author.location", "str", "profile location at capture time", prose=True),
    Column("author.url", "str", "profile link"),
    Column("author.profile_image_url", "str", "profile picture"),
    Column("author.verified", "bool", "verified flag at capture time"),
    Column("author.verified_type", "str", "kind of verification"),
    Column("author.protected", "bool", "protected flag at capture time"),
    Column("author.public_metrics.followers_count", "int", "followers, as of capture time"),
    Column("author.public_metrics.following_count", "int", "accounts followed, as of capture time"),
    Column("author.public_metrics.tweet_count", "int", "posts, as of capture time"),
    Column("author.public_metrics.listed_count", "int", "lists, as of capture time"),
    Column("author.public_metrics.like_count", "int", "likes given, as of capture time"),
    Column("matching_rules", "json", "stream rules the post matched (id and tag)"),
    Column("urls.final", "json", "where each link finally led (from fetch-urls captures)"),
    Column("captured_at", "time", "when sfm-archiver captured it (__sfm.captured_at)"),
    Column("collection", "str", "the collection that captured it"),
    Column("kind", "str", "timeline or stream"),
    Column("row_type", "str", "post, or referenced (a post added by --include-referenced)"),
)

# Bluesky posts (an author feed's items, Jetstream's post creations): their own table, named
# after the AT Protocol's fields; the capture columns at the end are the same as X's.
BLUESKY_COLUMNS: tuple[Column, ...] = (
    Column("uri", "str", "the post's at:// URI (at://<author DID>/app.bsky.feed.post/<rkey>)"),
    Column("cid", "str", "content id of the post's record version"),
    Column("did", "str", "the author's DID"),
    Column("handle", "str", "the author's handle at capture time (none in Jetstream events)"),
    Column("display_name", "str", "the author's display name at capture time", prose=True),
    Column("created_at", "time", "record.createdAt: the posting time the author's app wrote"),
    Column("indexed_at", "time", "when the AppView indexed the post (none in Jetstream events)"),
    Column("text", "str", "record.text", prose=True),
    Column("langs", "json", "record.langs: the languages the author's app declared"),
    Column("reply_count", "int", "replies, as of capture time"),
    Column("repost_count", "int", "reposts, as of capture time"),
    Column("like_count", "int", "likes, as of capture time"),
    Column("quote_count", "int", "quotes, as of capture time"),
    Column("links", "json", "the URIs of the text's link facets, then the external embed's URI"),
    Column("mentions", "json", "DIDs of the text's mention facets"),
    Column("tags", "json", "hashtags: the text's tag facets, then record.tags"),
    Column("reply.parent", "str", "URI of the post this one replies to"),
    Column("reply.root", "str", "URI of the post that started the thread"),
    Column("quote.uri", "str", "URI of the post this one quotes (a record embed)"),
    Column("repost.by", "str", "DID of the account whose repost put this post in its feed (else empty)"),
    Column("repost.by_handle", "str", "that account's handle at capture time"),
    Column("time_us", "int", "Jetstream's event time, microseconds since 1970 (stream rows)"),
    Column("urls.final", "json", "where each link finally led (from fetch-urls captures)"),
    Column("captured_at", "time", "when sfm-archiver captured it (__sfm.captured_at)"),
    Column("collection", "str", "the collection that captured it"),
    Column("kind", "str", "timeline or stream"),
)

EXTRA = Column("extra", "json", "fields outside the columns above, as JSON (only with --columns all)")
TABLES: dict[str, tuple[Column, ...]] = {"x": COLUMNS, "bluesky": BLUESKY_COLUMNS}  # by `__sfm.platform`
BY_NAME = {column.name: column for column in COLUMNS + (EXTRA,)}


def select_columns(spec: str | None, platform: str = "x") -> tuple[Column, ...]:
    """`None` = the platform's standard set; `all` = it plus `extra`; else a comma-separated list of names."""
    table = TABLES[platform]
    if not spec:
        return table
    if spec.strip() == "all":
        return table + (EXTRA,)
    by_name = {column.name: column for column in table + (EXTRA,)}
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_name]
    if unknown:
        where = "" if platform == "x" else f" of {platform} posts"
        raise UsageError(f"--columns: unknown column(s){where} {', '.join(unknown)} (see README.txt of any export or docs/export.md)")
    if not names:
        raise UsageError("--columns: no column named")
    return tuple(by_name[name] for name in dict.fromkeys(names))


def check_column_names(spec: str | None) -> None:
    """Before the captures' platform is known: `--columns` names only columns some table holds."""
    if not spec or spec.strip() == "all":
        return
    known = {column.name for table in TABLES.values() for column in table + (EXTRA,)}
    names = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UsageError(f"--columns: unknown column(s) {', '.join(unknown)} (see README.txt of any export or docs/export.md)")
    if not names:
        raise UsageError("--columns: no column named")


def column_picker(columns: tuple[Column, ...], platform: str = "x") -> Callable[[tuple], Sequence]:
    """From the values of the platform's table (then `extra`, when asked for) to those of `columns`, in their order."""
    table = TABLES[platform]
    every = table + (EXTRA,)
    if columns in (table, every):
        return lambda values: values
    places = tuple(every.index(column) for column in columns)
    return lambda values: [values[place] for place in places]
