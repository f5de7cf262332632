"""The capture writer: one gzip member per batch, clock-driven rotation, the open-file registry,
and sealing of files left by dead writers (DESIGN.md section 4)."""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
import textwrap
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sfm_archiver.state import StateStore
from sfm_archiver.storage.gzmembers import complete_prefix_length, seal
from sfm_archiver.storage.writer import CaptureWriter, compress_member, seal_abandoned_files

UTC = timezone.utc
REPO = Path(__file__).resolve().parents[1]


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def line(n: int, size: int = 0) -> bytes:
    return json.dumps({"n": n, "pad": "x" * size}).encode() + b"\n"


def members_of(path: Path) -> list[bytes]:
    """The decompressed content of each gzip member of `path`, in order."""
    data, members = path.read_bytes(), []
    while data:
        decompressor = zlib.decompressobj(31)
        members.append(decompressor.decompress(data))
        assert decompressor.eof, f"{path}: torn member"
        data = decompressor.unused_data
    return members


def assert_readable(path: Path) -> list[dict]:
    """Decompresses with Python's gzip and with zcat, identically; every line parses."""
    content = gzip.decompress(path.read_bytes())
    zcat = subprocess.run(["zcat", str(path)], capture_output=True, timeout=30)
    assert zcat.returncode == 0, zcat.stderr
    assert zcat.stdout == content
    assert content.endswith(b"\n") or content == b""
    return [json.loads(text) for text in content.splitlines()]


def capture_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.jsonl.gz"))


@pytest.fixture
def clock():
    return ManualClock(datetime(2026, 11, 27, 13, 30, 0, tzinfo=UTC))


@pytest.fixture
def store(tmp_path):
    store = StateStore(tmp_path / "state")
    yield store
    store.close()


# -- batches and members -------------------------------------------------------------------------


def test_each_batch_is_one_complete_member(tmp_path, clock, store):
    writer = CaptureWriter(tmp_path / "archive", "news", "timeline", clock=clock, registry=store)
    path = writer.write_batch([line(1), line(2)])
    assert writer.write_batch([line(3)]) == path
    for n in (4, 5, 6):
        writer.append(line(n))
    writer.flush()
    writer.flush()  # nothing buffered: no empty member
    writer.close()
    assert path == tmp_path / "archive/news/2026/11/27/13/news-timeline-20261127T133000Z.jsonl.gz"
    assert members_of(path) == [line(1) + line(2), line(3), line(4) + line(5) + line(6)]
    assert [record["n"] for record in assert_readable(path)] == [1, 2, 3, 4, 5, 6]
    assert writer.lines_written == 6
    assert writer.bytes_written == path.stat().st_size


def test_append_flushes_when_the_batch_is_full(tmp_path, clock):
    writer = CaptureWriter(tmp_path, "news", "stream", clock=clock, max_batch_bytes=1000)
    for n in range(10):
        writer.append(line(n, size=290))
    assert writer.path is not None
    writer.close()
    (path,) = capture_files(tmp_path)
    sizes = [len(member) for member in members_of(path)]
    assert sizes == [4 * len(line(0, size=290))] * 2 + [2 * len(line(0, size=290))]
    assert len(assert_readable(path)) == 10


def test_nothing_written_creates_no_file(tmp_path, clock):
    with CaptureWriter(tmp_path, "news", "timeline", clock=clock) as writer:
        writer.flush()
        assert writer.path is None
    assert capture_files(tmp_path) == []


def test_context_manager_flushes_and_closes(tmp_path, clock, store):
    with CaptureWriter(tmp_path / "a", "news", "users", clock=clock, registry=store, sync_every_flush=False) as writer:
        writer.append(line(1))
    (path,) = capture_files(tmp_path / "a")
    assert path.name == "news-users-20261127T133000Z.jsonl.gz"
    assert assert_readable(path) == [{"n": 1, "pad": ""}]
    assert store.open_files() == []


