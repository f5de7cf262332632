"""Notices → one message (subject, plain text, HTML): every notice of one evaluation together."""

from __future__ import annotations

import html
import socket
from datetime import datetime

from sfm_archiver.notify.alerts import END, REMIND, START, Notice
from sfm_archiver.status import _age

LABELS = {START: "PROBLEM", REMIND: "STILL A PROBLEM", END: "RESOLVED", "event": "ACCOUNTS"}


def compose(notices: list[Notice], now: datetime, organization: str) -> dict | None:
    """The message for a batch of notices, or None when there is nothing to tell."""
    if not notices:
        return None
    host = socket.gethostname()
    if len(notices) == 1:
        notice = notices[0]
        subject = f"[sfm-archiver {LABELS[notice.kind]}] {notice.title}"
    else:
        counts = {kind: sum(1 for n in notices if n.kind == kind) for kind in LABELS}
        parts = [f"{n} {LABELS[kind].lower()}" for kind, n in counts.items() if n]
        subject = f"[sfm-archiver] {', '.join(parts)}"
    text_parts = [f"sfm-archiver on {host} ({organization}), {now.strftime('%Y-%m-%d %H:%M:%S')} UTC", ""]
    html_parts = [f"<p>sfm-archiver on {html.escape(host)} ({html.escape(organization)}), "
                  f"{now.strftime('%Y-%m-%d %H:%M:%S')} UTC</p>"]
    for notice in notices:
        head = f"{LABELS[notice.kind]}: {notice.title}"
        extra = _timing(notice, now)
        text_parts += [head + (f" ({extra})" if extra else "")]
        text_parts += [f"    {line}" for line in notice.detail.splitlines() if line.strip()]
        text_parts.append("")
        html_parts.append(f"<h3>{html.escape(head)}</h3>" + (f"<p><i>{html.escape(extra)}</i></p>" if extra else ""))
        if notice.detail.strip():
            html_parts.append(f"<pre>{html.escape(notice.detail)}</pre>")
    text_parts.append("Details: sfm-archiver status")
    kinds = {notice.kind for notice in notices}
    kind = "problem" if kinds & {START, REMIND} else "resolved" if kinds == {END} else "info"
    return {"kind": kind, "subject": subject, "text": "\n".join(text_parts), "html": "\n".join(html_parts)}


def _timing(notice: Notice, now: datetime) -> str:
    parts = []
    if notice.kind in (REMIND, END) and notice.started_at:
        parts.append(f"since {notice.started_at.strftime('%Y-%m-%d %H:%M:%S')} UTC, lasted {_age((now - notice.started_at).total_seconds())}")
    if notice.occurrences > 1:
        parts.append(f"happened {notice.occurrences} times")
    return "; ".join(parts)


def test_message(now: datetime, organization: str) -> dict:
    text = (f"Test message from sfm-archiver on {socket.gethostname()} ({organization}) at "
            f"{now.strftime('%Y-%m-%d %H:%M:%S')} UTC. If you read this, alerts will reach you.")
    return {"kind": "test", "subject": "[sfm-archiver] test message", "text": text, "html": f"<p>{html.escape(text)}</p>"}
