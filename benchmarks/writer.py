"""Capture writer throughput on realistic X API v2 timeline pages, against plain zlib.

The pages are built deterministically: 100 posts each with the fields and expansions a timeline
harvest asks for (entities, public metrics, context annotations, referenced posts, users, media),
about 100-150 KB per page, wrapped in their `__sfm` envelope. The baseline is `zlib.compress`
of the very same bytes at the same level, in the same process, interleaved with the writer runs
(the best of several rounds is kept, so a busy machine distorts both sides alike).

Policies measured:
  sync at end  one gzip member per page, one fdatasync per account (32 pages): how timeline
               harvesting uses the writer (`sync_every_flush=False`, sync before the checkpoint
               advances). The 1.15x target applies to this one.
  fsync/batch  `write_batch` per page: a member and an fdatasync for every page (the default).
  per account  the 32 pages of an account as ONE member, one fdatasync (the harvester's groups).

Memory: peak RSS (ru_maxrss) after the pages are built and after every round; the writer keeps
nothing between batches, so the growth stays flat however much is written.

    python benchmarks/writer.py           # 320 pages (~40 MB) per round, 7 rounds
    python benchmarks/writer.py --quick   # 64 pages per round, 2 rounds
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import tempfile
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sfm_archiver.state import StateStore
from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.writer import CaptureWriter

TARGET = 1.15
LEVEL = 6
PAGES_PER_ACCOUNT = 32
DISTINCT_PAGES = 64


# -- realistic pages -----------------------------------------------------------------------------


class PageFactory:
    """Deterministic X API v2 `GET /2/users/:id/tweets` pages with expansions."""

    def __init__(self, seed: int = 2026):
        self.rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = ["".join(self.rng.choice(letters) for _ in range(self.rng.randint(2, 10))) for _ in range(3000)]
        self.weights = [1 / rank for rank in range(1, len(self.words) + 1)]  # Zipf, like real text
        self.users = [self._user(n) for n in range(400)]
        self.next_id = 1_862_000_000_000_000_000
        self.clock = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)

    def _sentence(self, low: int, high: int) -> str:
        words = self.rng.choices(self.words, self.weights, k=self.rng.randint(low, high))
        return " ".join(words).capitalize()

    def _id(self) -> str:
        self.next_id += self.rng.randint(10_000, 10_000_000)
        return str(self.next_id)

    def _user(self, n: int) -> dict:
        username = f"{self.rng.choice(self.words)}_{n}"[:15]
        return {
            "id": str(10_000_000 + n * 7919),
            "name": self._sentence(1, 3),
            "username": username,
            "created_at": f"20{self.rng.randint(8, 24):02d}-0{self.rng.randint(1, 9)}-1{self.rng.randint(0, 9)}T0{self.rng.randint(0, 9)}:12:31.000Z",
            "description": self._sentence(5, 25),
            "location": self._sentence(1, 3),
            "profile_image_url": f"https://pbs.twimg.com/profile_images/{self.rng.getrandbits(60)}/{self.rng.getrandbits(32):x}_normal.jpg",
            "protected": False,
            "verified": self.rng.random() < 0.1,
            "url": f"https://t.co/{self.rng.getrandbits(48):x}",
            "public_metrics": {
                "followers_count": self.rng.randint(0, 2_000_000),
                "following_count": self.rng.randint(0, 5000),
                "tweet_count": self.rng.randint(0, 90_000),
                "listed_count": self.rng.randint(0, 3000),
                "like_count": self.rng.randint(0, 50_000),
            },
        }

    def _tweet(self, author: dict) -> dict:
        text = self._sentence(5, 28)
        mentions = self.rng.sample(self.users, self.rng.randint(0, 3))
        tags = self.rng.sample(self.words, self.rng.randint(0, 3))
        links = [f"https://t.co/{self.rng.getrandbits(48):x}" for _ in range(self.rng.randint(0, 2))]
        text = " ".join([*(f"@{m['username']}" for m in mentions), text, *(f"#{t}" for t in tags), *links])
        tweet_id = self._id()
        self.clock -= timedelta(seconds=self.rng.randint(30, 7200))
        entities: dict = {}
        if mentions:
            entities["mentions"] = [{"start": 0, "end": len(m["username"]) + 1, "username": m["username"], "id": m["id"]} for m in mentions]
        if tags:
            entities["hashtags"] = [{"start": 10, "end": 10 + len(t) + 1, "tag": t} for t in tags]
        if links:
            entities["urls"] = [
                {
                    "start": 40, "end": 63, "url": link,
                    "expanded_url": f"https://{self.rng.choice(self.words)}.example.org/{'/'.join(self.rng.choices(self.words, k=3))}",
                    "display_url": f"{self.rng.choice(self.words)}.example.org/…",
                    "status": 200, "title": self._sentence(3, 10), "description": self._sentence(5, 15),
                    "unwound_url": f"https://{self.rng.choice(self.words)}.example.org/{self.rng.getrandbits(40):x}",
                }
                for link in links
            ]
        tweet = {
            "id": tweet_id,
            "text": text,
            "edit_history_tweet_ids": [tweet_id],
            "author_id": author["id"],
            "conversation_id": tweet_id,
            "created_at": self.clock.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "lang": self.rng.choice(["en", "en", "en", "es", "fr", "de", "und"]),
            "possibly_sensitive": False,
            "reply_settings": "everyone",
            "source": "Twitter Web App",
            "edit_controls": {"edits_remaining": 5, "is_edit_eligible": True, "editable_until": self.clock.strftime("%Y-%m-%dT%H:%M:%S.000Z")},
            "public_metrics": {
                "retweet_count": self.rng.randint(0, 5000), "reply_count": self.rng.randint(0, 500),
                "like_count": self.rng.randint(0, 20_000), "quote_count": self.rng.randint(0, 300),
                "bookmark_count": self.rng.randint(0, 300), "impression_count": self.rng.randint(0, 900_000),
            },
        }
        if entities:
            tweet["entities"] = entities
        if self.rng.random() < 0.35:
            tweet["context_annotations"] = [
                {
                    "domain": {"id": str(self.rng.randint(10, 200)), "name": self._sentence(1, 3), "description": self._sentence(4, 12)},
                    "entity": {"id": str(self.rng.getrandbits(60)), "name": self._sentence(1, 3)},
                }
                for _ in range(self.rng.randint(1, 3))
            ]
        if self.rng.random() < 0.3:
            tweet["referenced_tweets"] = [{"type": self.rng.choice(["retweeted", "quoted", "replied_to"]), "id": self._id()}]
        if self.rng.random() < 0.2:
            tweet["attachments"] = {"media_keys": [f"3_{self.rng.getrandbits(60)}"]}
        return tweet

    def page(self, account: dict) -> bytes:
        tweets = [self._tweet(account) for _ in range(100)]
        referenced = [self._tweet(self.rng.choice(self.users)) for _ in range(self.rng.randint(5, 15))]
        media = [
            {"media_key": key, "type": "photo", "url": f"https://pbs.twimg.com/media/{self.rng.getrandbits(60):x}.jpg",
             "width": 1200, "height": 675, "alt_text": self._sentence(3, 15)}
            for t in tweets if "attachments" in t for key in t["attachments"]["media_keys"]
        ]
        users = [account, *self.rng.sample(self.users, 20)]
        body = {
            "data": tweets,
            "includes": {"users": users, "tweets": referenced, "media": media},
            "meta": {
                "result_count": 100, "newest_id": tweets[0]["id"], "oldest_id": tweets[-1]["id"],
                "next_token": f"7140dibdnow9c7btw4{self.rng.getrandbits(80):x}",
            },
        }
        return json.dumps(body, ensure_ascii=False).encode()


def build_lines(count: int) -> list[bytes]:
    """`count` capture lines (page + `__sfm`), account by account."""
    factory = PageFactory()
    lines = []
    captured = datetime(2026, 11, 27, 13, 0, tzinfo=timezone.utc)
    for n in range(count):
        account = factory.users[(n // PAGES_PER_ACCOUNT) % len(factory.users)]
        meta = sfm_metadata(
            captured_at=captured + timedelta(milliseconds=n), collection="bench", job="user_timeline",
            url=f"https://api.twitter.com/2/users/{account['id']}/tweets?max_results=100",
            account={"id": account["id"], "username": account["username"]},
        )
        lines.append(envelope(factory.page(account), meta))
    return lines


# -- measurements --------------------------------------------------------------------------------------


class Mode:
    """One way of writing; `account` handles the pages of one account."""

    name = ""

    def open(self, folder: Path) -> None:
        self.store = StateStore(folder / "state")
        self.writer = self.make_writer(folder)

    def make_writer(self, folder: Path) -> CaptureWriter:
        return CaptureWriter(folder / "archive", "bench", "timeline", registry=self.store, compresslevel=LEVEL, sync_every_flush=False)

    def account(self, pages: list[bytes]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.writer.close()
        self.store.close()


class ZlibBaseline(Mode):
    name = "zlib.compress (baseline)"

    def open(self, folder: Path) -> None:
        pass

    def account(self, pages: list[bytes]) -> None:
        for page in pages:
            zlib.compress(page, LEVEL)

    def close(self) -> None:
        pass


class SyncAtEnd(Mode):
    name = "writer, sync at end"

    def account(self, pages: list[bytes]) -> None:
        for page in pages:
            self.writer.append(page)
            self.writer.flush()
        self.writer.sync()


class FsyncPerBatch(Mode):
    name = "writer, fsync/batch"

    def make_writer(self, folder: Path) -> CaptureWriter:
        return CaptureWriter(folder / "archive", "bench", "timeline", registry=self.store, compresslevel=LEVEL)

    def account(self, pages: list[bytes]) -> None:
        for page in pages:
            self.writer.write_batch([page])


class MemberPerAccount(Mode):
    name = "writer, per account"

    def account(self, pages: list[bytes]) -> None:
        self.writer.append(b"".join(pages))
        self.writer.flush()
        self.writer.sync()


MODES = (ZlibBaseline, SyncAtEnd, FsyncPerBatch, MemberPerAccount)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_round(lines: list[bytes], folder: Path, round_no: int) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of each mode over all accounts of one round. The modes take turns
    account by account (in rotating order), so a busy machine slows them alike."""
    modes = [mode() for mode in MODES]
    for index, mode in enumerate(modes):
        (folder / str(index)).mkdir()
        mode.open(folder / str(index))
    spent = {mode.name: {"wall": 0.0, "cpu": 0.0} for mode in modes}
    for turn, start in enumerate(range(0, len(lines), PAGES_PER_ACCOUNT)):
        pages = lines[start:start + PAGES_PER_ACCOUNT]
        shift = round_no + turn
        for mode in modes[shift % len(modes):] + modes[:shift % len(modes)]:
            wall, cpu = time.perf_counter(), time.process_time()
            mode.account(pages)
            spent[mode.name]["wall"] += time.perf_counter() - wall
            spent[mode.name]["cpu"] += time.process_time() - cpu
    for mode in modes:
        mode.close()
    return spent