def test_compress_member_is_a_gzip_member():
    data = b"".join(line(n, 50) for n in range(100))
    member = compress_member(data, 6)
    assert gzip.decompress(member) == data
    assert gzip.decompress(member + compress_member(b"more\n", 1)) == data + b"more\n"


def test_unknown_kind_and_bad_collection_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown capture kind"):
        CaptureWriter(tmp_path, "news", "tweets")
    with pytest.raises(ValueError, match="invalid collection name"):
        CaptureWriter(tmp_path, "../news", "timeline")


# -- rotation --------------------------------------------------------------------------------------


def test_rotation_on_the_hour_by_the_clock(tmp_path, clock, store):
    clock.now = datetime(2026, 11, 27, 13, 59, 59, tzinfo=UTC)
    writer = CaptureWriter(tmp_path, "news", "stream", clock=clock, registry=store)
    first = writer.write_batch([line(1)])
    clock.advance(seconds=1)
    second = writer.write_batch([line(2)])
    writer.close()
    assert first.relative_to(tmp_path).as_posix() == "news/2026/11/27/13/news-stream-20261127T135959Z.jsonl.gz"
    assert second.relative_to(tmp_path).as_posix() == "news/2026/11/27/14/news-stream-20261127T140000Z.jsonl.gz"
    assert [r["n"] for r in assert_readable(first)] == [1]
    assert [r["n"] for r in assert_readable(second)] == [2]


def test_idle_rotation_by_timer_closes_and_unregisters(tmp_path, clock, store):
    writer = CaptureWriter(tmp_path, "news", "stream", clock=clock, registry=store)
    path = writer.write_batch([line(1)])
    assert [entry["path"] for entry in store.open_files("news")] == [str(path)]
    assert store.open_files("news")[0]["pid"] == os.getpid()
    clock.now = datetime(2026, 11, 27, 13, 59, 59, 999999, tzinfo=UTC)
    assert writer.rotate_if_due() is False
    assert writer.path == path
    clock.now = datetime(2026, 11, 27, 14, 0, 0, tzinfo=UTC)
    assert writer.rotate_if_due() is True
    assert writer.path is None
    assert store.open_files() == []
    assert writer.rotate_if_due() is False
    assert assert_readable(path) == [{"n": 1, "pad": ""}]
    # an explicit time works as well as the writer's clock
    writer.write_batch([line(2)])
    assert writer.rotate_if_due(datetime(2026, 11, 27, 14, 30, tzinfo=UTC)) is False
    assert writer.rotate_if_due(datetime(2026, 11, 27, 15, 0, tzinfo=UTC)) is True
    writer.close()


def test_shorter_rotation_aligns_to_the_clock(tmp_path, clock):
    clock.now = datetime(2026, 11, 27, 13, 7, 30, tzinfo=UTC)
    writer = CaptureWriter(tmp_path, "news", "stream", clock=clock, rotation=timedelta(minutes=10))
    names = []
    for minutes in (0, 2, 3, 10, 9.99):  # 13:07:30, 13:09:30, 13:12:30, 13:22:30, 13:32:29
        clock.advance(minutes=minutes)
        names.append(writer.write_batch([line(len(names))]).name)
    writer.close()
    assert names == [
        "news-stream-20261127T130730Z.jsonl.gz",
        "news-stream-20261127T130730Z.jsonl.gz",
        "news-stream-20261127T131230Z.jsonl.gz",
        "news-stream-20261127T132230Z.jsonl.gz",
        "news-stream-20261127T133229Z.jsonl.gz",
    ]


def test_names_get_a_suffix_instead_of_reopening(tmp_path, clock, store):
    paths = []
    for n in range(3):
        with CaptureWriter(tmp_path, "news", "timeline", clock=clock, registry=store) as writer:
            paths.append(writer.write_batch([line(n)]))
    assert [p.name for p in paths] == [
        "news-timeline-20261127T133000Z.jsonl.gz",
        "news-timeline-20261127T133000Z-1.jsonl.gz",
        "news-timeline-20261127T133000Z-2.jsonl.gz",
    ]
    assert [assert_readable(p)[0]["n"] for p in paths] == [0, 1, 2]
    assert store.open_files() == []


