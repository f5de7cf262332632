"""`simulate`: the X API v2 simulator as a standalone server."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "simulate",
        help="run the X API v2 simulator on 127.0.0.1",
        description="Run the X API v2 simulator (users, timelines, streams, rules, a URL shortener) on "
        "127.0.0.1. The scenario file format is described in docs/simulator.md.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: a free port, printed)")
    parser.add_argument("--scenario", type=Path, help="scenario YAML (accounts, rates, faults, lifecycle script)")
    parser.set_defaults(handler=simulate)


def simulate(args: argparse.Namespace) -> int:
    from sfm_archiver.simulator import run_simulator

    run_simulator(args.port, args.scenario, announce=lambda line: print(line, flush=True))
    return 0
