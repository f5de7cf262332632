"""The export's fast reading (ISA-L gzip, msgspec decoding) agrees with the plain one (gzip, json)."""

from __future__ import annotations

import gzip
import json
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.export.lines import decode_line, read_lines, read_records
from sfm_archiver.simulator.wire import compact, variant

scalars = (st.none() | st.booleans() | st.integers(-2**100, 2**100) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=12) | st.text(st.characters(codec="utf-8"), max_size=6))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
                      max_leaves=12)


def same(a, b) -> bool:
    """Equal values of equal types all the way down (1 and 1.0 and True are not the same here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def outcome(line: bytes):
    try:
        return "value", decode_line(line)
    except ValueError:
        return "error", None


def oracle(line: bytes):
    try:
        return "value", json.loads(line)
    except ValueError:
        return "error", None


@settings(max_examples=400, deadline=None)
@given(value=values, seed=st.integers(0, 2**32), ascii_only=st.booleans())
def test_decoding_agrees_with_json_loads_on_any_wire_form(value, seed, ascii_only):
    for line in (compact(value), variant(value, random.Random(seed)),
                 json.dumps(value, ensure_ascii=ascii_only).encode()):
        got, want = outcome(line), oracle(line)
        assert got[0] == want[0] and same(got[1], want[1]), line


@given(line=st.binary(max_size=40) | st.sampled_from([
    b'{"a": NaN}', b'[Infinity, -Infinity]', b'"\\ud800"', b'{"x": "\\udc00\\ud800"}', b"1e400", b"-1e999",
    b'\xef\xbb\xbf{"bom": 1}', b'{"a": 1, "a": 2}', b"123456789012345678901234567890", b'"\\u0000\\/"', b" {} \r\n",
    b'{"a": 1}garbage', b"", b"\xff\xfe{}",
]))
def test_edge_cases_give_what_json_loads_gives(line):
    got, want = outcome(line), oracle(line)
    assert got[0] == want[0] and same(got[1], want[1])


def test_lines_and_damage_are_read_as_gzip_reads_them(tmp_path):
    path = tmp_path / "t-timeline-20261127T130000Z.jsonl.gz"
    lines = [json.dumps({"n": n, "text": "x" * (n % 50)}).encode() + b"\n" for n in range(5000)]
    with open(path, "wb") as handle:  # two gzip members, as a reopened capture file has
        handle.write(gzip.compress(b"".join(lines[:2000])))
        handle.write(gzip.compress(b"".join(lines[2000:]) + b"[1]\n"))
    problems = []
    assert [line for _n, line in read_lines(path, problems.append)] == lines + [b"[1]\n"]
    assert [record["n"] for _n, record in read_records(path, problems.append)] == list(range(5000))
    assert [str(problem) for problem in problems] == [f"{path}:5001: not a JSON object"]
    whole = path.read_bytes()
    for cut in (len(whole) - 7, len(whole) // 2):
        damaged = tmp_path / "damaged.jsonl.gz"
        damaged.write_bytes(whole[:cut])
        problems = []
        read = list(read_lines(damaged, problems.append))
        assert len(problems) == 1 and f"{damaged}:{len(read) + 1}: cannot decompress" in str(problems[0])
        assert [line for _n, line in read] == lines[:len(read)]
    garbage = tmp_path / "garbage.jsonl.gz"
    garbage.write_bytes(whole[:20] + bytes(200) + whole[220:])
    problems = []
    list(read_lines(garbage, problems.append))
    assert len(problems) == 1 and "cannot decompress" in str(problems[0])
