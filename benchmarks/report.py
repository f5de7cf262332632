"""How long `sfm-archiver report` takes on a big state store: 10,000 accounts and a year of runs.

Reuses the state-store generator of benchmarks/status.py (16 timeline collections with runs every
15 minutes, 4 streams with per-minute counts and reconnects, daily bags) and adds 20,000 ledger
events and hourly disk samples. It times `write_report` over the whole year (`--days 365`) and
over the default 30 days, in CPU seconds (what load disturbs least) and wall seconds. The
baseline is the same report on an empty state store (fixed costs: the charts themselves), so the
ratio shows what the data volume costs. Target: under 5 s for the year.

    python benchmarks/report.py            # a year of runs
    python benchmarks/report.py --quick    # a month of runs
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from status import ACCOUNTS, populate, write_config  # noqa: E402  (the generator of benchmarks/status.py)

from sfm_archiver.config import load_config  # noqa: E402
from sfm_archiver.ledger import Ledger  # noqa: E402
from sfm_archiver.notify.store import NotifyStore  # noqa: E402
from sfm_archiver.report import write_report  # noqa: E402
from sfm_archiver.state import StateStore  # noqa: E402

TARGET_SECONDS = 5.0
LEDGER_EVENTS = 20_000


def add_ledger_and_disk(state_dir: Path, now: datetime, days: int, rng: random.Random) -> None:
    """Ledger lines written directly (one file, chained like the real one is not needed here) and disk samples."""
    import json

    events = ("renamed", "suspended", "protected", "unsuspended", "deactivated", "added")
    start = now - timedelta(days=days)
    with open(state_dir / "ledger.jsonl", "w") as handle:
        for seq in range(1, LEDGER_EVENTS + 1):
            at = start + timedelta(seconds=rng.uniform(0, days * 86400))
            handle.write(json.dumps({"seq": seq, "at": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "platform": "x",
                                     "account_id": str(1000000 + rng.randrange(ACCOUNTS)), "event": rng.choice(events),
                                     "from": None, "to": None, "observed_by": {"job": "update_usernames", "run": "r"},
                                     "prev": "0" * 64}) + "\n")
    store = StateStore(state_dir)
    notify = NotifyStore(store)
    with store.transaction():
        for hour in range(days * 24):
            notify.add_disk_sample("archive", start + timedelta(hours=hour), 4 * 10**12 - hour * 10**8, 8 * 10**12)
    store.close()


def measure(config_path: Path, days: int, repeat: int) -> tuple[float, float]:
    """Best CPU and wall seconds of `repeat` reports."""
    config = load_config(config_path)
    best_cpu = best_wall = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_SELF)
        began = time.perf_counter()
        write_report(config, config_path.parent / "site", days)
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_SELF)
        best_cpu = min(best_cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        best_wall = min(best_wall, wall)
    return best_cpu, best_wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a month of runs instead of a year")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    days = 30 if args.quick else 365
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "empty").mkdir()
        empty_config = write_config(root / "empty")
        StateStore(root / "empty" / "state").close()
        big_config = write_config(root)
        store = StateStore(root / "state")
        began = time.perf_counter()
        counts = populate(store, datetime.now(timezone.utc), days, rng)
        store.close()
        add_ledger_and_disk(root / "state", datetime.now(timezone.utc), days, rng)
        print(f"state store: {counts['accounts']:,} accounts, {counts['runs']:,} runs over {days} days, "
              f"{counts['stream_minutes']:,} stream minutes, {counts['bags']:,} bags, {LEDGER_EVENTS:,} ledger events; "
              f"built in {time.perf_counter() - began:.1f} s")
        measure(empty_config, 30, 1)  # warm-up: imports matplotlib, builds its font cache
        base_cpu, base_wall = measure(empty_config, days, args.repeat)
        month_cpu, month_wall = measure(big_config, 30, args.repeat)
        year_cpu, year_wall = measure(big_config, days, args.repeat)
        size = (root / "site" / "index.html").stat().st_size
        assert Ledger(root / "state").path.exists()
    print(f"report, empty store:            {base_cpu:6.2f} s CPU {base_wall:6.2f} s wall")
    print(f"report, big store, 30 days:     {month_cpu:6.2f} s CPU {month_wall:6.2f} s wall   ratio {month_cpu / base_cpu:4.1f}x (CPU)")
    print(f"report, big store, {days} days:   {year_cpu:6.2f} s CPU {year_wall:6.2f} s wall   ratio {year_cpu / base_cpu:4.1f}x (CPU); "
          f"page {size / 1e6:.1f} MB")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    verdict = "within" if year_cpu < TARGET_SECONDS else "OVER"
    print(f"report over {days} days on the big store: {year_cpu:.2f} s of CPU, {verdict} the {TARGET_SECONDS:.0f} s target")
    return 0 if year_cpu < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
