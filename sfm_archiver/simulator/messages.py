"""Pre-rendered stream messages: realistic ~3 KB tweets with includes, cheap to stamp out.

A pool of templates is rendered once per set of requested fields (a connection's
`tweet.fields`, `user.fields` and `expansions`, honoured as X does: see fields.py); each message
only fills in its id and time with bytes %-formatting, which keeps a single connection well
above 15,000 messages per second.
"""

from __future__ import annotations

import json
import re
import threading

from sfm_archiver.simulator.fields import Post, Requested, includes
from sfm_archiver.simulator.tweets import EXTERNAL_USER_BASE, ORIGINAL, QUOTE, REPLY, RETWEET, STREAM_LOW, TweetFactory, make_id

_MARKS = {"@@ID@@": b"%(i)s", "@@TIME@@": b"%(t)s"}
_MARK = re.compile("(" + "|".join(_MARKS) + ")")
POOL_SIZE = 64


class MessageFactory:
    """Message bodies (without the closing brace, so `matching_rules` can be appended)."""

    def __init__(self, factory: TweetFactory, message_bytes: int):
        self._factory = factory
        self._message_bytes = message_bytes
        self._lock = threading.Lock()
        self._templates: dict[tuple[str, Requested], list[bytes]] = {}

    def templates(self, base_url: str, requested: Requested) -> list[bytes]:
        key = (base_url, requested)
        with self._lock:
            if key not in self._templates:
                self._templates[key] = [self._template(number, base_url, requested) for number in range(POOL_SIZE)]
            return self._templates[key]

    def _template(self, number: int, base_url: str, requested: Requested) -> bytes:
        factory = self._factory
        rng = factory.rng(number, 8)
        sample_id = make_id(1_700_000_000_000 + number, STREAM_LOW)
        kind = (ORIGINAL, ORIGINAL, REPLY, RETWEET, QUOTE)[number % 5]
        author = factory.external_user(EXTERNAL_USER_BASE + rng.randrange(10_000))
        tweet = factory.tweet(sample_id, author.id, kind, requested.tweet, base_url)
        tweet.pop("edit_controls", None)
        tweet.update(id="@@ID@@", edit_history_tweet_ids=["@@ID@@"])
        if "created_at" in tweet:
            tweet["created_at"] = "@@TIME@@"
        if tweet.get("conversation_id") == str(sample_id):
            tweet["conversation_id"] = "@@ID@@"
        message: dict = {"data": tweet}
        found = includes(factory, [Post(sample_id, kind, author)], requested, base_url)
        if found:
            message["includes"] = found
        if "context_annotations" in requested.tweet:  # pad to the configured size, as busy X messages are
            annotations = tweet.setdefault("context_annotations", [])
            while len(json.dumps(message, separators=(",", ":"), ensure_ascii=False)) < self._message_bytes - 60:
                annotations.append(factory.context_annotation(rng))
            if not annotations:
                del tweet["context_annotations"]
        text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)[:-1]
        pieces = _MARK.split(text)
        return b"".join(_MARKS[piece] if index % 2 else piece.encode().replace(b"%", b"%%")
                        for index, piece in enumerate(pieces))
