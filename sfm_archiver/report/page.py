"""The report page: one self-contained HTML file (inline CSS and SVG, no scripts, no fetches)."""

from __future__ import annotations

import html
from datetime import datetime

from sfm_archiver import __version__, diskguard
from sfm_archiver.report.data import ReportData, lifecycle_counts

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:0}.sub{color:#666;margin-top:.2em}
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f3f3f3}.failed,.critical{color:#b00}.warning{color:#a60}.ok{color:#070}
section{margin:1.5em 0}section svg{max-width:100%;height:auto}
"""


def render(data: ReportData, organization: str, now: datetime, charts: dict[str, str]) -> str:
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>sfm-archiver report: {html.escape(organization)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>sfm-archiver report: {html.escape(organization)}</h1>",
        f"<p class='sub'>{data.start:%Y-%m-%d} to {data.end:%Y-%m-%d %H:%M} UTC; generated {now:%Y-%m-%d %H:%M:%S} UTC "
        f"by sfm-archiver {__version__}</p>",
        _alerts(data), _collections(data), _disk(data),
    ]
    titles = {"posts": "Posts per day", "streams": "Streams", "lifecycle": "Accounts", "bags": "Bags",
              "disk": "Disk", "rate-limits": "Rate limits"}
    for name, svg in charts.items():
        parts.append(f"<section id='{name}' class='chart'><h2>{titles[name]}</h2>{svg}</section>")
    counts = lifecycle_counts(data.lifecycle)
    if counts:
        parts.append("<p>Account events in this period: " + html.escape(", ".join(f"{e} {n}" for e, n in sorted(counts.items()))) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _alerts(data: ReportData) -> str:
    active = [a for a in data.alerts if not a.get("ended_at")]
    if not active:
        return "<section id='alerts'><h2>Alerts</h2><p class='ok'>Nothing is wrong right now.</p></section>"
    rows = "".join(
        f"<tr><td class='failed'>{html.escape(a['title'])}</td><td>{html.escape(a['started_at'][:19])}</td>"
        f"<td>{a['occurrences']}</td></tr>" for a in active
    )
    return f"<section id='alerts'><h2>Alerts</h2><table><tr><th>active</th><th>since</th><th>times</th></tr>{rows}</table></section>"


def _collections(data: ReportData) -> str:
    rows = []
    for entry in data.collections:
        total = sum(data.posts_per_day.get(entry["name"], {}).values()) + sum(data.messages_per_hour.get(entry["name"], {}).values())
        result = entry["result"] or "-"
        rows.append(
            f"<tr><td>{html.escape(entry['name'])}</td><td>{entry['type']}</td><td>{html.escape(entry['schedule'])}</td>"
            f"<td>{(entry['last_run'] or 'never')[:19]}</td><td class='{html.escape(result)}'>{html.escape(result)}</td>"
            f"<td>{total:,}</td></tr>"
        )
    return ("<section id='collections'><h2>Collections</h2><table><tr><th>collection</th><th>type</th><th>schedule</th>"
            f"<th>last run</th><th>result</th><th>items in period</th></tr>{''.join(rows)}</table></section>")


def _disk(data: ReportData) -> str:
    rows = "".join(
        f"<tr><td>{s.name}</td><td>{html.escape(str(s.path))}</td><td class='{s.level}'>{diskguard.human_size(s.free)}</td></tr>"
        for s in data.disk_now
    )
    return f"<section id='space'><h2>Free space</h2><table><tr><th>path</th><th>folder</th><th>free</th></tr>{rows}</table></section>"
