"""Soak: the CI chaos day made long, with at least 100 SIGKILLs, then every invariant checked.

    python benchmarks/soak.py                 # the full soak: >= 100 kills (about 15 minutes)
    python benchmarks/soak.py --quick         # a short day with 10 kills (about 2 minutes)
    python benchmarks/soak.py --seed 1234     # replay a run (the seed is printed first)
    python benchmarks/soak.py --kills 300 --minutes 45 --dir /var/tmp/soak   # longer still

Same scenario as tests/chaos/test_chaos.py (see tests/chaos/engine.py): the real daemon
(`sfm-archiver run`) against the simulator, account lifecycle events, stream disconnects,
stalls and 429s, 5xx, latency spikes, truncated and malformed bodies, a usage cap hit and
lifted, SIGHUP reloads valid and invalid, and the daemon killed with SIGKILL at random moments
and restarted at once. Prints the counts (kills, restarts, posts published/captured, messages
sent/captured, gaps, bags made/validated, ledger events expected/found) and every violation;
exit status 0 only when there are none. The work folder is kept (`--dir`) for inspection.

The figures a soak is judged by are counts, not timings: zero violations over the whole run.
As a baseline the same day (same seed, same trouble plan, up to 2 minutes) first runs without
any kill in the same script, so violations and the share of stream messages captured are shown
for both: what the kills cost is the difference (every message missed must fall in a recorded
break, which the checker enforces).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.chaos.engine import ChaosSettings, run_chaos, seed_from_environment  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short day with 10 kills")
    parser.add_argument("--kills", type=int, default=None, help="at least this many SIGKILLs (default 100)")
    parser.add_argument("--minutes", type=float, default=None, help="length of the day (default: enough for --kills)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a new temporary folder, kept)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the day without kills")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # so the daemon and the simulator are stopped too
    kills = args.kills or (10 if args.quick else 100)
    gap = (3.0, 9.0)
    seconds = args.minutes * 60 if args.minutes else kills * sum(gap) / 2 * 1.05
    seed = args.seed if args.seed is not None else seed_from_environment()
    root = args.dir or Path(tempfile.mkdtemp(prefix="sfm-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"soak: seed {seed}, day of {seconds / 60:.1f} min, at least {kills} kills, work folder {root}", flush=True)

    baseline = None
    if not args.no_baseline:
        quiet = ChaosSettings(seed=seed, duration=min(seconds, 120.0), min_kills=0, kill_gap=(1e9, 1e9),
                              log=lambda line: None)
        baseline = run_chaos(root / "no-kills", quiet)
        print("\n== baseline: the same day without kills ==", flush=True)
        print(baseline.summary(), flush=True)

    started = time.monotonic()
    settings = ChaosSettings(seed=seed, duration=seconds, min_kills=kills, kill_gap=gap,
                             log=lambda line: print(line, flush=True))
    result = run_chaos(root / "chaos", settings)
    print("\n== soak ==", flush=True)
    print(result.summary(), flush=True)
    print(f"wall time: {time.monotonic() - started:.0f}s", flush=True)
    if baseline is not None and baseline.report is not None and result.report is not None:
        print_ratios(baseline, result)
    return 0 if result.ok and (baseline is None or baseline.ok) else 1


def print_ratios(quiet, chaos) -> None:
    def kept(run) -> float:
        counts = run.report.counts
        sent = counts["stream_messages_sent_search"] + counts["stream_messages_sent_sample"]
        got = counts["stream_messages_captured_search"] + counts["stream_messages_captured_sample"]
        return got / sent if sent else 1.0

    print("\n== soak against the day without kills ==")
    print(f"violations: soak {len(chaos.report.violations)} / without kills {len(quiet.report.violations)}")
    print(f"stream messages captured per sent: soak {kept(chaos):.4f} / without kills {kept(quiet):.4f} "
          f"(ratio {kept(chaos) / kept(quiet):.4f}; every miss lies in a recorded break)")
    for name in ("kills", "stream_gaps"):
        value = chaos.counts[name] if name in chaos.counts else chaos.report.counts[name]
        base = quiet.counts[name] if name in quiet.counts else quiet.report.counts[name]
        print(f"{name}: soak {value} / without kills {base}")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
