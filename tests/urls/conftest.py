"""Every WARC any test here writes must pass `warcio check` and hold no bearer token."""

from __future__ import annotations

import gzip
from pathlib import Path
from urllib.parse import unquote

import pytest

from .helpers import TOKEN, warcio


@pytest.fixture(autouse=True)
def every_warc_is_valid_and_holds_no_token(tmp_path: Path):
    yield
    files = sorted(tmp_path.rglob("*.warc.gz"))
    if not files:
        return
    result = warcio("check", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in files:
        data = path.read_bytes()
        for content in (data, gzip.decompress(data)):
            assert TOKEN.encode() not in content and unquote(TOKEN).encode() not in content, path
