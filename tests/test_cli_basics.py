"""The command line as a whole: the DESIGN.md section 2 command set, --help everywhere, exit codes,
and commands not built yet refusing with exit 2 instead of pretending to succeed."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sfm_archiver import __version__
from sfm_archiver.cli import build_parser, main
from tests.operator import console_script

REPO = Path(__file__).resolve().parents[1]
DESIGN_COMMANDS = {
    "run", "status", "check-config", "user-timeline", "update-usernames", "fetch-urls", "stream", "organize", "bag",
    "verify", "ledger", "simulate", "demo",
}


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def all_commands() -> list[tuple[str, ...]]:
    """Every command path, nested ones included: ('ledger',), ('ledger', 'verify'), ..."""
    found = []

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for name, sub in subcommands(parser).items():
            found.append((*prefix, name))
            walk(sub, (*prefix, name))

    walk(build_parser(), ())
    return found


def leaf_handlers() -> dict[tuple[str, ...], object]:
    handlers = {}

    def walk(parser: argparse.ArgumentParser, prefix: tuple[str, ...]) -> None:
        for name, sub in subcommands(parser).items():
            if subcommands(sub):
                walk(sub, (*prefix, name))
            else:
                handlers[(*prefix, name)] = sub.get_default("handler")

    walk(build_parser(), ())
    return handlers


def run_cli(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "CREDENTIALS_DIRECTORY")}
    command = [sys.executable, "-c", code, *args] if code else [sys.executable, "-m", "sfm_archiver", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, cwd=REPO)


def test_the_design_command_set_is_registered():
    assert DESIGN_COMMANDS <= set(subcommands(build_parser()))
    assert {("ledger", "verify"), ("ledger", "show")} <= set(all_commands())


def test_every_command_has_a_handler():
    missing = [" ".join(path) for path, handler in leaf_handlers().items() if not callable(handler)]
    assert missing == []


@pytest.mark.parametrize("command", [" ".join(path) for path in all_commands()])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sfm-archiver ")
    assert command.split()[-1] in out.splitlines()[0]


def test_top_level_help_lists_every_command_through_the_entry_point():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in DESIGN_COMMANDS:
        assert command in result.stdout


def test_console_script_and_version():
    script = console_script()
    assert script.is_file(), f"the package is installed with its console script beside {sys.executable}"
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"sfm-archiver {__version__}"
    assert run_cli("ledger", "--help").returncode == 0


@pytest.mark.parametrize(
    "args",
    [[], ["no-such-command"], ["check-config", "--no-such-option"], ["ledger"], ["stream"]],
    ids=["no-command", "unknown-command", "unknown-option", "missing-subcommand", "missing-argument"],
)
def test_usage_errors_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert "usage: sfm-archiver" in result.stderr
    assert result.stdout == ""


# A command registered the way each area registers its own, with the `not_built` handler.
NOT_BUILT_CODE = textwrap.dedent(
    """
    import sys
    from sfm_archiver import cli
    from sfm_archiver.cli.common import add_config_option, not_built

    class Frobnicate:
        @staticmethod
        def register(commands):
            parser = commands.add_parser("frobnicate", help="not written yet")
            add_config_option(parser)
            parser.set_defaults(handler=not_built("frobnicate"))

    cli.COMMAND_MODULES = (*cli.COMMAND_MODULES, Frobnicate)
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def test_a_command_not_built_yet_says_so_and_exits_2():
    result = run_cli("frobnicate", code=NOT_BUILT_CODE)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "sfm-archiver: error: 'frobnicate' is not available in this version yet"
    assert result.stdout == ""
    helped = run_cli("frobnicate", "--help", code=NOT_BUILT_CODE)
    assert helped.returncode == 0 and "usage: sfm-archiver frobnicate" in helped.stdout