def measure(lines: list[bytes], rounds: int, scratch: Path) -> tuple[list[dict], list[float]]:
    results, peaks = [], []
    for round_no in range(rounds):
        folder = scratch / f"round{round_no}"
        folder.mkdir()
        results.append(measure_round(lines, folder, round_no))
        shutil.rmtree(folder)
        peaks.append(peak_rss_mb())
    return results, peaks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--dir", type=Path, help="where to write (default: a temporary folder); the disk decides fsync costs")
    args = parser.parse_args()
    pages, rounds = (64, 2) if args.quick else (320, 7)

    started = time.perf_counter()
    distinct = build_lines(min(pages, DISTINCT_PAGES))
    lines = [distinct[n % len(distinct)] for n in range(pages)]
    total = sum(len(line) for line in lines)
    rss_after_build = peak_rss_mb()
    compressed = sum(len(zlib.compress(line, LEVEL)) for line in distinct) / sum(len(line) for line in distinct)
    print(f"pages: {pages} per round x {rounds} rounds, {total / pages / 1000:.0f} KB per page on average, "
          f"{total / 1e6:.1f} MB per round, level {LEVEL} compresses to {compressed:.0%} (built in {time.perf_counter() - started:.1f} s)")

    with tempfile.TemporaryDirectory(prefix="sfm-writer-bench-", dir=args.dir) as scratch:
        results, peaks = measure(lines, rounds, Path(scratch))

    baseline = ZlibBaseline.name
    ratios = {
        mode.name: {
            clock: statistics.median(r[mode.name][clock] / r[baseline][clock] for r in results) for clock in ("wall", "cpu")
        }
        for mode in MODES
    }
    print(f"\n{'mode':<26}{'MB/s (wall)':>12}{'x zlib wall':>13}{'x zlib cpu':>12}   (medians of {rounds} rounds)")
    for mode in MODES:
        seconds = statistics.median(r[mode.name]["wall"] for r in results)
        print(f"{mode.name:<26}{total / seconds / 1e6:>12.1f}{ratios[mode.name]['wall']:>13.3f}{ratios[mode.name]['cpu']:>12.3f}")
    print(f"\ntarget: writer with sync_every_flush=False and one fdatasync per account <= {TARGET:.2f}x zlib")
    for mode in (SyncAtEnd, MemberPerAccount):
        value = ratios[mode.name]["wall"]
        print(f"  {mode.name:<24} {value:.3f}x  {'meets' if value <= TARGET else 'MISSES'} the target")
    print(f"fsync after every page: {ratios[FsyncPerBatch.name]['wall']:.3f}x zlib on this disk (not the target's policy)")
    print(f"peak RSS: {rss_after_build:.1f} MB once the pages are built; after each round: "
          f"{', '.join(f'{p:.1f}' for p in peaks)} MB")
    print(f"  first round +{peaks[0] - rss_after_build:.1f} MB (one batch, its compressed member, zlib state); "
          f"rounds 2-{rounds}: {max(peaks) - peaks[0]:+.1f} MB over {(rounds - 1) * pages * (len(MODES) - 1)} more pages written")
    worst = max(ratios[SyncAtEnd.name]["wall"], ratios[MemberPerAccount.name]["wall"])
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
