"""Export throughput per format, peak memory of a large deduplicated export, and twarc-csv beside it.

Generates timeline captures (gzip JSON lines of 100-post pages rendered by the simulator's tweet
factory, authors and referenced posts in `includes`, one page in ten captured twice) in a
temporary archive, then runs `sfm-archiver export` as a separate process per format and reports:
- posts per second per format (wall and CPU seconds of the export process; `--dedupe latest`,
  so each post capture is read twice: the index pass and the writing pass), the median of
  `--repeat` runs (5; XLSX one), since on a shared machine one run may take a third longer than the next
- peak RSS of a `--dedupe latest` CSV export of `--rss-posts` posts (2 million by default)
- the baseline: `twarc2 csv` (twarc-csv 0.7.2 with a pandas < 3 it works with, in a virtualenv
  this script makes under the cache folder) on the same posts, flattened beforehand by `twarc2
  flatten` (not timed), and the ratio of the CSV export's posts/s to it. twarc-csv needs
  `--extra-input-columns author.public_metrics.like_count`, or it drops every batch (twarc-csv
  issue 67); both runs are shown.
Everything but the virtualenv is removed afterwards. The export uses every core (`--jobs`
default), so the floor is judged on wall time; CPU seconds (the export's worker processes
included) show the cost.

    python benchmarks/export.py                       # 200,000 posts per format, 2 million for RSS
    python benchmarks/export.py --posts 20000 --rss-posts 100000 --skip-twarc
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sfm_archiver.platforms.x_fields import TWEET_FIELDS, USER_FIELDS
from sfm_archiver.simulator.scenario import Scenario
from sfm_archiver.simulator.tweets import TweetFactory, UserView, make_id
from sfm_archiver.storage import layout
from sfm_archiver.timeutil import rfc3339_ms

FORMATS = ("csv", "tsv", "jsonl", "parquet", "ids", "xlsx")
SLOW_FORMATS = ("xlsx",)  # run once: a minute per run, xlsxwriter's own speed
COLLECTION = "bench"
PAGE = 100
PAGES_PER_FILE = 500
POOL = 3000
TWARC_CSV = "twarc-csv==0.7.2"
PANDAS = "pandas<3"  # pandas 3 removed DataFrame.applymap, which twarc-csv 0.7.2 calls
BASE_URL = "http://127.0.0.1:1"
FLOOR = 50_000  # posts/s for CSV and Parquet from gzip captures (issue 14)


def post_pool(count: int) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    """Posts rendered by the simulator's factory, with the users and referenced posts they need."""
    factory = TweetFactory(seed=7, links=Scenario.from_dict({}).links)
    fields = set(TWEET_FIELDS)
    users: dict[str, dict] = {}
    referenced: dict[str, dict] = {}
    posts = []
    start_ms = 1_760_000_000_000
    for n in range(count):
        author = str(1000 + n % 200)
        users.setdefault(author, factory.user(UserView(author, f"account_{author}", f"Account {author}", 1262304000000,
                                                       tweet_count=5000), set(USER_FIELDS), BASE_URL))
        tweet_id = make_id(start_ms + n * 1000, n % 1000)
        kind = factory.kind_of(tweet_id)
        posts.append(factory.tweet(tweet_id, author, kind, fields, BASE_URL))
        reference = factory.reference_of(tweet_id, kind)
        if reference:
            ref = factory.external_tweet(reference[0], fields, BASE_URL)
            referenced[ref["id"]] = ref
            external = factory.external_user(reference[1])
            users.setdefault(external.id, factory.user(external, set(USER_FIELDS), BASE_URL))
    return posts, users, referenced


