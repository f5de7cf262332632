"""Deterministic tweets and users: the same seed and id always give the same bytes.

Ids are snowflake-like: milliseconds since the Twitter epoch in the high bits, so they grow
with `created_at`; the low 22 bits keep them unique across sources (an account's slot, the
stream generator, or the authors that posts refer to). Content is a pure function of
(seed, id), so nothing but ids and kinds has to be stored.
"""

from __future__ import annotations

import random
import string
import time
from dataclasses import dataclass
from typing import AbstractSet as Set
from typing import Any, Mapping

from sfm_archiver.simulator.scenario import LinkSpec

TWITTER_EPOCH_MS = 1288834974657
ACCOUNT_SLOTS = 1 << 21
STREAM_LOW = 1 << 21
EXTERNAL_LOW = (1 << 21) | (1 << 20)
EXTERNAL_USER_BASE = 9_000_000_000

ORIGINAL, REPLY, RETWEET, QUOTE = 0, 1, 2, 3
KIND_NAMES = {ORIGINAL: "tweet", REPLY: "reply", RETWEET: "retweet", QUOTE: "quote"}
REFERENCE_TYPES = {REPLY: "replied_to", RETWEET: "retweeted", QUOTE: "quoted"}

_WORDS = ("library", "archive", "collection", "reading", "catalogue", "exhibit", "history", "records",
          "digital", "preservation", "manuscript", "open", "today", "new", "community", "research",
          "maps", "photographs", "letters", "oral", "project", "volunteers", "event", "talk", "books",
          "local", "heritage", "access", "data", "story", "week", "curator", "found", "rare", "public",
          "free", "join", "us", "for", "the", "a", "of", "and", "in", "our", "with", "about", "from")
_TAGS = ("archives", "libraries", "history", "openaccess", "heritage", "digipres", "glam")
_LANGS = ("en", "en", "en", "en", "fr", "de", "es", "nl")
_DOMAIN = {"id": "46", "name": "Business Taxonomy",
           "description": "Categories within Brand Verticals that narrow down the scope of Brands"}


def make_id(ms: int, low: int) -> int:
    return ((ms - TWITTER_EPOCH_MS) << 22) | low


def id_ms(tweet_id: int) -> int:
    return (tweet_id >> 22) + TWITTER_EPOCH_MS


