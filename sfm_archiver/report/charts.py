"""The report's charts: matplotlib (Agg, no display) rendered to inline SVG text."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime, timedelta, timezone

from sfm_archiver.notify import growth
from sfm_archiver.report.data import ReportData

MAX_LINES = 10
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "sfm-archiver", "font.size": 9})
    import matplotlib.pyplot as plt

    return plt


def _figure(title: str):
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9.5, 3.0), dpi=96)
    axes.set_title(title, loc="left", fontsize=10)
    axes.grid(True, alpha=0.3)
    return plt, figure, axes


def _svg(plt, figure) -> str:
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _empty(plt, figure, axes, what: str) -> str:
    axes.text(0.5, 0.5, f"no data: no {what} in this period", ha="center", va="center", transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])
    return _svg(plt, figure)


def _day(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)


def _largest(series: dict[str, dict[str, int]]) -> list[str]:
    """The collections drawn as their own line (the largest); the others are summed as 'others'."""
    return sorted(series, key=lambda name: -sum(series[name].values()))[:MAX_LINES]


def posts_per_day(data: ReportData) -> str:
    plt, figure, axes = _figure("Posts captured per day, per timeline collection")
    if not data.posts_per_day:
        return _empty(plt, figure, axes, "timeline harvests")
    shown = _largest(data.posts_per_day)
    others: dict[str, int] = {}
    for name, days in data.posts_per_day.items():
        if name not in shown:
            for day, n in days.items():
                others[day] = others.get(day, 0) + n
    for index, name in enumerate(shown + (["others"] if others else [])):
        days = data.posts_per_day.get(name, others)
        keys = sorted(days)
        axes.plot([_day(k) for k in keys], [days[k] for k in keys], label=name, color=PALETTE[index % len(PALETTE)], linewidth=1.2)
    axes.set_ylabel("posts")
    axes.legend(fontsize=7, ncol=4, loc="upper left")
    return _svg(plt, figure)


def stream_messages(data: ReportData) -> str:
    from matplotlib import dates

    plt, figure, axes = _figure("Stream messages per hour (shaded: disconnected)")
    if not data.messages_per_hour:
        return _empty(plt, figure, axes, "stream collections")
    for index, (name, hours) in enumerate(sorted(data.messages_per_hour.items())[:MAX_LINES]):
        keys = sorted(hours)
        times = [datetime.strptime(k, "%Y-%m-%dT%H").replace(tzinfo=timezone.utc) for k in keys]
        color = PALETTE[index % len(PALETTE)]
        axes.plot(times, [hours[k] for k in keys], label=name, color=color, linewidth=1.0)
        pixel = (data.end - data.start) / 2000
        spans = [(dates.date2num(start), max(dates.date2num(end) - dates.date2num(start), 1 / 720))
                 for start, end in merged(data.down_intervals.get(name, []), pixel)]
        if spans:  # one collection for all spans: thousands of reconnects draw as fast as one
            axes.broken_barh(spans, (0, 1), transform=axes.get_xaxis_transform(), color="#d62728", alpha=0.25, linewidth=0)
    axes.set_ylabel("messages / hour")
    axes.legend(fontsize=7, ncol=4, loc="upper left")
    return _svg(plt, figure)


def merged(spans: list[tuple[datetime, datetime]], gap: timedelta) -> list[tuple[datetime, datetime]]:
    """Spans closer than `gap` (less than a pixel apart at the chart's scale) joined into one."""
    joined: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if joined and start - joined[-1][1] < gap:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def lifecycle(data: ReportData) -> str:
    plt, figure, axes = _figure("Account lifecycle events per day (larger: more accounts)")
    events = [e for e in data.lifecycle if e[1] not in ("added",)]
    if not events:
        return _empty(plt, figure, axes, "account changes")
    per_day = Counter((at.date(), event) for at, event, _ in events)  # one mark per day and kind, sized by count
    kinds = sorted({event for _, event in per_day})
    for index, kind in enumerate(kinds):
        days = sorted(day for day, event in per_day if event == kind)
        sizes = [min(120, 10 + 4 * per_day[(day, kind)]) for day in days]
        times = [datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc) for day in days]
        axes.scatter(times, [index] * len(times), s=sizes, color=PALETTE[index % len(PALETTE)], alpha=0.7)
    axes.set_yticks(range(len(kinds)))
    axes.set_yticklabels(kinds)
    axes.set_ylim(-0.7, len(kinds) - 0.3)
    return _svg(plt, figure)


def bags_per_day(data: ReportData) -> str:
    plt, figure, axes = _figure("Bags handed off per day, and their size")
    if not data.bags_per_day:
        return _empty(plt, figure, axes, "bags")
    keys = sorted(data.bags_per_day)
    days = [_day(k) for k in keys]
    axes.vlines(days, 0, [data.bags_per_day[k][0] for k in keys], color="#1f77b4", linewidth=max(1.0, 300 / len(keys)), label="bags")
    axes.set_ylim(bottom=0)
    axes.set_ylabel("bags")
    sizes = axes.twinx()
    sizes.plot(days, [data.bags_per_day[k][1] / 1e9 for k in keys], color="#ff7f0e", linewidth=1.2, label="GB")
    sizes.set_ylabel("GB")
    return _svg(plt, figure)


def disk(data: ReportData) -> str:
    plt, figure, axes = _figure("Free disk space, with the projection at the recent pace (dashed)")
    now_points = {space.name: space for space in data.disk_now if space.free is not None}
    if not data.disk and not now_points:
        return _empty(plt, figure, axes, "disk measurements")
    shown = set()
    for index, name in enumerate(sorted(set(data.disk) | set(now_points))):
        samples = list(data.disk.get(name, []))
        if name in now_points:
            samples.append((data.end, now_points[name].free))
        color = PALETTE[index % len(PALETTE)]
        axes.plot([at for at, _ in samples], [free / 1e9 for _, free in samples], color=color, label=name, marker="." if len(samples) < 3 else None)
        per_day = growth.shrink_per_day(samples[-24 * 7:])
        left = growth.days_left(samples[-1][1], per_day)
        key = (samples[-1][1], per_day)
        if left is not None and key not in shown:
            shown.add(key)
            horizon = min(left, 365.0)
            end = samples[-1][0] + timedelta(days=horizon)
            axes.plot([samples[-1][0], end], [samples[-1][1] / 1e9, max(0.0, samples[-1][1] - per_day * horizon) / 1e9],
                      linestyle="--", color=color, label=f"{name}: full in {left:.0f} days")
    axes.set_ylabel("GB free")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=7, loc="lower left")
    return _svg(plt, figure)


def rate_limits(data: ReportData) -> str:
    plt, figure, axes = _figure("Rate-limit use now (used of the window's budget)")
    rows = [r for r in data.rate_limits if r.get("rate_limit")]
    if not rows:
        return _empty(plt, figure, axes, "rate-limit observations")
    rows = rows[:20]
    labels = [r["endpoint"] for r in rows]
    used = [(r["rate_limit"] - (r["remaining"] or 0)) / r["rate_limit"] * 100 for r in rows]
    axes.barh(range(len(rows)), used, color="#2ca02c")
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels(labels, fontsize=7)
    axes.set_xlim(0, 100)
    axes.set_xlabel("% used")
    figure.set_figheight(max(2.0, 0.35 * len(rows) + 1.2))
    return _svg(plt, figure)


CHARTS = (
    ("posts", posts_per_day), ("streams", stream_messages), ("lifecycle", lifecycle),
    ("bags", bags_per_day), ("disk", disk), ("rate-limits", rate_limits),
)
