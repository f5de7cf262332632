"""Damaged X API answers: recorded as errors, never a crash, never a checkpoint ahead of the data.

A mutating proxy on 127.0.0.1 sits between the platform adapter and the simulator. Hypothesis
picks which answers to damage (timelines, lookups, or all) and how: cut short, a byte changed,
a trailing comma, HTML instead of JSON, an empty body, or v2 documents whose shape is wrong
(`data` not a list, posts without ids, `meta` missing or of the wrong type, `errors` garbage).
A harvest and an account check through the proxy must finish with run records; every checkpoint
left must name a post present in the captures. A second, clean harvest must then bring the
archive to a state where every invariant holds (nothing lost, nothing twice, and no ledger event
that the simulator did not cause: a damaged lookup is not a deactivation).
"""

from __future__ import annotations

import http.client
import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.config import load_config
from sfm_archiver.jobs.accounts import update_usernames
from sfm_archiver.jobs.context import JobContext
from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.simulator import Scenario, Simulator
from tests.chaos.helpers import write_config
from tests.invariants import Captured, check_run, check_storage

ACCOUNTS = [
    {"id": "100001", "username": "sfm_alpha", "tweets": 150},
    {"id": "100002", "username": "sfm_beta", "tweets": 30, "posts_per_second": 5},
    {"id": "100003", "username": "sfm_locked", "tweets": 10, "protected": True},
]


def _shape(body: dict, how: str) -> dict:
    if how == "data_string":
        body["data"] = "oops"
    elif how == "data_null_items":
        body["data"] = [None, 1, "x"]
    elif how == "post_without_id" and isinstance(body.get("data"), list) and body["data"]:
        body["data"][0].pop("id", None)
    elif how == "post_id_not_digits" and isinstance(body.get("data"), list) and body["data"]:
        body["data"][0]["id"] = "not-a-number"
    elif how == "meta_missing":
        body.pop("meta", None)
    elif how == "meta_list":
        body["meta"] = [1, 2]
    elif how == "meta_newest_garbage" and isinstance(body.get("meta"), dict):
        body["meta"]["newest_id"] = "zzz"
    elif how == "result_count_text" and isinstance(body.get("meta"), dict):
        body["meta"]["result_count"] = "ten"
    elif how == "errors_garbage":
        body["errors"] = [1, "two", {"type": None}]
    elif how == "top_list":
        return [body]  # type: ignore[return-value]
    return body


SHAPES = ("data_string", "data_null_items", "post_without_id", "post_id_not_digits", "meta_missing", "meta_list",
          "meta_newest_garbage", "result_count_text", "errors_garbage", "top_list")

mutations = st.one_of(
    st.tuples(st.just("cut"), st.floats(0, 0.999)),
    # A byte that X could have sent in its place (a letter, digit or _ for another) leaves a valid,
    # plausible answer: a different username or id, indistinguishable from a real change (TLS
    # rules it out in practice). Every other byte must be caught.
    st.tuples(st.just("byte"), st.floats(0, 0.999), st.integers(0, 255).filter(
        lambda value: not (chr(value).isascii() and (chr(value).isalnum() or chr(value) == "_")))),
    st.tuples(st.just("comma"), st.just(0)),
    st.tuples(st.just("html"), st.just(0)),
    st.tuples(st.just("empty"), st.just(0)),
    st.tuples(st.just("shape"), st.sampled_from(SHAPES)),
)
plans = st.tuples(st.sampled_from(["timeline", "lookup", "any"]), st.integers(0, 6), st.booleans(), mutations)


def damage(raw: bytes, mutation: tuple) -> tuple[bytes, str]:
    kind, arg = mutation[0], mutation[1]
    if kind == "cut":
        return raw[:int(len(raw) * arg)], "application/json"
    if kind == "byte":
        at = int(len(raw) * arg)
        return raw[:at] + bytes([mutation[2]]) + raw[at + 1:], "application/json"
    if kind == "comma":
        return raw[:-1] + b",}", "application/json"
    if kind == "html":
        return b"<html><body>Bad gateway</body></html>", "text/html"
    if kind == "empty":
        return b"", "application/json"
    try:
        body = json.loads(raw)
    except ValueError:
        return raw, "application/json"
    return json.dumps(_shape(body, arg)).encode(), "application/json"