def write_archive(root: Path, total: int) -> int:
    """Pages of `total` distinct posts, one page in ten captured again later; returns post captures."""
    pool, users, referenced = post_pool(min(POOL, total))
    first_id, captures, handle = 2_000_000_000_000_000_000, 0, None
    moment = datetime(2026, 11, 1, tzinfo=timezone.utc)
    recent: list[list[dict]] = []
    for number, start in enumerate(range(0, total, PAGE)):
        if number % PAGES_PER_FILE == 0:
            if handle is not None:
                handle.close()
            moment = moment.replace(minute=0, second=0) + timedelta(hours=1)
            folder = layout.hour_folder(root, COLLECTION, moment)
            folder.mkdir(parents=True, exist_ok=True)
            handle = gzip.open(folder / layout.capture_name(COLLECTION, "timeline", moment), "wb", compresslevel=1)
        data = []
        for n in range(start, min(start + PAGE, total)):
            post_id = str(first_id + n)
            data.append({**pool[n % len(pool)], "id": post_id, "edit_history_tweet_ids": [post_id],
                         "conversation_id": post_id})
        recent = (recent + [data])[-5:]
        moment += timedelta(seconds=1)
        handle.write(page_of(data, users, referenced, moment))
        captures += len(data)
        if number % 10 == 9:  # a re-capture of an earlier page (dedupe has work to do)
            handle.write(page_of(recent[0], users, referenced, moment + timedelta(milliseconds=500)))
            captures += len(recent[0])
    if handle is not None:
        handle.close()
    return captures


