"""The index pass's fast reading (msgspec on a small schema) agrees with the slow one (json.loads)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.export.flatten import line_posts
from sfm_archiver.export.scan import index_entries, light_record, slow_record

scalars = st.none() | st.booleans() | st.integers(-2**80, 2**80) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                      max_leaves=6)
ids = st.text("0123456789", min_size=1, max_size=20) | values
posts = st.fixed_dictionaries({"id": ids}, optional={"created_at": values, "author_id": values, "text": values,
                                                     "public_metrics": values})
users = st.fixed_dictionaries({}, optional={"id": values, "username": values, "name": values})
lines = st.fixed_dictionaries({}, optional={
    "data": st.lists(posts | values, max_size=4) | posts | values,
    "includes": st.fixed_dictionaries({}, optional={"users": st.lists(users | values, max_size=3) | values,
                                                    "tweets": st.lists(posts | values, max_size=3) | values}) | values,
    "__sfm": st.fixed_dictionaries({}, optional={"captured_at": values, "collection": values}) | values,
    "meta": values, "matching_rules": values,
})


def selected(record: dict | None) -> list:
    """What the index pass uses of a line: each post's slot, id, times and author, the authors'
    names and the capture time."""
    if record is None:
        return ["not an object"]
    includes = record.get("includes")
    found = [(slot, post.get("id"), post.get("created_at"), post.get("author_id"), referenced)
             for slot, post, referenced in line_posts(record, True)]
    names = []
    if isinstance(includes, dict) and isinstance(includes.get("users"), list):
        names = [(u.get("id"), u.get("username")) for u in includes["users"] if isinstance(u, dict)]
    sfm = record.get("__sfm")
    return [found, names, sfm.get("captured_at") if isinstance(sfm, dict) else None]


@settings(max_examples=300, deadline=None)
@given(line=lines)
def test_fast_and_slow_reading_agree(line):
    raw = json.dumps(line).encode()
    assert selected(light_record(raw)) == selected(slow_record(raw))


@given(raw=st.binary(max_size=60) | st.sampled_from([b"[]", b"1", b'"x"', b"{", b'{"data": NaN}', b'{"a": "\\ud800"}']))
def test_anything_that_is_not_a_json_object_is_none_both_ways(raw):
    assert (light_record(raw) is None) == (slow_record(raw) is None)
    if light_record(raw) is not None:
        assert selected(light_record(raw)) == selected(slow_record(raw))


def _floats_in(value) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_floats_in(item) for item in value.values())
    return isinstance(value, list) and any(_floats_in(item) for item in value)


def _same_value(a, b) -> bool:
    """Equal as JSON values, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and a != a:
        return b != b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same_value, a, b))
    return type(a) is type(b) and a == b


surrogates = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2)


@settings(max_examples=400, deadline=None)
@given(value=st.recursive(scalars | st.floats() | surrogates,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                          max_leaves=8))
def test_to_json_is_compact_json_of_the_same_value(value):
    """What `json.dumps` writes, byte for byte, wherever no float is involved; with floats, the
    same numbers (`1e16` for `1e+16`, `0.00001` for `1e-05`); NaN, Infinity and lone surrogates as
    `json.dumps` writes them."""
    from sfm_archiver.export.flatten import to_json

    text = to_json(value)
    exact = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if not _floats_in(value):
        assert text == exact
    else:
        assert _same_value(json.loads(text), value)  # NaN as NaN, never null


@settings(max_examples=300, deadline=None)
@given(line=lines, referenced=st.booleans())
def test_index_entries_are_what_the_general_path_finds(line, referenced):
    """Without filters, the index pass's direct reading finds the same capture time and posts as
    `line_posts` over the slow reading (referenced posts only beside at least one post)."""
    raw = json.dumps(line).encode()
    found = index_entries(raw, referenced)
    if found is None:
        return
    record = slow_record(raw)
    every = list(line_posts(record, referenced))
    posts = [(slot, post["id"]) for slot, post, _is_ref in every] if any(not is_ref for *_, is_ref in every) else []
    sfm = record.get("__sfm")
    stamp = sfm.get("captured_at") if isinstance(sfm, dict) else None
    assert found == (stamp if isinstance(stamp, str) else "", posts)
