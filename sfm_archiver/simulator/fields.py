"""Fields and expansions as X honours them: a request gets what it names, and nothing more.

Without `tweet.fields` a post is `id`, `text` and `edit_history_tweet_ids`; without `user.fields`
a user is `id`, `name` and `username` (tweets.py renders those defaults plus the fields asked
for); `includes` holds only the objects of the `expansions` asked for. Values X does not know
are refused with HTTP 400, as X does. REST pages and stream messages both go through here, so a
client that forgets a field sees it missing on every path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from sfm_archiver.simulator import params
from sfm_archiver.simulator.params import Query
from sfm_archiver.simulator.tweets import ALL_TWEET_FIELDS, ALL_USER_FIELDS, REPLY, RETWEET, TweetFactory, UserView

TWEET_EXPANSIONS = ("article.cover_media", "article.media_entities", "attachments.media_keys",
                    "attachments.media_source_tweet", "attachments.poll_ids", "author_id",
                    "edit_history_tweet_ids", "entities.mentions.username", "geo.place_id",
                    "in_reply_to_user_id", "entities.note.mentions.username", "referenced_tweets.id",
                    "referenced_tweets.id.attachments.media_keys", "referenced_tweets.id.author_id")
USER_EXPANSIONS = ("affiliation.user_id", "most_recent_tweet_id", "pinned_tweet_id")
ALL_MEDIA_FIELDS = ("alt_text", "duration_ms", "height", "media_key", "non_public_metrics", "organic_metrics",
                    "preview_image_url", "promoted_metrics", "public_metrics", "type", "url", "variants", "width")
ALL_PLACE_FIELDS = ("contained_within", "country", "country_code", "full_name", "geo", "id", "name", "place_type")
ALL_POLL_FIELDS = ("duration_minutes", "end_datetime", "id", "options", "voting_status")
OBJECT_FIELDS = (("media.fields", ALL_MEDIA_FIELDS), ("place.fields", ALL_PLACE_FIELDS),
                 ("poll.fields", ALL_POLL_FIELDS))


@dataclass(frozen=True)
class Requested:
    """The post fields, user fields and expansions one request asked for (validated)."""

    tweet: frozenset[str] = frozenset()
    user: frozenset[str] = frozenset()
    expansions: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, query: Query, expansions: Iterable[str] = TWEET_EXPANSIONS) -> Requested:
        """Raises params.InvalidRequest (HTTP 400) for a value X does not know."""
        for name, allowed in OBJECT_FIELDS:  # media, places and polls: checked, none rendered
            params.csv(query, name, allowed)
        return cls(frozenset(params.csv(query, "tweet.fields", ALL_TWEET_FIELDS)),
                   frozenset(params.csv(query, "user.fields", ALL_USER_FIELDS)),
                   frozenset(params.csv(query, "expansions", expansions)))


@dataclass(frozen=True)
class Post:
    """A post as `includes` needs it: its id, kind and author."""

    id: int
    kind: int
    author: UserView


def includes(factory: TweetFactory, posts: Iterable[Post], requested: Requested, base_url: str) -> dict[str, Any]:
    """The `includes` of a page or message of `posts`: only the expansions asked for, each object once."""
    wanted = requested.expansions
    users: dict[str, dict[str, Any]] = {}
    referenced: dict[int, dict[str, Any]] = {}
    for post in posts:
        if "author_id" in wanted and post.author.id not in users:
            users[post.author.id] = factory.user(post.author, requested.user, base_url)
        reference = factory.reference_of(post.id, post.kind)
        if reference is None:
            continue
        ref_id, ref_author = reference
        if "referenced_tweets.id" in wanted and ref_id not in referenced:
            referenced[ref_id] = factory.external_tweet(ref_id, requested.tweet, base_url)
        wants_author = ("referenced_tweets.id.author_id" in wanted
                        or ("in_reply_to_user_id" in wanted and post.kind == REPLY)
                        or ("entities.mentions.username" in wanted and post.kind in (REPLY, RETWEET)))
        if wants_author and str(ref_author) not in users:
            users[str(ref_author)] = factory.user(factory.external_user(ref_author), requested.user, base_url)
    found: dict[str, Any] = {}
    if users:
        found["users"] = list(users.values())
    if referenced:
        found["tweets"] = list(referenced.values())
    return found
