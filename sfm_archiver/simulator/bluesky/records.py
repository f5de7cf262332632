"""Post records as Bluesky clients write them: text, createdAt, langs, facets (UTF-8 byte offsets), embeds.

Content comes from a `random.Random` the caller seeds, so the same seed gives the same records.
Some texts carry non-ASCII letters and emoji (facet offsets count UTF-8 bytes, not characters),
some hashtags, and a `links` share carries link facets, part of them with an external embed.
"""

from __future__ import annotations

import random
from typing import Any, Sequence

POST = "app.bsky.feed.post"
REPOST = "app.bsky.feed.repost"

_OPENINGS = ("New in the reading room:", "Today at the archive", "Worth a look", "From the collection",
             "Heads up:", "Café talk:", "Straße und Platz", "Notre équipe a numérisé", "図書館のお知らせ",
             "Ünïcödé check", "Weekend reading 📚", "Flood defences 🌊", "Just catalogued", "Quick note")
_MIDDLES = ("a box of letters from 1923", "the map room reopens on Monday", "our preservation lab at work",
            "oral histories of the river towns", "a naïve sketchbook, beautifully kept", "zines from the 90s ✨",
            "photographs of the harbour", "records of the city council", "the climate data rescue project",
            "résumés of early members", "tiny 🐛 in the finding aid, fixed", "the reading list for spring 🌸")
_TAGS = ("archives", "climate", "history", "library", "flood", "openaccess")
_SITES = ("https://example.org/", "https://archive.example.net/items/", "https://news.example.com/2026/",
          "https://blog.example.edu/posts/")
_LANGS = (("en",), ("en",), ("en",), ("de",), ("fr",), ("ja",), ("en", "de"))
_TITLES = ("Collection highlights", "A century of letters", "Opening hours", "The river archive", "Über uns")


def make_record(rng: random.Random, created_at: str, link_share: float, *, text: str | None = None,
                links: Sequence[str] | None = None, reply: dict[str, Any] | None = None,
                tags: Sequence[str] = ()) -> dict[str, Any]:
    """One app.bsky.feed.post record; `text`/`links` as given, or made up (links with `link_share`).

    `tags` are appended as hashtags with #tag facets.
    """
    if links is None:
        links = [_link(rng)] if rng.random() < link_share else []
    segments: list[tuple[str, str | None, str | None]] = []  # (text, link uri, tag)
    if text is None:
        segments.append((f"{rng.choice(_OPENINGS)} {rng.choice(_MIDDLES)}", None, None))
        if rng.random() < 0.25:
            tag = rng.choice(_TAGS)
            segments += [(" ", None, None), (f"#{tag}", None, tag)]
    else:
        segments.append((text, None, None))
    for tag in tags:
        segments += [(" ", None, None), (f"#{tag}", None, tag)]
    for uri in links:
        segments += [(" ", None, None), (_display(uri, rng), uri, None)]
    body, facets = _layout(segments)
    record: dict[str, Any] = {"$type": POST, "text": body, "createdAt": created_at, "langs": list(rng.choice(_LANGS))}
    if facets:
        record["facets"] = facets
    if links and rng.random() < 0.4:
        record["embed"] = {"$type": "app.bsky.embed.external",
                           "external": {"uri": links[0], "title": rng.choice(_TITLES),
                                        "description": f"{rng.choice(_MIDDLES).capitalize()}."}}
    if reply is not None:
        record["reply"] = reply
    return record


def repost_record(subject_uri: str, subject_cid: str, created_at: str) -> dict[str, Any]:
    return {"$type": REPOST, "subject": {"uri": subject_uri, "cid": subject_cid}, "createdAt": created_at}


def embed_view(record: dict[str, Any]) -> dict[str, Any] | None:
    """The hydrated `embed` of a PostView for the record's embed (external links only)."""
    embed = record.get("embed")
    if not embed or embed.get("$type") != "app.bsky.embed.external":
        return None
    return {"$type": "app.bsky.embed.external#view", "external": dict(embed["external"])}


def _link(rng: random.Random) -> str:
    return f"{rng.choice(_SITES)}{rng.randrange(10**5, 10**6)}-{rng.choice(('story', 'item', 'note'))}"


def _display(uri: str, rng: random.Random) -> str:
    """The link's text in the post: the full URL, or host and path cut short as the app shows it."""
    bare = uri.split("://", 1)[1]
    return uri if rng.random() < 0.5 or len(bare) <= 24 else bare[:21] + "..."


def _layout(segments: list[tuple[str, str | None, str | None]]) -> tuple[str, list[dict[str, Any]]]:
    """The text and its facets; offsets are UTF-8 byte positions, as the lexicon defines them."""
    text, facets, offset = [], [], 0
    for piece, uri, tag in segments:
        size = len(piece.encode("utf-8"))
        if uri is not None:
            facets.append({"index": {"byteStart": offset, "byteEnd": offset + size},
                           "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}]})
        elif tag is not None:
            facets.append({"index": {"byteStart": offset, "byteEnd": offset + size},
                           "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": tag}]})
        text.append(piece)
        offset += size
    return "".join(text), facets
