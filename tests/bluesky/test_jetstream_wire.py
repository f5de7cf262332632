"""Jetstream's wire format read by `platforms.bluesky_jetstream`: events, keys, keywords, URLs."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from sfm_archiver.platforms.bluesky_jetstream import (
    KeywordMatcher,
    NotAnEvent,
    account_status,
    parse_event,
    subscribe_url,
)

DID = "did:plc:abcdefghijklmnopqrstuvwx"


def post(text: str, tags=(), facet_tags=()) -> bytes:
    facets = [{"index": {"byteStart": 0, "byteEnd": 1}, "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": t}]}
              for t in facet_tags]
    return json.dumps({"did": DID, "time_us": 1_700_000_000_000_001, "kind": "commit",
                       "commit": {"rev": "3l", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3k",
                                  "record": {"$type": "app.bsky.feed.post", "text": text, "tags": list(tags),
                                             "facets": facets}}}).encode()


def test_commit_identity_and_account_events_have_keys_that_name_them_once():
    commit = parse_event(post("hello"))
    assert commit.key == (DID, "app.bsky.feed.post", "3k", "3l") and commit.text == "hello"
    identity = parse_event(b'{"did":"%s","time_us":5,"kind":"identity","identity":{"handle":"a.b","seq":9}}' % DID.encode())
    assert identity.key == (DID, "identity", 9) and identity.handle == "a.b"
    account = parse_event({"did": DID, "time_us": 6, "kind": "account",
                           "account": {"active": False, "status": "takendown", "seq": 10}})
    assert account.key == (DID, "account", 10) and account_status(account) == "suspended"
    assert account_status(parse_event({"did": DID, "time_us": 7, "kind": "account", "account": {"active": True}})) == "active"
    assert account_status(parse_event({"did": DID, "time_us": 7, "kind": "account",
                                       "account": {"active": False, "status": "deleted"}})) == "deactivated"


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"did": 1, "time_us": 2, "kind": "commit"}', b'{"did": "x"}'])
def test_a_message_that_is_no_event_is_refused(raw):
    with pytest.raises(NotAnEvent):
        parse_event(raw)


@pytest.mark.parametrize(("text", "tags", "facets", "matches"), [
    ("Flood maps are out", (), (), True),
    ("floodlight repair", (), (), False),
    ("Reading about #Climate today", (), (), True),
    ("climate without the hash", (), (), False),
    ("no words", ("climate",), (), True),
    ("no words", (), ("CLIMATE",), True),
    ("Das Hochwasser steigt", (), (), False),
])
def test_keywords_match_whole_words_and_hashtags(text, tags, facets, matches):
    assert KeywordMatcher(["#climate", "flood"]).matches(parse_event(post(text, tags, facets))) is matches


def test_the_subscribe_url_names_collections_dids_and_cursor():
    url = subscribe_url("wss://js.example/subscribe?compress=false", dids=["did:b", "did:a"], cursor=123)
    query = parse_qs(urlsplit(url).query)
    assert query == {"compress": ["false"], "wantedCollections": ["app.bsky.feed.post"],
                     "wantedDids": ["did:a", "did:b"], "cursor": ["123"]}
    assert "cursor" not in subscribe_url("ws://h/subscribe")
