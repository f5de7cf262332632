"""The alert state machine and the evaluator, on an injected clock, delivered to real receivers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.config import load_config_text
from sfm_archiver.notify.alerts import Condition, step
from sfm_archiver.notify.delivery import deliver_due
from sfm_archiver.notify.service import evaluate
from sfm_archiver.notify.store import NotifyStore
from sfm_archiver.state import StateStore
from tests.notify.receivers import WebhookReceiver

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
REPEAT = timedelta(hours=24)


def config_for(root: Path, hook: WebhookReceiver | None, extra: str = ""):
    targets = f"[{hook.url!r}]" if hook else "[]"
    text = (f"paths: {{archive: {root}/archive, state: {root}/state, outbox: {root}/outbox}}\n"
            "x: {bearer_token: t0k3n-notify-test}\n"
            "collections:\n  - {name: live, type: filter_stream, rules: [{value: climate, tag: c}]}\n"
            f"notify: {{targets: {targets}, stream_down_after: 60s, digest: 'off'}}\n" + extra)
    return load_config_text(text, root / "config.yaml", check_paths=False)


@given(st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=7200)), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_one_start_one_end_and_reminders_at_most_every_repeat(observations):
    """Whatever the sequence of present/absent, starts and ends alternate and reminders keep their distance."""
    active, now, kinds, last_sent = {}, T0, [], None
    hold = timedelta(seconds=300)
    for present, seconds in observations:
        now += timedelta(seconds=seconds)
        conditions = {"k": Condition("k", "stream", "down")} if present else {}
        result = step(active, conditions, now, timedelta(hours=1), {"stream": hold})
        for row in result.saved:
            active[row.key] = row
        for key, _at in result.ended:
            active.pop(key)
        for notice in result.notices:
            kinds.append(notice.kind)
            if notice.kind == "remind":
                assert now - last_sent >= timedelta(hours=1)
            last_sent = now
    starts_and_ends = [k for k in kinds if k != "remind"]
    assert starts_and_ends == ["start", "end"] * (len(starts_and_ends) // 2) + (["start"] if len(starts_and_ends) % 2 else [])
    assert ("k" in active) == (len(starts_and_ends) % 2 == 1)


def test_a_flapping_stream_sends_one_alert_with_a_count(tmp_path):
    hook = WebhookReceiver()
    try:
        config = config_for(tmp_path, hook)
        store = StateStore(config.paths.state)
        store.record_stream_event("live", "connect", at=T0)
        moment = T0
        for _flap in range(4):  # down 90 s (> stream_down_after), up 30 s (< the 60 s hold), four times
            store.record_stream_event("live", "disconnect", "operational-disconnect", at=moment + timedelta(seconds=1))
            for seconds in (30, 91):
                evaluate(store, config, moment + timedelta(seconds=seconds), [])
            moment += timedelta(seconds=91)
            store.record_stream_event("live", "connect", at=moment)
            evaluate(store, config, moment + timedelta(seconds=30), [])
            moment += timedelta(seconds=30)
        evaluate(store, config, moment + timedelta(seconds=61), [])  # quiet for 61 s since first seen connected: past the hold
        deliver_due(NotifyStore(store), config, moment + timedelta(seconds=62))
        texts = hook.texts()
        assert sum("PROBLEM" in t for t in texts) == 1, texts
        assert sum("RESOLVED" in t for t in texts) == 1, texts
        assert "happened 4 times" in texts[-1]
    finally:
        hook.stop()


def test_a_restart_neither_repeats_nor_forgets(tmp_path):
    hook = WebhookReceiver()
    try:
        config = config_for(tmp_path, hook)
        store = StateStore(config.paths.state)
        store.set_daemon_values(last_reload_error={"at": "x", "problems": ["config.yaml:7: unknown key 'schedul'"]})
        evaluate(store, config, T0, [])
        store.close()
        store = StateStore(config.paths.state)  # a new process: only the state store remembers
        evaluate(store, config, T0 + timedelta(minutes=5), [])
        store.set_daemon_values(last_reload_error=None)
        evaluate(store, config, T0 + timedelta(minutes=6), [])
        deliver_due(NotifyStore(store), config, T0 + timedelta(minutes=7))
        texts = hook.texts()
        assert [("PROBLEM" in t, "RESOLVED" in t) for t in texts] == [(True, False), (False, True)], texts
        assert "config.yaml:7" in texts[0]
    finally:
        hook.stop()


def test_a_failed_delivery_is_retried_with_backoff(tmp_path):
    hook = WebhookReceiver()
    hook.fail_next = 1
    try:
        config = config_for(tmp_path, hook)
        store = StateStore(config.paths.state)
        store.set_usage_cap("x-app", None, "usage-capped")
        evaluate(store, config, T0, [])
        notify = NotifyStore(store)
        assert deliver_due(notify, config, T0) == 0 and hook.bodies == []
        assert deliver_due(notify, config, T0 + timedelta(seconds=5)) == 0  # not due yet: backoff
        assert deliver_due(notify, config, T0 + timedelta(seconds=11)) == 1
        assert len(hook.bodies) == 1 and "usage cap" in hook.texts()[0]
        assert notify.queued() == 0
    finally:
        hook.stop()


def test_events_of_the_first_harvest_after_a_first_start_are_told_but_older_history_is_not(tmp_path):
    """The jobs start as soon as the daemon does: their first ledger events may come before the
    first evaluation, and must be told all the same (the history before the start must not)."""
    from sfm_archiver.ledger import Ledger
    from sfm_archiver.notify.service import anchor_ledger_cursor

    hook = WebhookReceiver()
    try:
        config = config_for(tmp_path, hook)
        store = StateStore(config.paths.state)
        ledger = Ledger(config.paths.state)
        ledger.append(account_id="400", event="suspended", observed_by={"job": "old", "run": "r0"}, from_="active", to="suspended")
        anchor_ledger_cursor(store, config)  # the daemon's start, before its scheduler
        ledger.append(account_id="401", event="suspended", observed_by={"job": "timeline", "run": "r1"}, from_="active", to="suspended")
        anchor_ledger_cursor(store, config)  # a second start keeps the cursor where it was
        evaluate(store, config, T0, [])
        deliver_due(NotifyStore(store), config, T0 + timedelta(seconds=1))
        (text,) = hook.texts()
        assert "401 suspended" in text and "400" not in text
    finally:
        hook.stop()


def test_account_changes_of_one_run_are_one_message_and_never_repeated(tmp_path):
    from sfm_archiver.ledger import Ledger

    hook = WebhookReceiver()
    try:
        config = config_for(tmp_path, hook)
        store = StateStore(config.paths.state)
        evaluate(store, config, T0, [])  # first sight of the ledger: old events are not told
        ledger = Ledger(config.paths.state)
        run = {"job": "update_usernames", "run": "abc123"}
        for n, event in enumerate(("suspended", "protected", "deactivated")):
            ledger.append(account_id=str(500 + n), event=event, observed_by=run, from_="active", to=event)
        ledger.append(account_id="600", event="renamed", observed_by={"job": "update_usernames", "run": "def456"},
                      from_="oldname", to="newname")
        ledger.append(account_id="700", event="paused", observed_by=run, from_="active", to="paused")
        evaluate(store, config, T0 + timedelta(seconds=2), [])
        store.close()
        store = StateStore(config.paths.state)  # restart: the cursor is in the state store
        evaluate(store, config, T0 + timedelta(seconds=4), [])
        deliver_due(NotifyStore(store), config, T0 + timedelta(seconds=5))
        (text,) = hook.texts()
        assert "3 account changes seen by update_usernames run abc123" in text
        assert "500 suspended" in text and "501 protected" in text and "502 deactivated" in text
        assert "600 renamed @oldname -> @newname" in text
        assert "700 paused" not in text and "paused" not in text  # an operator's pause is not news
    finally:
        hook.stop()