def page_of(data: list[dict], users: dict, referenced: dict, moment: datetime) -> bytes:
    refs = [referenced[r["id"]] for post in data for r in post.get("referenced_tweets", []) if r["id"] in referenced]
    wanted = {post["author_id"] for post in data + refs} | {p.get("in_reply_to_user_id") for p in data}
    page = {
        "data": data,
        "includes": {"users": [users[u] for u in wanted if u in users], "tweets": refs},
        "meta": {"result_count": len(data), "newest_id": data[0]["id"], "oldest_id": data[-1]["id"]},
        "__sfm": {"captured_at": rfc3339_ms(moment), "collection": COLLECTION, "job": "user_timeline",
                  "account": {"id": data[0]["author_id"], "username": "x"}, "version": "bench"},
    }
    return json.dumps(page, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def timed(command: list[str], env: dict | None = None) -> dict:
    """Run a process to its end; wall seconds, CPU seconds and peak RSS (MB) of it alone. Its
    output goes to files (a pipe nobody reads would stall it)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - began
        out.seek(0)
        err.seek(0)
        texts = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{texts[1][-3000:]}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "out": texts[0], "err": texts[1]}


def export(archive: Path, out: Path, fmt: str, *extra: str) -> dict:
    return timed([sys.executable, "-m", "sfm_archiver", "export", COLLECTION, "--source", str(archive), "--out", str(out),
                  "--format", fmt, *extra])


def twarc_venv() -> Path:
    """A virtualenv with twarc-csv 0.7.2 and a pandas it works with, made once under the cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sfm-archiver-bench" / "twarc-csv-0.7.2"
    python = cache / "bin" / "python"
    if not (cache / "bin" / "twarc2").exists():
        subprocess.run([sys.executable, "-m", "venv", str(cache)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", TWARC_CSV, PANDAS], check=True,
                       stdout=subprocess.DEVNULL)
    return cache


def run_twarc(archive: Path, work: Path, posts: int) -> tuple[dict, dict, int, int]:
    venv = twarc_venv()
    home = work / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    pages = work / "pages.jsonl"
    with open(pages, "wb") as sink:
        for path in sorted(archive.rglob("*.jsonl.gz")):
            with gzip.open(path, "rb") as source:
                shutil.copyfileobj(source, sink)
    flat = work / "flat.jsonl"
    twarc2 = [str(venv / "bin" / "twarc2"), "--bearer-token", "unused", "--log", str(work / "twarc.log")]
    timed(twarc2 + ["flatten", str(pages), str(flat)], env)
    fixed = timed(twarc2 + ["csv", "--extra-input-columns", "author.public_metrics.like_count", str(flat),
                            str(work / "twarc.csv")], env)
    fixed_rows = count_csv_rows(work / "twarc.csv")
    plain = timed(twarc2 + ["csv", str(flat), str(work / "twarc-plain.csv")], env)
    return fixed, plain, fixed_rows, count_csv_rows(work / "twarc-plain.csv")


def read_floor(archive: Path) -> float:
    """CPU seconds to decompress and parse every capture line once: what any reader pays, and the
    speed this machine allows at the moment (it may be shared)."""
    began = time.process_time()
    for path in sorted(archive.rglob("*.jsonl.gz")):
        with gzip.open(path, "rb") as handle:
            for line in handle:
                json.loads(line)
    return time.process_time() - began


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (its CPU seconds and RSS with it)."""
    return sorted(runs, key=lambda run: run["wall"])[len(runs) // 2]


def count_csv_rows(path: Path) -> int:
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def rate(posts: int, seconds: float) -> str:
    return f"{posts / seconds:>10,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--posts", type=int, default=200_000, help="distinct posts for the per-format runs")
    parser.add_argument("--rss-posts", type=int, default=2_000_000, help="distinct posts for the memory run (0: skip)")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs per format (XLSX: one), the median shown: this machine's speed varies from run to run")
    parser.add_argument("--skip-twarc", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sfm-export-bench-") as temp:
        work = Path(temp)
        archive = work / "archive"
        began = time.perf_counter()
        captures = write_archive(archive, args.posts)
        print(f"{args.posts:,} posts ({captures:,} captures) in {sum(1 for _ in archive.rglob('*.gz'))} gzip files, "
              f"{sum(p.stat().st_size for p in archive.rglob('*.gz')) / 2**20:,.0f} MiB, "
              f"generated in {time.perf_counter() - began:.0f} s")
        floor = read_floor(archive)
        print(f"calibration: gunzip + json.loads alone (no export) reads {rate(captures, floor).strip()} posts/s CPU here")
        print(f"{'format':<8} {'posts/s wall':>12} {'posts/s CPU':>12} {'wall s':>8} {'CPU s':>7} {'RSS MB':>7}")
        results = {}
        for fmt in args.formats.split(","):
            runs = []
            for _run in range(1 if fmt in SLOW_FORMATS else args.repeat):
                runs.append(export(archive, work / f"out-{fmt}", fmt))
                shutil.rmtree(work / f"out-{fmt}")
            result = results[fmt] = median_run(runs)
            spread = f"  ({len(runs)} runs, wall {min(r['wall'] for r in runs):.1f}-{max(r['wall'] for r in runs):.1f} s)"
            print(f"{fmt:<8} {rate(captures, result['wall']):>12} {rate(captures, result['cpu']):>12} "
                  f"{result['wall']:8.1f} {result['cpu']:7.1f} {result['rss_mb']:7.0f}{spread if len(runs) > 1 else ''}")
        for fmt in ("csv", "parquet"):
            if fmt in results:
                wall_rate = captures / results[fmt]["wall"]
                print(f"floor for {fmt}: {FLOOR:,} posts/s (wall, every core of this machine): "
                      f"{'met' if wall_rate >= FLOOR else 'NOT met'} ({wall_rate:,.0f} posts/s wall, "
                      f"{captures / results[fmt]['cpu']:,.0f} per CPU second, {os.cpu_count()} cores)")
        if not args.skip_twarc and "csv" in results:
            fixed, plain, fixed_rows, plain_rows = run_twarc(archive, work, args.posts)
            ours = results["csv"]
            print(f"twarc-csv 0.7.2 (+like_count column): {rate(captures, fixed['wall'])} posts/s wall, "
                  f"{rate(captures, fixed['cpu'])} posts/s CPU, {fixed_rows:,} rows")
            print(f"twarc-csv 0.7.2 as installed:          {rate(captures, plain['wall'])} posts/s wall, "
                  f"{rate(captures, plain['cpu'])} posts/s CPU, {plain_rows:,} rows (batches dropped)")
            print(f"ratio sfm-archiver csv / twarc-csv: {fixed['wall'] / ours['wall']:.1f}x wall, "
                  f"{fixed['cpu'] / ours['cpu']:.1f}x CPU (target >= 10x)")
        shutil.rmtree(archive)
        if args.rss_posts:
            began = time.perf_counter()
            captures = write_archive(archive, args.rss_posts)
            print(f"memory run: {args.rss_posts:,} posts ({captures:,} captures), generated in "
                  f"{time.perf_counter() - began:.0f} s")
            result = export(archive, work / "out-rss", "csv", "--dedupe", "latest")
            rows = sum(int(line.split(": ")[1].split(" rows")[0].replace(",", ""))
                       for line in (work / "out-rss" / "README.txt").read_text().splitlines()
                       if line.startswith(f"{COLLECTION}_") and line.endswith(" rows"))
            print(f"csv --dedupe latest: peak RSS {result['rss_mb']:.0f} MB (target < 250), {rows:,} rows, "
                  f"{result['wall']:.0f} s wall, {result['cpu']:.0f} s CPU, {rate(captures, result['wall'])} posts/s wall")


if __name__ == "__main__":
    main()
