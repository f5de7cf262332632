"""`ledger verify` and `ledger show`."""

from __future__ import annotations

import argparse
import json

from sfm_archiver.cli.common import add_config_option, load
from sfm_archiver.ledger import Ledger, account_ids_named


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("ledger", help="check or list the account ledger")
    add_config_option(parser)
    actions = parser.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    verify = actions.add_parser("verify", help="check the hash chain; exit 1 at the first broken line")
    add_config_option(verify)
    verify.set_defaults(handler=verify_ledger)
    show = actions.add_parser("show", help="list ledger events")
    add_config_option(show)
    show.add_argument("--account", metavar="ID_OR_NAME", help="only events of this account (id or any username it had)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    show.set_defaults(handler=show_ledger)


def verify_ledger(args: argparse.Namespace) -> int:
    report = Ledger(load(args, check_paths=False).paths.state).verify()
    for note in report.notes:
        print(note)
    if report.ok:
        print(f"{report.path}: {report.lines} events, chain intact")
        return 0
    for problem in report.problems:
        print(problem)
    print(f"{report.path}: chain broken at seq {report.first_broken_seq}")
    return 1


def show_ledger(args: argparse.Namespace) -> int:
    ledger = Ledger(load(args, check_paths=False).paths.state)
    records = list(ledger.records())
    if args.account:
        records = events_of_account(records, args.account)
    for record in records:
        print(json.dumps(record, ensure_ascii=False) if args.json else format_event(record))
    return 0


def events_of_account(records: list[dict], id_or_name: str) -> list[dict]:
    """Events of the account with this id, or of every account that ever had this username."""
    ids = account_ids_named(records, id_or_name)
    return [r for r in records if r["account_id"] in ids]


def format_event(record: dict) -> str:
    change = ""
    if record.get("from") is not None or record.get("to") is not None:
        change = f" {_short(record.get('from'))} -> {_short(record.get('to'))}"
    observer = record.get("observed_by")
    if isinstance(observer, dict):
        observer = " ".join(f"{k}={v}" for k, v in observer.items())
    return f"{record['seq']:>6} {record['at']} {record['account_id']:>20} {record['event']:<20}{change}  ({observer})"


def _short(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)[:60]
    return str(value)