def format_ms(ms: int) -> str:
    """RFC 3339 with milliseconds, as X writes `created_at`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def kind_for(rng: random.Random) -> int:
    draw = rng.random()
    return REPLY if draw < 0.15 else RETWEET if draw < 0.25 else QUOTE if draw < 0.30 else ORIGINAL


@dataclass(frozen=True)
class UserView:
    """What rendering a user needs; accounts and referenced authors both produce one."""

    id: str
    username: str
    name: str
    created_ms: int
    description: str = ""
    location: str = ""
    protected: bool = False
    verified: bool = False
    tweet_count: int = 0
    pinned_tweet_id: str | None = None


TEXT_LIMIT = 280  # characters of a post's `text`; a longer post keeps the rest in `note_tweet`
LONG_TEXT_MIN = 320  # a long post's full text is at least this long, and ends with a link


class TweetFactory:
    """Renders tweet and user objects; links point at the simulator's shortener.

    A share `long_posts` of the posts are longer than 280 characters: as on X, their `text` is
    the start of the post and their full text and entities are in `note_tweet`, which is sent
    only when `tweet.fields` names it (so a client that forgets it loses the end of the post and
    its last link, which always lies past the cut).
    """

    def __init__(self, seed: int, links: LinkSpec, long_posts: float = 0.0):
        self.seed = seed
        self.links = links
        self.long_posts = long_posts
        behaviours = [(name, weight) for name, weight in links.mix.items() if weight > 0]
        self._behaviours = [name for name, _ in behaviours] or ["chain"]
        self._weights = [weight for _, weight in behaviours] or [1.0]

    def rng(self, *key: int) -> random.Random:
        value = self.seed
        for part in key:
            value = (value * 1_000_003) ^ part
        return random.Random(value)

    def kind_of(self, tweet_id: int) -> int:
        return kind_for(self.rng(tweet_id, 1))

    # users -----------------------------------------------------------------------------------

    def external_user(self, user_id: int) -> UserView:
        number = user_id - EXTERNAL_USER_BASE
        rng = self.rng(user_id, 2)
        return UserView(str(user_id), f"reader_{number}", f"Reader {number}",
                        created_ms=1262304000000 + rng.randrange(400_000_000_000),
                        description=self.sentence(rng, 8), location=rng.choice(("", "Paris", "Leeds", "Ohio")),
                        tweet_count=rng.randrange(10, 20_000))

    def user(self, view: UserView, fields: Set[str], base_url: str) -> dict[str, Any]:
        rng = self.rng(int(view.id), 3)
        metrics = {"followers_count": rng.randrange(20, 90_000), "following_count": rng.randrange(5, 3000),
                   "tweet_count": view.tweet_count, "listed_count": rng.randrange(0, 400),
                   "like_count": rng.randrange(0, 9000)}
        optional = {
            "created_at": format_ms(view.created_ms), "description": view.description,
            "location": view.location, "protected": view.protected, "public_metrics": metrics,
            "verified": view.verified, "url": "",
            "profile_image_url": f"{base_url}/media/profile/{view.id}_normal.jpg",
            "pinned_tweet_id": view.pinned_tweet_id, "verified_type": "none",
        }
        user: dict[str, Any] = {"id": view.id, "name": view.name, "username": view.username}
        for name in sorted(fields & optional.keys()):
            if optional[name] is not None and not (name == "location" and not view.location):
                user[name] = optional[name]
        return user

    # tweets ----------------------------------------------------------------------------------

    def reference_of(self, tweet_id: int, kind: int) -> tuple[int, int] | None:
        """(referenced tweet id, its author id) for replies, retweets and quotes."""
        if kind == ORIGINAL:
            return None
        rng = self.rng(tweet_id, 4)
        ms = id_ms(tweet_id) - rng.randrange(60_000, 86_400_000)
        ref_id = make_id(ms, EXTERNAL_LOW | rng.randrange(1 << 20))
        return ref_id, self.external_author(ref_id)

    def external_author(self, tweet_id: int) -> int:
        return EXTERNAL_USER_BASE + self.rng(tweet_id, 5).randrange(10_000)

    def tweet(self, tweet_id: int, author_id: str, kind: int, fields: Set[str], base_url: str) -> dict[str, Any]:
        """One tweet object with the default fields plus the requested `tweet.fields`."""
        rng = self.rng(tweet_id, 6)
        reference = self.reference_of(tweet_id, kind)
        mention = self.external_user(reference[1]).username if reference and kind != QUOTE else None
        text, entities = self.compose(rng, tweet_id, kind, mention, reference, base_url)
        note = None
        if self.is_long(tweet_id):
            note = self.lengthen(tweet_id, text, entities, base_url)
            text, entities = cut_text(note["text"], note["entities"])
        created_ms = id_ms(tweet_id)
        optional: dict[str, Any] = {
            "author_id": author_id,
            "conversation_id": str(reference[0] if kind == REPLY and reference else tweet_id),
            "created_at": format_ms(created_ms),
            "lang": rng.choice(_LANGS),
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "edit_controls": {"edits_remaining": 5, "is_edit_eligible": kind != RETWEET,
                              "editable_until": format_ms(created_ms + 3_600_000)},
            "public_metrics": {"retweet_count": rng.randrange(0, 50), "reply_count": rng.randrange(0, 20),
                               "like_count": rng.randrange(0, 300), "quote_count": rng.randrange(0, 5),
                               "bookmark_count": rng.randrange(0, 10), "impression_count": rng.randrange(0, 20_000)},
            "entities": entities or None,
            "in_reply_to_user_id": str(reference[1]) if kind == REPLY and reference else None,
            "referenced_tweets": ([{"type": REFERENCE_TYPES[kind], "id": str(reference[0])}]
                                  if reference else None),
            "note_tweet": note,
        }
        tweet: dict[str, Any] = {"edit_history_tweet_ids": [str(tweet_id)], "id": str(tweet_id), "text": text}
        for name in sorted(fields & optional.keys()):
            if optional[name] is not None:
                tweet[name] = optional[name]
        return tweet

    def external_tweet(self, tweet_id: int, fields: Set[str], base_url: str) -> dict[str, Any]:
        return self.tweet(tweet_id, str(self.external_author(tweet_id)), ORIGINAL, fields, base_url)

    def compose(self, rng: random.Random, tweet_id: int, kind: int, mention: str | None,
                reference: tuple[int, int] | None, base_url: str) -> tuple[str, dict[str, Any]]:
        """Text and its entities, offsets counted in characters as X does."""
        text = ""
        entities: dict[str, Any] = {}
        if mention:
            prefix = "RT @" if kind == RETWEET else "@"
            start = len(prefix) - 1
            text = f"{prefix}{mention}{':' if kind == RETWEET else ''} "
            entities["mentions"] = [{"start": start, "end": start + 1 + len(mention), "username": mention,
                                     "id": str(reference[1] if reference else 0)}]
        text += self.sentence(rng, rng.randrange(6, 18))
        if rng.random() < 0.3:
            tag = rng.choice(_TAGS)
            start = len(text) + 1
            text += f" #{tag}"
            entities["hashtags"] = [{"start": start, "end": start + 1 + len(tag), "tag": tag}]
        urls = []
        for number in range(2 if rng.random() < 0.1 else 1):
            if rng.random() >= self.links.probability:
                break
            text, url = self.add_link(rng, text, tweet_id, number, base_url)
            urls.append(url)
        if urls:
            entities["urls"] = urls
        return text, entities

    def add_link(self, rng: random.Random, text: str, tweet_id: int, number: int, base_url: str) -> tuple[str, dict]:
        """`text` with a t.co link appended, and its URL entity (to a shortener path)."""
        expanded = f"{base_url}/s/{self.link_path(rng, tweet_id, number)}"
        short = "https://t.co/" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(10))
        start = len(text) + 1
        display = expanded.split("://", 1)[1]
        return text + f" {short}", {"start": start, "end": start + len(short), "url": short, "expanded_url": expanded,
                                    "display_url": display if len(display) <= 26 else display[:25] + "\u2026"}

    def is_long(self, tweet_id: int) -> bool:
        return self.long_posts > 0 and self.rng(tweet_id, 9).random() < self.long_posts

    def lengthen(self, tweet_id: int, text: str, entities: dict[str, Any], base_url: str) -> dict[str, Any]:
        """The `note_tweet` of a long post: its text made longer than 280 characters, ending with a link."""
        rng = self.rng(tweet_id, 10)
        while len(text) < LONG_TEXT_MIN:
            text += " " + self.sentence(rng, rng.randrange(8, 20))
        text, url = self.add_link(rng, text, tweet_id, 9, base_url)
        full = {kind: list(items) for kind, items in entities.items()}
        full.setdefault("urls", []).append(url)
        return {"text": text, "entities": full}

    def link_path(self, rng: random.Random, tweet_id: int, number: int) -> str:
        """A shortener path whose behaviour is drawn from `links.mix`."""
        token = f"{tweet_id:x}{number}"
        behaviour = rng.choices(self._behaviours, self._weights)[0]
        if behaviour == "chain":
            return f"chain/{rng.choice((1, 1, 2, 2, 3))}/{rng.choice((301, 302, 307, 308))}/{token}"
        if behaviour == "end":
            return f"end/{rng.choice((404, 410, 500))}/{token}"
        if behaviour == "slow":
            return f"slow/{rng.randrange(50, 400)}/{token}"
        return f"{behaviour}/{token}"

    def sentence(self, rng: random.Random, words: int) -> str:
        text = " ".join(rng.choice(_WORDS) for _ in range(words))
        return text[:1].upper() + text[1:] + "."

    def context_annotation(self, rng: random.Random) -> dict[str, Any]:
        name = " ".join(rng.choice(_WORDS).title() for _ in range(2))
        return {"domain": dict(_DOMAIN), "entity": {"id": str(rng.randrange(10**18, 10**19)), "name": name,
                                                   "description": self.sentence(rng, 6)}}


def cut_text(text: str, entities: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The `text` and `entities` of a long post: its first 280 characters, the entities within them."""
    cut = text[:TEXT_LIMIT]
    kept = {kind: [item for item in items if item["end"] <= len(cut)] for kind, items in entities.items()}
    return cut, {kind: items for kind, items in kept.items() if items}


ALL_TWEET_FIELDS = frozenset({
    "attachments", "author_id", "card_uri", "community_id", "context_annotations", "conversation_id",
    "created_at", "display_text_range", "edit_controls", "edit_history_tweet_ids", "entities", "geo", "id",
    "in_reply_to_user_id", "lang", "media_metadata", "non_public_metrics", "note_tweet", "organic_metrics",
    "possibly_sensitive", "promoted_metrics", "public_metrics", "referenced_tweets", "reply_settings",
    "scopes", "source", "text", "withheld", "article"})
ALL_USER_FIELDS = frozenset({
    "affiliation", "connection_status", "created_at", "description", "entities", "id", "is_identity_verified",
    "location", "most_recent_tweet_id", "name", "parody", "pinned_tweet_id", "profile_banner_url",
    "profile_image_url", "protected", "public_metrics", "receives_your_dm", "subscription",
    "subscription_type", "url", "username", "verified", "verified_followers_count", "verified_type",
    "withheld"})


def full_fields() -> Mapping[str, set[str]]:
    """Every field the simulator renders, for stream messages (which carry everything)."""
    return {"tweet": set(ALL_TWEET_FIELDS), "user": set(ALL_USER_FIELDS)}
