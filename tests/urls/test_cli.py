"""`sfm-archiver fetch-urls` through the real entry point: exit codes, summary, progress on a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from .helpers import CAPTURE_DATE, tweet, url_lines, write_capture, write_config


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SFM_ARCHIVER_CONFIG"}
    return subprocess.run([sys.executable, "-m", "sfm_archiver", *args], env=env, timeout=60, **kwargs)


def test_fetch_urls_command(tmp_path, simulator):
    base = simulator.base_url
    config = write_config(tmp_path, base)
    write_capture(tmp_path / "archive", "news", "timeline",
                  [{"data": [tweet(1, f"{base}/s/chain/2/302/cli"), tweet(2, f"{base}/s/end/404/cli")]}])
    write_capture(tmp_path / "archive", "live", "stream", [{"data": tweet(3, f"{base}/s/chain/1/308/live")}])

    done = run_cli("fetch-urls", "--config", str(config), "--start", CAPTURE_DATE.isoformat(),
                   capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("news: 2 links in 2 posts of 1 files; 2 resolved (4 requests, 1 failed)")
    assert lines[1].startswith("live: 1 links in 1 posts of 1 files; 1 resolved")
    assert "\r" not in done.stderr  # no progress bar without a terminal
    assert {line["final_status"] for line in url_lines(tmp_path / "archive", "news")} == {200, 404}

    again = run_cli("--config", str(config), "fetch-urls", "news", "--start", CAPTURE_DATE.isoformat(),
                    "--end", CAPTURE_DATE.isoformat(), capture_output=True, text=True)
    assert again.returncode == 0 and "0 resolved (0 requests, 0 failed), 2 from the cache" in again.stdout


def test_usage_errors_exit_2(tmp_path, simulator):
    config = str(write_config(tmp_path, simulator.base_url))
    for args, message in [
        (("--start", "2026-13-01"), "is not a date"),
        (("--start", "2026-11-20", "--end", "2026-11-19"), "before --start"),
        (("nope",), "unknown collection"),
    ]:
        done = run_cli("fetch-urls", "--config", config, *args, capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)


def test_progress_bar_on_a_terminal(tmp_path, simulator):
    base = simulator.base_url
    config = write_config(tmp_path, base)
    write_capture(tmp_path / "archive", "news", "timeline",
                  [{"data": [tweet(n, f"{base}/s/chain/1/301/tty{n}") for n in range(5)]}])
    controller, terminal = pty.openpty()
    try:
        done = run_cli("fetch-urls", "news", "--config", str(config), "--start", CAPTURE_DATE.isoformat(),
                       stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
    assert done.returncode == 0
    assert b"\rfetch-urls news: [########################] 5/5 links, 0 failed" in shown
