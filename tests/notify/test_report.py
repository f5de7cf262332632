"""The HTML report: written from the state store, rendered by a real headless Chromium.

Chromium (Debian's `chromium` package, installed by .ci/run) must be present: without it the
test fails, it does not skip.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

from sfm_archiver.ledger import Ledger
from sfm_archiver.notify.store import NotifyStore
from sfm_archiver.report import write_report
from sfm_archiver.state import StateStore
from tests.notify.test_alerts import config_for

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=timezone.utc)
CHART_SECTIONS = ("posts", "streams", "lifecycle", "bags", "disk", "rate-limits")


def populate(store: StateStore, state_dir, rng: random.Random) -> None:
    iso = lambda moment: moment.isoformat(timespec="milliseconds")  # noqa: E731
    start = NOW - timedelta(days=20)
    with store.transaction() as db:
        moment = start
        while moment < NOW:
            db.execute("INSERT INTO runs (run_id, job, collection, started_at, ended_at, result, counts, warnings, errors) "
                       "VALUES (?, 'user_timeline', 'news', ?, ?, 'ok', ?, '[]', '[]')",
                       (f"r{moment:%m%d%H}", iso(moment), iso(moment), json.dumps({"posts": rng.randint(5, 40)})))
            db.execute("INSERT INTO stream_counts VALUES ('live', 'live', ?, ?, 0, ?)", (iso(moment), rng.randint(100, 900), iso(moment)))
            moment += timedelta(hours=1)
        for day in range(19):
            at = start + timedelta(days=day + 1, hours=3)
            db.execute("INSERT INTO bags (name, collection, period_label, period_start, period_end, state, bytes, created_at, "
                       "finished_at, handoff_at) VALUES (?, 'news', ?, ?, ?, 'done', ?, ?, ?, ?)",
                       (f"news_{day}", str(day), iso(at), iso(at), rng.randint(10**8, 10**9), iso(at), iso(at), iso(at)))
    for hours in (30, 100, 200):
        store.record_stream_event("live", "disconnect", "operational-disconnect", at=NOW - timedelta(hours=hours))
        store.record_stream_event("live", "connect", at=NOW - timedelta(hours=hours - 3))
    store.change_rate_budget("app", "/2/users/:id/tweets", lambda row, permits: (
        {"rate_limit": 1500, "remaining": 300, "reset": NOW.timestamp() + 600, "skew": 0.0}, permits, None))
    ledger = Ledger(state_dir)
    for n, event in enumerate(("suspended", "renamed", "protected", "unsuspended")):
        ledger.append(account_id=str(100 + n), event=event, observed_by={"job": "update_usernames", "run": "r1"},
                      from_="a", to="b", at=NOW - timedelta(days=n + 1))
    notify = NotifyStore(store)
    for day in range(14):
        notify.add_disk_sample("archive", NOW - timedelta(days=14 - day), 500 * 10**9 - day * 9 * 10**9, 10**12)


def test_report_renders_in_headless_chromium_with_its_charts(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium is not installed (apt-get install -y chromium; .ci/run does it)"
    config = config_for(tmp_path, None)
    store = StateStore(config.paths.state)
    populate(store, config.paths.state, random.Random(3))
    path = write_report(config, tmp_path / "site", days=30, now=NOW, store=store)
    page = path.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page), "the page must fetch nothing"
    assert "<script" not in page
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>sfm-archiver report" in dom.stdout
    for section in CHART_SECTIONS:
        body = dom.stdout.split(f'id="{section}"', 1)[1].split("</section>", 1)[0]
        assert "<svg" in body, f"chart {section} has no svg"
        assert "no data:" not in body, f"chart {section} says it had no data"
    screenshot = tmp_path / "report.png"
    shot = subprocess.run([*flags, f"--screenshot={screenshot}", "--window-size=1100,2600", path.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000, shot.stderr[-2000:]
    shutil.copy(screenshot, tmp_path.parent / "report-screenshot.png")


def test_report_command_writes_the_default_folder(tmp_path):
    from tests import operator

    config_path = tmp_path / "config.yaml"
    config_path.write_text(f"paths: {{archive: {tmp_path}/archive, state: {tmp_path}/state, outbox: {tmp_path}/outbox}}\n")
    result = operator.cli("--config", str(config_path), "report", "--days", "7")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "report" / "index.html").exists()
    assert "file://" in result.stdout
