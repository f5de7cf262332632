"""Jetstream's wire format: the subscribe URL, the few fields read of each event, and what they mean.

Jetstream (the JSON face of the Bluesky firehose) sends one JSON object per WebSocket message:
`{"did", "time_us", "kind": "commit" | "identity" | "account", <kind>: {...}}`. A commit holds
`operation` (create, update, delete), `collection`, `rkey`, `rev` and, for creates, the
`record`; `identity` holds the new `handle`; `account` holds `active` and, when inactive, a
`status` (takendown, deactivated, deleted, ...). `time_us` is the server's clock in
microseconds and is what a `cursor` names: a subscriber given `cursor=N` is sent the buffered
events with time_us >= N first. Several events may share one time_us, and events are not in
strict time_us order, so a resuming reader asks for some seconds before its last event and
drops what it already has by `event_key`.

The capture keeps each message's bytes as received; this module only reads them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sfm_archiver.errors import BadResponseError, TransientError

POST_COLLECTION = "app.bsky.feed.post"
WANTED_COLLECTIONS = (POST_COLLECTION,)  # what a jetstream collection captures of commits
COMMIT, IDENTITY, ACCOUNT = "commit", "identity", "account"
WANTED_DIDS_MAX = 10_000  # Jetstream's limit on wantedDids in one subscription

# what `account` events mean, in the statuses of jobs/account_events (deleted: like X's missing user)
ACCOUNT_STATUSES = {"takendown": "suspended", "suspended": "suspended", "deactivated": "deactivated",
                    "deleted": "deactivated"}

_WORD = re.compile(r"[#\w][\w'-]*", re.UNICODE)


class NotAnEvent(ValueError):
    """A message that is not a Jetstream event object (kept out of the capture, logged)."""


@dataclass(frozen=True)
class JetstreamEvent:
    """The fields of one event the capture needs; everything else stays in the raw bytes."""

    did: str
    time_us: int
    kind: str
    operation: str | None = None
    collection: str | None = None
    rkey: str | None = None
    rev: str | None = None
    text: str = ""
    tags: tuple[str, ...] = ()
    handle: str | None = None  # identity
    active: bool | None = None  # account
    status: str | None = None  # account
    seq: int | None = None  # identity and account

    @property
    def key(self) -> tuple:
        """What makes an event the same event when it is sent again (a replay after a cursor)."""
        if self.kind == COMMIT:
            return (self.did, self.collection, self.rkey, self.rev)
        return (self.did, self.kind, self.seq if self.seq is not None else self.time_us)


def parse_event(raw: bytes | str | dict[str, Any]) -> JetstreamEvent:
    """The fields of one message (its bytes, text, or the object already parsed)."""
    try:
        document = raw if isinstance(raw, dict) else json.loads(raw)
    except ValueError as error:
        raise NotAnEvent(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise NotAnEvent("not a JSON object")
    did, time_us, kind = document.get("did"), document.get("time_us"), document.get("kind")
    if not isinstance(did, str) or not isinstance(time_us, int) or isinstance(time_us, bool) or not isinstance(kind, str):
        raise NotAnEvent("no did, time_us or kind")
    body = document.get(kind) if isinstance(document.get(kind), dict) else {}
    if kind == COMMIT:
        record = body.get("record") if isinstance(body.get("record"), dict) else {}
        return JetstreamEvent(did, time_us, kind, operation=_text(body.get("operation")),
                              collection=_text(body.get("collection")), rkey=_text(body.get("rkey")),
                              rev=_text(body.get("rev")), text=_text(record.get("text")) or "", tags=_tags(record))
    seq = body.get("seq") if isinstance(body.get("seq"), int) else None
    if kind == IDENTITY:
        return JetstreamEvent(did, time_us, kind, handle=_text(body.get("handle")), seq=seq)
    if kind == ACCOUNT:
        active = body.get("active") if isinstance(body.get("active"), bool) else None
        return JetstreamEvent(did, time_us, kind, active=active, status=_text(body.get("status")), seq=seq)
    return JetstreamEvent(did, time_us, kind, seq=seq)


def created_post_uri(document: dict) -> str | None:
    """The at:// URI of the post a Jetstream event (as parsed JSON) creates; None for any other event."""
    commit = document.get("commit")
    if (document.get("kind") == COMMIT and isinstance(commit, dict) and commit.get("operation") == "create"
            and commit.get("collection") == POST_COLLECTION and isinstance(document.get("did"), str)
            and isinstance(commit.get("rkey"), str)):
        return f"at://{document['did']}/{POST_COLLECTION}/{commit['rkey']}"
    return None


