"""`organize` on hostile legacy file names and contents: nothing escapes DEST, nothing is lost.

Names are legacy-like (`prefix-YYYY-MM-DDTHH-MM-SSZ.gz`, with colons too) with mutated prefixes
(`..`, dots, spaces, unicode, very long), impossible dates and odd extensions; contents are
whole, truncated, empty or not gzip at all. Symlinks in SRC are planted too. Whatever happens,
every byte is either still in SRC or in a file under DEST, every moved file decompresses, and
nothing appears anywhere else.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.jobs.organize import organize, parse_legacy_name

prefixes = st.one_of(
    st.sampled_from(["climate", "..", ".", ".hidden", "a..b", "-x", "ok_1", "x" * 130, "tweets.v2", "a b", "é"]),
    st.text(alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)), min_size=1, max_size=20),
)
stamps = st.tuples(st.integers(1999, 2031), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25),
                   st.integers(0, 61), st.integers(0, 61), st.sampled_from(["-", ":"]))
extensions = st.sampled_from([".gz", ".json.gz", ".jsonl.gz", ".txt", "", ".gz.part", ".GZ", ".warc.gz"])
contents = st.sampled_from(["whole", "two_members", "truncated", "empty", "garbage", "padded"])
entries = st.tuples(prefixes, stamps, extensions, contents)


def legacy_name(prefix: str, stamp: tuple, ext: str) -> str:
    year, month, day, hour, minute, second, sep = stamp
    return f"{prefix}-{year:04d}-{month:02d}-{day:02d}T{hour:02d}{sep}{minute:02d}{sep}{second:02d}Z{ext}"


def body(kind: str, seed: int) -> bytes:
    line = b'{"data":{"id":"%d"}}\n' % seed
    if kind == "whole":
        return gzip.compress(line * 3)
    if kind == "two_members":
        return gzip.compress(line) + gzip.compress(line)
    if kind == "truncated":
        return gzip.compress(line * 50)[:-7]
    if kind == "padded":
        return gzip.compress(line) + b"\0" * 512
    if kind == "garbage":
        return b"not gzip " + line
    return b""


def inventory(root: Path) -> Counter:
    """sha256 of every regular file below `root` (symlinks not followed)."""
    found: Counter = Counter()
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink():
                found[hashlib.sha256(path.read_bytes()).hexdigest()] += 1
    return found


@settings(max_examples=60, deadline=None)
@given(st.lists(entries, min_size=1, max_size=8), st.booleans())
def test_organize_never_escapes_and_never_loses(files, plant_symlink):
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        src, dest, outside = root / "src", root / "dest", root / "outside"
        src.mkdir()
        outside.mkdir()
        (outside / "secret.gz").write_bytes(gzip.compress(b"secret\n"))
        for index, (prefix, stamp, ext, kind) in enumerate(files):
            name = legacy_name(prefix, stamp, ext)
            if len(name.encode()) > 255:
                continue
            (src / name).write_bytes(body(kind, index))
        if plant_symlink:
            (src / "linked-2026-11-27T13-00-00Z.gz").symlink_to(outside / "secret.gz")
            (src / "sub").symlink_to(outside, target_is_directory=True)
        before = inventory(src) + inventory(outside)

        report = organize(src, dest, include_recent=True)

        after = inventory(src) + inventory(dest) + inventory(outside)
        duplicates = Counter(hashlib.sha256(target.read_bytes()).hexdigest() for _, target in report.duplicates)
        assert after + duplicates == before, "bytes were lost or invented"
        assert sorted(p.name for p in root.iterdir()) == ["dest", "outside", "src"]
        assert (outside / "secret.gz").is_file() and not (outside / "secret.gz").is_symlink()
        real_dest = dest.resolve()
        for source, target in report.moved + report.renamed:
            assert target.resolve().is_relative_to(real_dest), f"{target} escaped {dest}"
            legacy = parse_legacy_name(source.name)
            assert legacy is not None and target.parent == dest / legacy.relative_folder
            with gzip.open(target) as handle:
                handle.read()
        for folder, dirs, names in os.walk(dest):
            for name in dirs + names:
                assert not (Path(folder) / name).is_symlink()
        for path, _ in report.corrupt:
            assert path.exists() and path.is_relative_to(src)