class MutatingProxy:
    """Forwards to the simulator; damages the n-th matching answer (or every one from it on)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.plan: tuple | None = None
        self.seen = 0
        self.damaged = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                proxy.forward(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._lock = threading.Lock()

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=10)
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("authorization", "user-agent")}
        upstream.request("GET", handler.path, headers=headers)
        response = upstream.getresponse()
        raw = response.read()
        kept = [(k, v) for k, v in response.getheaders() if k.lower().startswith("x-rate-limit") or k.lower() == "date"]
        content_type = response.getheader("Content-Type", "application/json")
        upstream.close()
        if response.status == 200 and self._should_damage(handler.path):
            raw, content_type = damage(raw, self.plan[3])
        handler.send_response(response.status)
        handler.send_header("Content-Type", content_type)
        for name, value in kept:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(raw)))
        handler.end_headers()
        handler.wfile.write(raw)

    def _should_damage(self, path: str) -> bool:
        if self.plan is None:
            return False
        target, nth, from_then_on, _ = self.plan
        kind = "timeline" if "/tweets" in path else "lookup"
        if target not in (kind, "any"):
            return False
        with self._lock:
            index = self.seen
            self.seen += 1
            hit = index == nth or (from_then_on and index >= nth)
            self.damaged += hit
            return hit

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def upstream():
    limits = {"window_seconds": 60, "users_lookup": 100_000, "user_tweets": 100_000}
    with Simulator(Scenario.from_dict({"seed": 11, "accounts": ACCOUNTS, "rate_limits": limits})) as sim:
        proxy = MutatingProxy(sim.port)
        yield sim, proxy
        proxy.close()


def checkpoints_behind_data(config) -> list[str]:
    captured = Captured()
    check_storage(config.paths.archive, config.paths.outbox, visit=captured.visit)
    ctx = JobContext.open(config)
    try:
        return [f"{account}: {since_id}" for account, since_id in ctx.store.checkpoints("gw").items()
                if since_id not in captured.timeline.get(("gw", account), ())]
    finally:
        ctx.store.close()


def run_once(config, with_lookup: bool = False) -> dict:
    """A harvest (and then an account check): both must end with a run record, never raise."""
    ctx = JobContext.open(config)
    try:
        record = harvest_timelines(ctx, "gw")
        if with_lookup:
            checked = update_usernames(ctx, "gw")
            assert checked.get("result") in ("ok", "warning", "failed"), checked
        return record
    finally:
        ctx.store.close()


@settings(max_examples=int(os.environ.get('SFM_FUZZ_EXAMPLES', 30)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans)
def test_damaged_answers_are_errors_and_never_move_checkpoints_ahead(upstream, plan):
    sim, proxy = upstream
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        config_path = write_config(root / "config.yaml", root, proxy.base_url, [
            {"name": "gw", "type": "timeline", "schedule": "every 1h",
             "accounts": ["sfm_alpha", "sfm_beta", "sfm_locked"]}])
        text = config_path.read_text().replace("bearer_token:", "max_retries: 0\n  bearer_token:")
        config_path.write_text(text)
        config = load_config(config_path)
        proxy.plan, proxy.seen = plan, 0
        try:
            damaged_run = run_once(config, with_lookup=True)
        finally:
            proxy.plan = None
        assert damaged_run.get("result") in ("ok", "warning", "failed"), damaged_run
        if proxy.damaged and plan[3][0] in ("cut", "comma", "html", "empty"):
            assert damaged_run["errors"] or damaged_run["warnings"], f"damage went unrecorded: {plan}"
        assert checkpoints_behind_data(config) == [], f"checkpoint ahead of the data after {plan}"
        clean_run = run_once(config)
        assert clean_run.get("result") in ("ok", "warning"), clean_run
        report = check_run(config, sim.published(), Scenario.from_dict({"accounts": ACCOUNTS}).accounts)
        assert report.ok, f"after {plan}:\n{report.summary()}"
