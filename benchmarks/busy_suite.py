"""The whole test suite beside a CPU hog: the suite must pass on a busy 2-core machine.

Starts one hog process whose workers keep every core busy (at the same priority as the tests),
runs the README's test command with a bare environment (as `.ci/run` does), and prints the
result and the wall time next to a run without the hog when `--baseline` is given. A test that
waits on a wall-clock bound instead of an event fails here first.

    python benchmarks/busy_suite.py                 # the suite beside the hog
    python benchmarks/busy_suite.py --baseline      # and alone, for the time ratio
    python benchmarks/busy_suite.py -- tests/streams  # a part of the suite
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}


def _spin(stop: multiprocessing.Event) -> None:
    value = 0
    while not stop.is_set():
        for _ in range(100_000):
            value = (value * 31 + 7) % 1_000_003


def run_suite(pytest_args: list[str]) -> tuple[int, float]:
    """Run pytest as the README says, in a bare environment; return (exit code, seconds)."""
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
    code = subprocess.call(command, cwd=ROOT, env=BARE_ENV)
    return code, time.monotonic() - started


def run_beside_hog(pytest_args: list[str], workers: int) -> tuple[int, float]:
    stop = multiprocessing.Event()
    hogs = [multiprocessing.Process(target=_spin, args=(stop,), daemon=True) for _ in range(workers)]
    for hog in hogs:
        hog.start()
    try:
        return run_suite(pytest_args)
    finally:
        stop.set()
        for hog in hogs:
            hog.join(timeout=5)
            if hog.is_alive():
                hog.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", action="store_true", help="also run the suite alone, for the time ratio")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="hog workers (default: one per core)")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    baseline = run_suite(args.pytest_args) if args.baseline else None
    busy = run_beside_hog(args.pytest_args, args.workers)
    print(f"beside a {args.workers}-worker CPU hog: exit {busy[0]}, {busy[1]:.0f} s")
    if baseline:
        print(f"alone: exit {baseline[0]}, {baseline[1]:.0f} s; slowdown {busy[1] / baseline[1]:.2f}x")
    return busy[0] or (baseline[0] if baseline else 0)


if __name__ == "__main__":
    sys.exit(main())
