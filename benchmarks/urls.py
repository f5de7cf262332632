"""Link expansion throughput: 5,000 distinct links, 2 hops each, 100 ms per hop.

The simulator runs as its own process (`sfm-archiver simulate`, as in a demo) with a shortener
latency of 100 ms on every hop; each link is `/s/chain/1/<status>/<token>`, a redirect then the
landing page. Every link is on one host, so the per-host bound is set to the overall
concurrency (otherwise it, not concurrency, would be what binds).

Measured:
- the resolver alone (`LinkResolver.resolve_all`), and the whole `fetch_urls` job over capture
  files holding the same links (result lines, WARC of every exchange, the URL cache);
- ideal = hops x latency x links / concurrency: the time if every worker were busy every
  moment with nothing but waiting on the server. Target: elapsed / ideal <= 1.25;
- the SFM way, one link at a time (a HEAD that lets requests follow the redirects), timed on a
  subset and extrapolated to all links (stated in the output).

    python benchmarks/urls.py            # 5,000 links, concurrency 32
    python benchmarks/urls.py --quick    # 500 links
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

from sfm_archiver.config import load_config
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.urls import fetch_urls
from sfm_archiver.linkcheck import LinkCheckSettings, LinkResolver
from sfm_archiver.storage.records import envelope, sfm_metadata
from sfm_archiver.storage.writer import CaptureWriter

LATENCY_MS = 100
HOPS = 2
TARGET = 1.25
STATUSES = (301, 302, 307, 308)
CAPTURED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)


def start_simulator(folder: Path) -> tuple[subprocess.Popen, str]:
    scenario = folder / "scenario.yaml"
    scenario.write_text(f"shortener: {{latency_ms: {LATENCY_MS}}}\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "sfm_archiver", "simulate", "--port", "0", "--scenario", str(scenario)],
        stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if "listening on" not in line:
        process.kill()
        raise SystemExit(f"the simulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1].strip()


def links(base: str, count: int, tag: str) -> list[str]:
    return [f"{base}/s/chain/1/{STATUSES[n % 4]}/{tag}{n}" for n in range(count)]


def resolver_run(urls: list[str], concurrency: int) -> tuple[float, int, int]:
    settings = LinkCheckSettings(concurrency=concurrency, per_host=concurrency, user_agent="sfm-archiver benchmark")
    resolver = LinkResolver(settings)
    results = []
    started = time.monotonic()
    resolver.resolve_all(urls, results.append)
    elapsed = time.monotonic() - started
    good = sum(1 for r in results if r.final_status == 200 and len(r.chain) == HOPS)
    return elapsed, good, resolver.requests_sent


def job_run(folder: Path, base: str, urls: list[str], concurrency: int) -> tuple[float, dict]:
    """The whole job: read captures, resolve, write lines and WARC, cache."""
    config_path = folder / "config.yaml"
    config_path.write_text(
        f"paths: {{archive: {folder}/archive, state: {folder}/state, outbox: {folder}/outbox}}\n"
        f"x: {{bearer_token: benchmark-token, api_base_url: '{base}'}}\n"
        f"urls: {{concurrency: {concurrency}, per_host: {concurrency}, warc: true}}\n"
        "collections: [{name: bench, type: sample_stream}]\n",
        encoding="utf-8",
    )
    config = load_config(config_path)
    meta = sfm_metadata(captured_at=CAPTURED_AT, collection="bench", job="sample_stream")
    with CaptureWriter(config.paths.archive, "bench", "stream", clock=lambda: CAPTURED_AT) as writer:
        for n, url in enumerate(urls):
            post = f'{{"data":{{"id":"{n + 1}","text":"x","entities":{{"urls":[{{"expanded_url":"{url}"}}]}}}}}}'
            writer.append(envelope(post.encode(), meta))
    ctx = JobContext.open(config)
    started = time.monotonic()
    run = fetch_urls(ctx, "bench", CAPTURED_AT.date(), CAPTURED_AT.date())
    return time.monotonic() - started, run


def sequential_run(urls: list[str]) -> float:
    """SFM's way: one link after another, requests following the redirects itself."""
    session = requests.Session()
    session.trust_env = False
    started = time.monotonic()
    for url in urls:
        session.head(url, allow_redirects=True, timeout=10)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 links instead of 5,000")
    parser.add_argument("--links", type=int, help="number of distinct links")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent requests (default 32)")
    args = parser.parse_args()
    count = args.links or (500 if args.quick else 5000)
    sample = 20 if args.quick else 50
    concurrency = args.concurrency
    ideal = HOPS * LATENCY_MS / 1000 * count / concurrency

    with tempfile.TemporaryDirectory(prefix="sfm-urls-bench-") as tmp:
        folder = Path(tmp)
        simulator, base = start_simulator(folder)
        try:
            print(f"{count} distinct links, {HOPS} hops each, {LATENCY_MS} ms per hop, concurrency {concurrency} "
                  f"(per host {concurrency}), {os.cpu_count()} CPUs, simulator in its own process")
            print(f"ideal (hops x latency x links / concurrency): {ideal:.2f} s")
            elapsed, good, sent = resolver_run(links(base, count, "r"), concurrency)
            print(f"resolver alone: {elapsed:.2f} s, {good}/{count} resolved through {HOPS} hops, {sent} requests; "
                  f"elapsed / ideal = {elapsed / ideal:.3f} (target <= {TARGET})")
            job_elapsed, run = job_run(folder, base, links(base, count, "j"), concurrency)
            counts = run["counts"]
            print(f"fetch_urls job (captures in, result lines + WARC of {counts.get('warc_records', 0)} records + "
                  f"cache out): {job_elapsed:.2f} s, {counts.get('resolved', 0)} resolved, result {run['result']}; "
                  f"elapsed / ideal = {job_elapsed / ideal:.3f}")
            seq = sequential_run(links(base, sample, "s"))
            extrapolated = seq / sample * count
            print(f"one at a time like SFM: {seq:.2f} s for {sample} links, extrapolated to {count}: "
                  f"{extrapolated:.1f} s ({extrapolated / 60:.1f} min)")
            print(f"speed-up over one at a time: resolver {extrapolated / elapsed:.1f}x, "
                  f"whole job {extrapolated / job_elapsed:.1f}x")
        finally:
            simulator.terminate()
            simulator.wait(timeout=10)
    return 0 if elapsed / ideal <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
