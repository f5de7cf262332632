"""The chunked-body decoder used on the stream connection: any split, same payload."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.platforms.x_stream import ChunkDecoder, ChunkError


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=20), st.lists(st.integers(min_value=1, max_value=64), min_size=1))
def test_any_split_gives_the_same_payload(pieces, cuts):
    body = b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in pieces) + b"0;ext=1\r\nTrailer: x\r\n\r\n"
    decoder, out, position, index = ChunkDecoder(), [], 0, 0
    while position < len(body):
        step = cuts[index % len(cuts)]
        out.append(decoder.feed(body[position:position + step]))
        position, index = position + step, index + 1
    assert b"".join(out) == b"".join(pieces)
    assert decoder.done
    assert decoder.feed(b"more") == b""


def test_unfinished_body_is_not_done():
    decoder = ChunkDecoder()
    assert decoder.feed(b"5\r\nhel") == b"hel"
    assert decoder.feed(b"lo\r\n") == b"lo"
    assert not decoder.done


@pytest.mark.parametrize("body", [b"zz\r\nabc", b"3\r\nabcXY", b"x" * 2000])
def test_broken_framing_is_an_error(body):
    with pytest.raises(ChunkError):
        ChunkDecoder().feed(body)
