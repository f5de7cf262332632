"""What process-level tests share: a configuration file for a test tree, and the CLI as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def write_config(path: Path, root: Path, api: str, collections: list[dict], *, token: str,
                 organization: str = "Test Library", **sections) -> Path:
    """A configuration under `root` (archive, state, outbox) talking to `api` with `token`."""
    document = {
        "organization": {"name": organization, "contact_email": "archives@example.edu"},
        "paths": {"archive": str(root / "archive"), "state": str(root / "state"), "outbox": str(root / "outbox")},
        "x": {"api_base_url": api, "bearer_token": token},
        "collections": collections,
        **sections,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `sfm-archiver ARGS` in a subprocess, the way an operator does."""
    return subprocess.run([sys.executable, "-m", "sfm_archiver", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def console_script() -> Path:
    """The installed `sfm-archiver` script of this environment: beside the interpreter, never
    looked up on PATH (the README's test command does not put the virtualenv on PATH)."""
    return Path(sys.executable).with_name("sfm-archiver")
