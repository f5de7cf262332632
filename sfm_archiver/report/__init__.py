"""`sfm-archiver report`: one self-contained HTML page of what the archive did, from the state store.

`write_report` builds it (the CLI and the daemon's `report` job, which refreshes
`<state>/report/index.html`); the page is written to a temporary file and renamed, so a web
server never serves half a page.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sfm_archiver import diskguard
from sfm_archiver.config import Config
from sfm_archiver.durable import atomic_write
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import utcnow

REPORT_FOLDER = "report"
DEFAULT_DAYS = 30


def default_folder(config: Config) -> Path:
    return config.paths.state / REPORT_FOLDER


def write_report(config: Config, out: Path | None = None, days: int = DEFAULT_DAYS, now: datetime | None = None,
                 store: StateStore | None = None) -> Path:
    """Write `<out>/index.html` (default `<state>/report/`) covering the last `days` days; return its path."""
    from sfm_archiver.report import charts, data, page

    now = now or utcnow()
    own = store is None
    store = store or StateStore(config.paths.state)
    try:
        start, end = data.window(now, days)
        found = data.gather(store, config, start, end, diskguard.measure(config))
    finally:
        if own:
            store.close()
    rendered = {name: draw(found) for name, draw in charts.CHARTS}
    folder = Path(out) if out else default_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "index.html"
    atomic_write(path, page.render(found, config.organization.name, now, rendered).encode())
    return path


def report_job(ctx) -> dict:
    """The daemon's `report` job: refresh the default report, recorded as a run."""
    from sfm_archiver.jobs.runs import RunRecorder

    with RunRecorder(ctx.store, "report", None) as run:
        path = write_report(ctx.config, now=ctx.clock(), store=ctx.store)
        run.counts["bytes"] = path.stat().st_size
        run.info(f"report written to {path}")
    return {"result": "ok"}