def account_status(event: JetstreamEvent) -> str | None:
    """The account status an `account` event shows (`active`, `suspended`, `deactivated`), or None."""
    if event.kind != ACCOUNT or event.active is None:
        return None
    if event.active:
        return "active"
    return ACCOUNT_STATUSES.get(event.status or "", "deactivated")


class KeywordMatcher:
    """Words and hashtags of a collection's `keywords`, matched on a post's text and tags.

    A word matches a whole word of the text, case-insensitively (`flood` matches "Flood maps",
    not "floodlight"); a hashtag (`#climate`) matches the tag, whether written in the text or
    carried as a `#tag` facet or the record's `tags`.
    """

    def __init__(self, keywords: Iterable[str]):
        self.words = frozenset(k.lower() for k in keywords if not k.startswith("#"))
        self.tags = frozenset(k[1:].lower() for k in keywords if k.startswith("#") and len(k) > 1)

    def __bool__(self) -> bool:
        return bool(self.words or self.tags)

    def matches(self, event: JetstreamEvent) -> bool:
        if event.kind != COMMIT or event.operation != "create" or event.collection != POST_COLLECTION:
            return False
        if self.tags and any(tag.lower() in self.tags for tag in event.tags):
            return True
        for token in _WORD.findall(event.text):
            token = token.lower()
            if token.startswith("#"):
                if token[1:] in self.tags:
                    return True
            elif token in self.words:
                return True
        return False


def subscribe_url(base: str, *, dids: Iterable[str] = (), collections: Iterable[str] = WANTED_COLLECTIONS,
                  cursor: int | None = None) -> str:
    """The subscribe URL: `base` with wantedCollections, wantedDids and cursor (µs) added."""
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("wantedCollections", "wantedDids", "cursor")]
    query += [("wantedCollections", c) for c in collections] + [("wantedDids", d) for d in sorted(dids)]
    if cursor is not None:
        query.append(("cursor", str(int(cursor))))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _tags(record: dict) -> tuple[str, ...]:
    """Hashtags of a post: `#tag` facet features and the record's own `tags`."""
    found = [t for t in record.get("tags") or () if isinstance(t, str)]
    for facet in record.get("facets") or ():
        for feature in (facet.get("features") or ()) if isinstance(facet, dict) else ():
            if isinstance(feature, dict) and str(feature.get("$type", "")).endswith("#tag") and isinstance(feature.get("tag"), str):
                found.append(feature["tag"])
    return tuple(found)


RESOLVE_HANDLE = "/xrpc/com.atproto.identity.resolveHandle"


def resolve_handle(appview_url: str, handle: str, user_agent: str, timeout: float = 30.0) -> str:
    """The DID a handle names now, from the AppView (`com.atproto.identity.resolveHandle`).

    Raises BadResponseError when the handle does not resolve (the answer says why) and
    TransientError when the AppView could not be reached or answered with a server error.
    """
    import requests

    url = appview_url.rstrip("/") + RESOLVE_HANDLE
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    try:
        answer = session.get(url, params={"handle": handle}, timeout=timeout)
    except requests.RequestException as error:
        raise TransientError(f"resolving the handle {handle!r} at {appview_url} failed: {error}") from None
    finally:
        session.close()
    if answer.status_code == 429 or answer.status_code >= 500:
        raise TransientError(f"resolving the handle {handle!r}: HTTP {answer.status_code} from {appview_url}")
    try:
        body = answer.json()
    except ValueError:
        body = {}
    did = body.get("did") if isinstance(body, dict) else None
    if answer.status_code != 200 or not isinstance(did, str):
        why = body.get("message") if isinstance(body, dict) and body.get("message") else f"HTTP {answer.status_code}"
        raise BadResponseError(f"the handle {handle!r} does not resolve to a DID: {why}")
    return did
