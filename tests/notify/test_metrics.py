"""Metrics names and counters that the daemon test does not reach: 429 answers, per-collection counters."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sfm_archiver.metrics import metrics_text
from sfm_archiver.ratelimit import RateLimiter
from sfm_archiver.state import StateStore
from tests.notify.test_alerts import config_for


def samples(text: str) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_429_answers_are_counted_per_endpoint(tmp_path):
    config = config_for(tmp_path, None)
    store = StateStore(config.paths.state)
    now = [1_000_000.0]

    def wait(seconds: float) -> bool:  # the scaled clock: a wait passes at once
        now[0] += seconds
        return False

    limiter = RateLimiter(clock=lambda: now[0], sleep=wait, store=store)
    for status in (200, 429, 429, 200, 429):
        permit = limiter.acquire("cred", "GET /2/users", wait=wait)
        limiter.observe(permit, status)
    found = samples(metrics_text(config))
    assert found[("sfm_archiver_rate_limited_responses_total", (("credential", "cred"), ("endpoint", "GET /2/users")))] == 3


def test_names_follow_the_conventions(tmp_path):
    config = config_for(tmp_path, None)
    StateStore(config.paths.state).record_stream_event("live", "connect")
    for family in text_string_to_metric_families(metrics_text(config)):
        assert family.name.startswith("sfm_archiver_")
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples)
        assert not any(unit in family.name for unit in ("_ms", "_minutes", "_kb", "_mb", "_gb"))
