"""The simulator's variant wire: legal JSON, same documents, different bytes."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from sfm_archiver.simulator.wire import Wire, compact

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values, st.integers(min_value=0, max_value=1000), st.booleans())
def test_variant_parses_to_the_same_document(document, seed, one_line):
    body = Wire("variant", seed).encode(document, one_line=one_line)
    assert json.loads(body) == document
    if one_line:
        assert b"\n" not in body and b"\r" not in body


def test_variant_differs_from_x_bytes():
    document = {"data": {"id": "1", "text": "caf\u00e9 https://t.co/x", "lang": "en"}, "matching_rules": [{"id": "9", "tag": "a:b"}]}
    wire = Wire("variant", 7)
    bodies = {wire.encode(document) for _ in range(20)}
    assert compact(document) not in bodies or len(bodies) > 1
    assert any(b", " in body or b": " in body for body in bodies)
    assert any(b"\\/" in body for body in bodies)
    assert any(b"\\u00e9" in body for body in bodies)
    assert any(body.index(b'"matching_rules"') < body.index(b'"data"') for body in bodies)


def test_compact_is_x_bytes():
    assert Wire("compact").encode({"a": "/", "b": [1, 2]}) == b'{"a":"/","b":[1,2]}'


def test_variant_simulator_answers_legal_json(make_simulator):
    import urllib.request
    sim = make_simulator(wire="variant")
    request = urllib.request.Request(f"{sim.base_url}/2/users/by/username/sfm_alpha", headers={"Authorization": "Bearer t"})
    with urllib.request.urlopen(request) as response:
        body = response.read()
    assert json.loads(body)["data"]["username"] == "sfm_alpha"
    assert body != compact(json.loads(body))
