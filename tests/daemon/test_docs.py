"""Every command is documented, and the README keeps its two opening commands."""

from __future__ import annotations

from pathlib import Path

from sfm_archiver.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> list[str]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if a.dest == "command"]
    return list(action.choices)


def test_every_command_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Commands"):]
    missing = [name for name in _commands() if f"| `{name}" not in table]
    assert not missing, f"commands missing from the README's commands table: {missing}"


def test_readme_opens_with_the_demo_and_the_tests():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/sfm-archiver demo" in lines[:12]
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q" in lines[:12]


def test_operators_guide_covers_its_topics():
    guide = (ROOT / "docs" / "operators-guide.md").read_text()
    for topic in ("## Install", "## Configuration", "## Adding, pausing and removing accounts", "## The ledger",
                  "twarc2 flatten", "twarc2 csv", "pandas", "## Bags and handoff", "## Backups and restore",
                  "## Upgrading", "as of capture time", "systemctl reload"):
        assert topic in guide, topic
    for event in ("added", "renamed", "protected", "suspended", "deactivated", "paused", "resumed", "removed",
                  "username_reassigned"):
        assert f"`{event}`" in guide, event
