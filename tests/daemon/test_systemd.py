"""The shipped systemd units pass `systemd-analyze verify` without a single complaint."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.operator import console_script

UNITS = Path(__file__).resolve().parents[2] / "systemd"
INSTALLED_BINARY = "/opt/sfm-archiver/bin/sfm-archiver"


def test_units_verify_clean(tmp_path):
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: apt-get install systemd (.ci/run does)"
    entry = str(console_script())  # verify insists that ExecStart= exists
    assert Path(entry).is_file(), "the sfm-archiver entry point is not installed"
    copies = []
    for unit in sorted(UNITS.glob("sfm-archiver*.*")):
        text = unit.read_text()
        assert unit.suffix != ".service" or INSTALLED_BINARY in text
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED_BINARY, entry))
        copies.append(str(copy))
    assert len(copies) == 3
    result = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 0 and complaints == [], "\n".join(complaints)


def test_service_has_the_required_settings():
    text = (UNITS / "sfm-archiver.service").read_text()
    for setting in (
        "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "WatchdogSec=", "Restart=on-failure",
        "User=sfm-archiver", "StateDirectory=", "ConfigurationDirectory=", "LoadCredential=x-bearer-token:",
        "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes", "ReadWritePaths=",
        "TimeoutStopSec=90",
    ):
        assert setting in text, setting
    timer = (UNITS / "sfm-archiver-backup.timer").read_text()
    assert "OnCalendar=*-*-* 02,14:30:00" in timer
