"""The URL shortener: behaviours encoded in the path, so tweets and tests need no setup.

    /s/chain/<n>/<status>/<token>   n redirects (301, 302, 303, 307 or 308), then a 200 page
    /s/loop/<token>                 two URLs redirecting to each other forever
    /s/end/<404|410|500>/<token>    that status at once
    /s/head405/<token>              HEAD answers 405; GET redirects to the landing page
    /s/slow/<ms>/<token>            the landing page after <ms> milliseconds
    /s/hang/<token>                 no answer until the client gives up (or the simulator stops)
"""

from __future__ import annotations

import html
import threading
from collections import Counter
from typing import Any

from sfm_archiver.simulator.reply import Reply
from sfm_archiver.simulator.scenario import ShortenerSpec

REDIRECTS = (301, 302, 303, 307, 308)
END_STATUSES = (404, 410, 500)
HTML = "text/html; charset=utf-8"
HANG_LIMIT_SECONDS = 600.0


class Shortener:
    """Answers /s/... paths; counts hits per path; adds `latency_ms` to every hop."""

    def __init__(self, spec: ShortenerSpec, stopping: threading.Event):
        self.latency_ms = spec.latency_ms
        self._stopping = stopping
        self._lock = threading.Lock()
        self._hits: Counter[str] = Counter()

    def handle(self, method: str, path: str, base_url: str) -> Reply:
        with self._lock:
            self._hits[path] += 1
        if self.latency_ms and self._stopping.wait(self.latency_ms / 1000):
            return Reply(503, abort=True)
        parts = path.split("/")[2:]
        behaviour, args = (parts[0], parts[1:]) if parts else ("", [])
        if behaviour == "chain" and len(args) == 3 and args[0].isdigit() and args[1].isdigit() \
                and int(args[1]) in REDIRECTS:
            hops, status, token = int(args[0]), int(args[1]), args[2]
            if hops == 0:
                return landing(token)
            return redirect(status, f"{base_url}/s/chain/{hops - 1}/{status}/{token}")
        if behaviour == "loop" and len(args) in (1, 2):
            other = f"/s/loop/{args[0]}" if len(args) == 2 else f"/s/loop/{args[0]}/again"
            return redirect(302, base_url + other)
        if behaviour == "end" and len(args) == 2 and args[0].isdigit() and int(args[0]) in END_STATUSES:
            return page(int(args[0]), f"Error {args[0]}")
        if behaviour == "head405" and len(args) == 1:
            if method == "HEAD":
                return Reply(405, b"", HTML, [("Allow", "GET")])
            return redirect(301, f"{base_url}/s/chain/0/301/{args[0]}")
        if behaviour == "slow" and len(args) == 2 and args[0].isdigit():
            if self._stopping.wait(int(args[0]) / 1000):
                return Reply(503, abort=True)
            return landing(args[1])
        if behaviour == "hang" and len(args) == 1:
            self._stopping.wait(HANG_LIMIT_SECONDS)
            return Reply(504, abort=True)
        return page(404, "Not Found")

    def hits(self) -> dict[str, Any]:
        with self._lock:
            return {"hits_total": sum(self._hits.values()), "hits": dict(self._hits)}


def redirect(status: int, location: str) -> Reply:
    return Reply(status, b"", HTML, [("Location", location)])


def page(status: int, title: str, text: str = "") -> Reply:
    body = (f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title>"
            f'<meta property="og:title" content="{html.escape(title)}"></head>'
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>")
    return Reply(status, body.encode("utf-8"), HTML)


def landing(token: str) -> Reply:
    return page(200, f"Landing page {token}", "The page a shortened link finally leads to.")
