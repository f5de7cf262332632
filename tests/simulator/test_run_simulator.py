"""`run_simulator` in a real subprocess: announces its URL, answers, stops cleanly on signals."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests

from tests.simulator.helpers import TOKEN

CODE = ("import sys; from pathlib import Path; from sfm_archiver.simulator import run_simulator; "
        "run_simulator(0, Path(sys.argv[1]) if len(sys.argv) > 1 else None, lambda m: print(m, flush=True))")


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a process started in the background by a shell


def start(*args: str, sigint_ignored: bool = False) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-c", CODE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=_ignore_sigint if sigint_ignored else None)
    line = process.stdout.readline().strip()
    assert line.startswith("Simulator listening on http://127.0.0.1:"), (line, process.stderr.read())
    return process, line.rsplit(" ", 1)[1]


@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "sigint-ignored-at-start"])
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_subprocess_announces_answers_and_stops_on_signal(stop_signal, sigint_ignored):
    process, url = start(sigint_ignored=sigint_ignored)
    try:
        response = requests.get(f"{url}/2/users/by/username/sfm_alpha", headers={"Authorization": f"Bearer {TOKEN}"},
                                timeout=5)
        assert response.status_code == 200 and response.json()["data"]["id"] == "100001"
        process.send_signal(stop_signal)
        assert process.wait(timeout=60) == 0  # a deadline for a hung stop, not a speed test
        assert "Traceback" not in process.stderr.read()
    finally:
        process.kill()
        process.wait()


def test_subprocess_loads_the_scenario_file(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("tokens: [secret]\naccounts:\n  - {id: 77, username: seventy_seven, tweets: 2}\n")
    process, url = start(str(path))
    try:
        assert requests.get(f"{url}/2/users/77", headers={"Authorization": "Bearer secret"}, timeout=5).json() == {
            "data": {"id": "77", "name": "seventy_seven", "username": "seventy_seven"}}
        assert requests.get(f"{url}/2/users/77", headers={"Authorization": "Bearer other"}, timeout=5).status_code == 401
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0  # a deadline for a hung stop, not a speed test
