"""`export`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sfm_archiver.cli.common import Progress, add_config_option, config_path, load


def register(commands: argparse._SubParsersAction) -> None:
    from sfm_archiver.export.columns import COLUMNS
    from sfm_archiver.export.run import DEDUPE, DEFAULT_SEGMENT
    from sfm_archiver.export.writers import FORMATS

    parser = commands.add_parser(
        "export",
        help="write captures as CSV, TSV, XLSX, JSON lines, Parquet or post ids",
        description="One row per post (author and referenced posts joined, long posts' full text, where links "
        "led), from the configured archive or from --source archive folders, bags (folders or .tar) and "
        "outboxes (bags verified first). Writes OUT/<name>_001.<ext>, ..., README.txt and manifest-sha256.txt; "
        "never changes a source. Exit 0 when every input was read whole, 1 when something was skipped "
        "(listed in README.txt and here; the export is still written), 2 for a wrong command line. "
        "Columns: " + ", ".join(column.name for column in COLUMNS) + ".",
    )
    add_config_option(parser)
    parser.add_argument("collections", nargs="+", metavar="COLLECTION", help="collections to export")
    parser.add_argument("--format", default="csv", choices=tuple(FORMATS), help="file format (default: csv)")
    parser.add_argument("--out", metavar="DIR", help="export folder, new or empty (default: ./<name>_export_<time>)")
    parser.add_argument("--start", metavar="DATE", help="first date or time, UTC (2026-11-27 or 2026-11-27T13:00Z)")
    parser.add_argument("--end", metavar="DATE", help="last date (inclusive) or time (exclusive), UTC")
    parser.add_argument("--by", default="posted", choices=("posted", "captured"),
                        help="the time --start/--end apply to (default: posted)")
    parser.add_argument("--account", action="append", default=[], metavar="NAME_OR_ID",
                        help="only posts by this account: its id or any username it ever had (repeatable)")
    parser.add_argument("--kind", choices=("timeline", "stream"), help="only timeline or only stream captures")
    parser.add_argument("--dedupe", default="latest", choices=DEDUPE,
                        help="a post captured several times: its latest capture, its first, or every one (default: latest)")
    parser.add_argument("--segment", type=int, default=DEFAULT_SEGMENT, metavar="ROWS",
                        help=f"rows per file (default: {DEFAULT_SEGMENT:,})")
    parser.add_argument("--source", action="append", default=[], metavar="PATH",
                        help="archive folder, bag folder, .tar bag or outbox to read (repeatable; default: the archive)")
    parser.add_argument("--columns", metavar="LIST", help="comma-separated columns, or 'all' (adds 'extra')")
    parser.add_argument("--jobs", type=int, default=0, metavar="N",
                        help="processes making rows (default 0: one per core for a large export; 1: this one only)")
    parser.add_argument("--include-referenced", action="store_true",
                        help="also write the referenced (replied to, quoted, reposted) posts as rows")
    parser.set_defaults(handler=export_command)


def export_command(args: argparse.Namespace) -> int:
    from sfm_archiver.export.run import ExportRequest, run_export
    from sfm_archiver.ledger import read_ledger

    sources, ledger_records = tuple(Path(path) for path in args.source), ()
    if not sources or config_path(args).exists():
        config = load(args, check_paths=False)
        sources = sources or (config.paths.archive,)
        ledger_records = tuple(read_ledger(config.paths.state))
    request = ExportRequest(
        collections=tuple(args.collections), sources=sources, out=Path(args.out) if args.out else None,
        format=args.format, start=args.start, end=args.end, by=args.by, accounts=tuple(args.account),
        kind=args.kind, dedupe=args.dedupe, segment=args.segment, columns=args.columns,
        include_referenced=args.include_referenced, ledger_records=ledger_records, jobs=args.jobs,
    )
    progress = Progress()
    result = run_export(request, progress)
    progress.done()
    for source in result.sources:
        for problem in source.problems:
            print(f"sfm-archiver: skipped {source.path}: {problem}", file=sys.stderr)
    for problem in result.problems:
        print(f"sfm-archiver: skipped: {problem}", file=sys.stderr)
    print(f"{result.out}: {result.rows:,} rows in {len(result.files)} file(s), "
          f"{result.problem_count:,} damaged input line(s), "
          f"{sum(source.skipped for source in result.sources)} bag(s) skipped; see README.txt")
    return result.exit_code