def test_close_unregisters_and_writers_of_one_collection_register_separately(tmp_path, clock, store):
    timeline = CaptureWriter(tmp_path, "news", "timeline", clock=clock, registry=store)
    users = CaptureWriter(tmp_path, "news", "users", clock=clock, registry=store)
    other = CaptureWriter(tmp_path, "other", "stream", clock=clock, registry=store)
    for writer in (timeline, users, other):
        writer.write_batch([line(1)])
    assert len(store.open_files()) == 3
    assert {Path(e["path"]).name.split("-")[1] for e in store.open_files("news")} == {"timeline", "users"}
    users.close()
    assert [Path(e["path"]) for e in store.open_files("news")] == [timeline.path]
    timeline.close()
    other.close()
    assert store.open_files() == []


# -- failures --------------------------------------------------------------------------------------

_FILE_SIZE_LIMIT_CHILD = textwrap.dedent(
    """
    import os, random, resource, signal, sys
    from datetime import datetime, timezone
    from sfm_archiver.errors import StorageError
    from sfm_archiver.storage.writer import CaptureWriter

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (5000, 5000))
    rng = random.Random(7)
    clock = lambda: datetime(2026, 11, 27, 13, 30, tzinfo=timezone.utc)
    writer = CaptureWriter(sys.argv[1], "news", "timeline", clock=clock)
    for n in range(10):
        noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(3000))
        try:
            writer.write_batch([('{"n": %d, "noise": "%s"}\\n' % (n, noise)).encode()])
        except StorageError as error:
            print("failed", n, writer.lines_written, error, flush=True)
            break
        print("ok", n, flush=True)
    """
)


def test_a_write_cut_short_leaves_no_torn_member(tmp_path):
    """A file size limit makes the third batch's write() stop part way (like a full disk)."""
    result = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMIT_CHILD, str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[:4] == ["ok", "0", "ok", "1"]
    assert words[4:7] == ["failed", "2", "2"]
    assert "cannot write capture batch" in result.stdout
    (path,) = capture_files(tmp_path)
    assert path.stat().st_size < 5000
    assert len(members_of(path)) == 2
    assert [r["n"] for r in assert_readable(path)] == [0, 1]


# -- sealing files of dead writers -----------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def torn_file(path: Path, complete: int, rng: random.Random) -> tuple[int, bytes]:
    """A file of `complete` members plus part of another; returns (good length, good content)."""
    data = [b"".join(line(rng.randrange(10**6), rng.randrange(200)) for _ in range(rng.randrange(1, 30))) for _ in range(complete + 1)]
    members = [compress_member(d, 6) for d in data]
    good = b"".join(members[:complete])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(good + members[-1][: rng.randrange(1, len(members[-1]))])
    return len(good), b"".join(data[:complete])


def test_complete_prefix_length_finds_the_last_whole_member(tmp_path):
    rng = random.Random(1)
    for trial in range(30):
        path = tmp_path / f"t{trial}.jsonl.gz"
        good, _ = torn_file(path, rng.randrange(0, 6), rng)
        assert complete_prefix_length(path) == good


def test_complete_prefix_length_across_many_small_members(tmp_path):
    path = tmp_path / "small.jsonl.gz"
    members = [compress_member(line(n), 6) for n in range(20_000)]  # several read chunks
    path.write_bytes(b"".join(members) + b"\x1f\x8b\x08")
    assert complete_prefix_length(path) == sum(len(m) for m in members)


