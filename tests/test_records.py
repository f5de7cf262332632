"""Capture lines: the raw bytes as received plus one `__sfm` key (DESIGN.md section 4)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sfm_archiver import __version__
from sfm_archiver.errors import BadResponseError
from sfm_archiver.simulator.wire import Wire
from sfm_archiver.storage.records import envelope, json_line, sfm_metadata

AT = datetime(2026, 11, 27, 13, 5, 9, 123456, tzinfo=timezone.utc)


def meta(**extra) -> dict:
    return sfm_metadata(captured_at=AT, collection="news", job="user_timeline", **extra)


def test_sfm_metadata_fields():
    assert meta(url="https://api.twitter.com/2/users/1/tweets", account={"id": "1", "username": "gw"}) == {
        "captured_at": "2026-11-27T13:05:09.123Z",
        "collection": "news",
        "job": "user_timeline",
        "url": "https://api.twitter.com/2/users/1/tweets",
        "account": {"id": "1", "username": "gw"},
        "version": __version__,
    }
    assert "url" not in meta() and "account" not in meta()
    assert meta(matching_rules=["news:a"])["matching_rules"] == ["news:a"]


def test_envelope_keeps_every_received_byte():
    raw = b'{"data":[{"id":"1","text":"caf\\u00e9 \xe2\x9c\x93  two  spaces"}],"meta":{"result_count":1.0}}'
    line = envelope(raw, meta())
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    assert line.startswith(raw[:-1] + b",")
    record = json.loads(line)
    assert record["meta"] == {"result_count": 1.0}
    assert record["__sfm"]["collection"] == "news"
    assert list(record)[-1] == "__sfm"


def test_envelope_of_an_empty_object_and_surrounding_whitespace():
    assert json.loads(envelope(b"{}", meta())) == {"__sfm": meta()}
    assert json.loads(envelope(b'  {"a": 1}\r\n', meta()))["a"] == 1


def test_envelope_folds_line_breaks_so_one_object_stays_one_line():
    raw = b'{\n  "data": {"id": "1"},\r\n  "errors": []\n}'
    line = envelope(raw, meta())
    assert line.count(b"\n") == 1
    assert json.loads(line)["data"] == {"id": "1"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
documents = st.dictionaries(st.text(max_size=8).filter(lambda key: key != "__sfm"), json_values, max_size=5)
line_breaks = st.sampled_from(["\n", "\r\n", "\r"])
indents = st.sampled_from([None, 0, 1, 2, "\t"])


@given(documents, indents, line_breaks, st.text(" \t\r\n", max_size=3), st.text(" \t\r\n", max_size=3),
       st.booleans())
def test_envelope_of_any_serialisation_is_one_line_that_parses_to_the_document(
        document, indent, line_break, before, after, ascii_only):
    """Differential: json.loads of the capture line == the server's document plus `__sfm`, for
    every serialisation (any indentation, LF, CRLF or CR between tokens, whitespace around)."""
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only).replace("\n", line_break)
    raw = (before + text + after).encode()
    line = envelope(raw, meta())
    assert line.endswith(b"\n") and line.count(b"\n") == 1 and b"\r" not in line
    assert json.loads(line) == {**document, "__sfm": meta()}
    body = raw.strip().replace(b"\r", b" ").replace(b"\n", b" ")  # the server's bytes, breaks as spaces
    spliced = b'"__sfm":' + json.dumps(meta(), separators=(",", ":")).encode() + b"}\n"
    assert line.removesuffix(spliced).rstrip(b",") == body[:-1]


@given(documents, st.integers(min_value=0, max_value=10_000))
def test_envelope_of_the_simulators_variant_bodies(document, seed):
    raw = Wire("variant", seed).encode(document, one_line=False)
    assert json.loads(envelope(raw, meta())) == {**document, "__sfm": meta()}


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"", b"{truncated"])
def test_envelope_refuses_what_is_not_an_object(raw):
    with pytest.raises(BadResponseError, match="not a JSON object"):
        envelope(raw, meta())


def test_json_line():
    assert json_line({"url": "https://t.co/x", "final_status": 200, "title": "café"}) == '{"url":"https://t.co/x","final_status":200,"title":"café"}\n'.encode()
