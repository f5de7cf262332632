"""What we ask X for: the one definition of the fields and expansions of every request path.

X sends only what a request names: without `tweet.fields` a post is `id`, `text` and
`edit_history_tweet_ids`; without `user.fields` a user is `id`, `name` and `username`; objects
referred to (authors, quoted posts, media, polls, places) arrive in `includes` only for the
`expansions` asked for. A field left out here is lost from the archive without any error (a post
longer than 280 characters keeps its full text and links only in `note_tweet`), so the lists hold
every field X documents for its objects, and timelines, lookups and streams all take their
parameters from here. Left out on purpose: fields that only an OAuth user-context token may read
(`non_public_metrics`, `organic_metrics`, `promoted_metrics`) or that describe the relation of a
user to the token's own account (`connection_status`, `receives_your_dm`, `subscription`); a
bearer token (app-only) cannot have them.
"""

from __future__ import annotations

TWEET_FIELDS = (
    "article", "attachments", "author_id", "card_uri", "community_id", "context_annotations", "conversation_id",
    "created_at", "display_text_range", "edit_controls", "edit_history_tweet_ids", "entities", "geo", "id",
    "in_reply_to_user_id", "lang", "media_metadata", "note_tweet", "possibly_sensitive", "public_metrics",
    "referenced_tweets", "reply_settings", "scopes", "source", "text", "withheld",
)
USER_FIELDS = (
    "affiliation", "created_at", "description", "entities", "id", "is_identity_verified", "location",
    "most_recent_tweet_id", "name", "parody", "pinned_tweet_id", "profile_banner_url", "profile_image_url",
    "protected", "public_metrics", "subscription_type", "url", "username", "verified", "verified_followers_count",
    "verified_type", "withheld",
)
EXPANSIONS = (
    "article.cover_media", "article.media_entities", "attachments.media_keys", "attachments.media_source_tweet",
    "attachments.poll_ids", "author_id", "edit_history_tweet_ids", "entities.mentions.username",
    "entities.note.mentions.username", "geo.place_id", "in_reply_to_user_id", "referenced_tweets.id",
    "referenced_tweets.id.attachments.media_keys", "referenced_tweets.id.author_id",
)
MEDIA_FIELDS = (
    "alt_text", "duration_ms", "height", "media_key", "preview_image_url", "public_metrics", "type", "url",
    "variants", "width",
)
PLACE_FIELDS = ("contained_within", "country", "country_code", "full_name", "geo", "id", "name", "place_type")
POLL_FIELDS = ("duration_minutes", "end_datetime", "id", "options", "voting_status")


def post_params() -> dict[str, str]:
    """Query parameters of every request that returns posts (user timelines, streams)."""
    return {
        "expansions": ",".join(EXPANSIONS),
        "tweet.fields": ",".join(TWEET_FIELDS),
        "user.fields": ",".join(USER_FIELDS),
        "media.fields": ",".join(MEDIA_FIELDS),
        "place.fields": ",".join(PLACE_FIELDS),
        "poll.fields": ",".join(POLL_FIELDS),
    }


def lookup_params() -> dict[str, str]:
    """Query parameters of the user lookups (users by id or username): the whole user object."""
    return {"user.fields": ",".join(USER_FIELDS)}


def tweepy_arguments(params: dict[str, str]) -> dict[str, str]:
    """The same parameters as tweepy's Client takes them (`tweet.fields` -> `tweet_fields`)."""
    return {name.replace(".", "_"): value for name, value in params.items()}