@pytest.mark.parametrize(
    "damage",
    ["zeros", "garbage", "bad-crc-in-last"],
)
def test_seal_cuts_damaged_tails(tmp_path, damage):
    path = tmp_path / "f.jsonl.gz"
    first, second = compress_member(line(1), 6), compress_member(line(2), 6)
    if damage == "zeros":  # a power cut can leave the size extended with unwritten blocks
        path.write_bytes(first + second + b"\0" * 4096)
        keep = len(first + second)
    elif damage == "garbage":
        path.write_bytes(first + second + b"not gzip at all")
        keep = len(first + second)
    else:
        broken = bytearray(second)
        broken[-8] ^= 0xFF  # CRC32 of the member
        path.write_bytes(first + bytes(broken))
        keep = len(first)
    removed = seal(path)
    assert path.stat().st_size == keep
    assert removed == len(first + second) + {"zeros": 4096, "garbage": 15, "bad-crc-in-last": 0}[damage] - keep
    assert assert_readable(path)[0] == {"n": 1, "pad": ""}
    assert seal(path) == 0


def test_seal_abandoned_files_truncates_torn_tails_and_unregisters(tmp_path, store):
    rng = random.Random(5)
    folder = tmp_path / "archive/news/2026/11/27/13"
    torn = folder / "news-stream-20261127T130000Z.jsonl.gz"
    good_length, content = torn_file(torn, 3, rng)
    intact = folder / "news-stream-20261127T131000Z.jsonl.gz"
    intact.write_bytes(compress_member(line(9), 6))
    never_written = folder / "news-stream-20261127T132000Z.jsonl.gz"
    never_written.touch()
    all_torn = folder / "news-stream-20261127T133000Z.jsonl.gz"
    all_torn.write_bytes(compress_member(line(7), 6)[:10])
    vanished = folder / "news-stream-20261127T134000Z.jsonl.gz"
    pid = dead_pid()
    for path in (torn, intact, never_written, all_torn, vanished):
        store.register_open_file(path, "news", pid)
    torn_size = torn.stat().st_size
    sealed = dict(seal_abandoned_files(store))
    assert sealed == {torn: torn_size - good_length, intact: 0, never_written: 0, all_torn: 10, vanished: 0}
    assert torn.stat().st_size == good_length
    assert gzip.decompress(torn.read_bytes()) == content
    assert not never_written.exists() and not all_torn.exists(), "an empty file is not valid gzip: removed"
    assert store.open_files() == []
    for path in capture_files(tmp_path):
        assert_readable(path)


def test_seal_abandoned_files_leaves_live_writers_alone(tmp_path, clock, store):
    writer = CaptureWriter(tmp_path / "archive", "news", "stream", clock=clock, registry=store)
    live = writer.write_batch([line(1)])
    about_to_be_created = tmp_path / "archive/news/2026/11/27/13/news-stream-20261127T135000Z.jsonl.gz"
    store.register_open_file(about_to_be_created, "news", os.getpid())
    assert seal_abandoned_files(store) == []
    assert {e["path"] for e in store.open_files()} == {str(live), str(about_to_be_created)}
    writer.write_batch([line(2)])
    writer.close()
    assert [r["n"] for r in assert_readable(live)] == [1, 2]


def test_seal_abandoned_files_when_the_pid_was_reused(tmp_path, store):
    """The registered pid is alive but belongs to a process that does not hold the file (e.g.
    the daemon restarted in a container and got the same pid)."""
    path = tmp_path / "news-stream-20261127T130000Z.jsonl.gz"
    good_length, _ = torn_file(path, 2, random.Random(3))
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        store.register_open_file(path, "news", other.pid)
        store.register_open_file(tmp_path / "mine.jsonl.gz", "other", os.getpid())
        (tmp_path / "mine.jsonl.gz").write_bytes(compress_member(line(1), 6))
        assert [p for p, _ in seal_abandoned_files(store, "news")] == [path]
        assert path.stat().st_size == good_length
        assert [e["collection"] for e in store.open_files()] == ["other"]
        assert [p.name for p, _ in seal_abandoned_files(store)] == ["mine.jsonl.gz"]
    finally:
        other.stdin.close()
        other.wait(timeout=30)
