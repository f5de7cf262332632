"""Every capture path asks X for every field its objects document, as seen on the wire.

X sends only what a request names, so a field missing from a request is missing from the
archive without any error. The expected lists below are written from X's documentation, not
from the code: the Post and User objects of the X API v2 data dictionary
(https://docs.x.com/x-api/fundamentals/data-dictionary, and the `tweet.fields`, `user.fields`,
`expansions`, `media.fields`, `place.fields` and `poll.fields` enums of the API reference of
GET /2/users/:id/tweets, GET /2/users, GET /2/users/by and GET /2/tweets/search/stream).
Not expected, as the documentation reserves them to OAuth user-context tokens (we use a bearer
token): `non_public_metrics`, `organic_metrics`, `promoted_metrics` (posts and media), and the
relation of a user to the caller (`connection_status`, `receives_your_dm`, `subscription`).
What each path asked for is read from the simulator's record of the requests it received.
"""

from __future__ import annotations

from sfm_archiver.jobs.accounts import update_usernames
from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.platforms.x_stream import BackoffPolicy
from sfm_archiver.streams.supervisor import StreamSupervisor
from tests.streams.conftest import make_context
from tests.timelines.helpers import COLLECTION, TOKEN, context, fast_client, wait_for, write_config

DOCUMENTED = {
    "tweet.fields": {
        "article", "attachments", "author_id", "card_uri", "community_id", "context_annotations",
        "conversation_id", "created_at", "display_text_range", "edit_controls", "edit_history_tweet_ids",
        "entities", "geo", "id", "in_reply_to_user_id", "lang", "media_metadata", "note_tweet",
        "possibly_sensitive", "public_metrics", "referenced_tweets", "reply_settings", "scopes", "source",
        "text", "withheld",
    },
    "user.fields": {
        "affiliation", "created_at", "description", "entities", "id", "is_identity_verified", "location",
        "most_recent_tweet_id", "name", "parody", "pinned_tweet_id", "profile_banner_url", "profile_image_url",
        "protected", "public_metrics", "subscription_type", "url", "username", "verified",
        "verified_followers_count", "verified_type", "withheld",
    },
    "expansions": {
        "article.cover_media", "article.media_entities", "attachments.media_keys",
        "attachments.media_source_tweet", "attachments.poll_ids", "author_id", "edit_history_tweet_ids",
        "entities.mentions.username", "entities.note.mentions.username", "geo.place_id", "in_reply_to_user_id",
        "referenced_tweets.id", "referenced_tweets.id.attachments.media_keys", "referenced_tweets.id.author_id",
    },
    "media.fields": {
        "alt_text", "duration_ms", "height", "media_key", "preview_image_url", "public_metrics", "type", "url",
        "variants", "width",
    },
    "place.fields": {"contained_within", "country", "country_code", "full_name", "geo", "id", "name", "place_type"},
    "poll.fields": {"duration_minutes", "end_datetime", "id", "options", "voting_status"},
}
POST_PARAMETERS = tuple(DOCUMENTED)  # a request that returns posts returns all these objects
FAST = BackoffPolicy(network_step=0.02, network_max=0.2, http_start=0.2, http_max=1.0, too_many_start=0.2,
                     too_many_max=1.0)


def missing(queries: list[dict], parameters: tuple[str, ...]) -> dict[str, set[str]]:
    """For each parameter, the documented values that some request of the path did not ask for."""
    assert queries, "the path sent no request"
    gaps: dict[str, set[str]] = {}
    for entry in queries:
        for parameter in parameters:
            asked = set(entry["query"].get(parameter, "").split(","))
            if DOCUMENTED[parameter] - asked:
                gaps.setdefault(parameter, set()).update(DOCUMENTED[parameter] - asked)
    return gaps


def test_timeline_pages_ask_for_every_documented_field(tmp_path, make_simulator, wire_style):
    sim = make_simulator(wire=wire_style, tokens=[TOKEN], accounts=[{"id": "801", "username": "asker", "tweets": 150}])
    config = write_config(tmp_path, sim.base_url, ["asker"])
    ctx = context(config)
    record = harvest_timelines(ctx, COLLECTION, client=fast_client(ctx.config))
    assert record["result"] == "ok" and record["counts"]["pages"] >= 2
    assert missing(sim.queries("user_tweets"), POST_PARAMETERS) == {}


def test_user_lookups_ask_for_every_documented_user_field(tmp_path, make_simulator, wire_style):
    sim = make_simulator(wire=wire_style, tokens=[TOKEN],
                         accounts=[{"id": "811", "username": "by_name"}, {"id": "812", "username": "by_id"}])
    config = write_config(tmp_path, sim.base_url, ["by_name", {"id": "812"}])
    ctx = context(config)
    record = update_usernames(ctx, COLLECTION, client=fast_client(ctx.config))
    assert record["result"] == "ok", record
    lookups = sim.queries("users_by") + sim.queries("users")
    assert {entry["endpoint"] for entry in lookups} == {"users_by", "users"}
    assert missing(lookups, ("user.fields",)) == {}


def test_stream_connections_ask_for_every_documented_field(tmp_path, make_simulator, wire_style):
    sim = make_simulator(wire=wire_style, streams={"messages_per_second": 50, "keepalive_seconds": 0.1})
    ctx = make_context(tmp_path, sim.base_url, [
        {"name": "filtered", "type": "filter_stream", "rules": [{"value": "archives"}]},
        {"name": "sampled", "type": "sample_stream"},
    ])
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        wait_for(lambda: sim.queries("search_stream") and sim.queries("sample_stream"), what="both streams connected")
    finally:
        supervisor.stop()
    assert missing(sim.queries("search_stream") + sim.queries("sample_stream"), POST_PARAMETERS) == {}
