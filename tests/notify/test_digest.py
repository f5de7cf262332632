"""The digest's SFM-style comparisons, checked against an oracle computed from the runs created."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

from sfm_archiver.config import Collection
from sfm_archiver.notify import digest
from sfm_archiver.notify.delivery import deliver_due
from sfm_archiver.notify.service import digest_if_due
from sfm_archiver.notify.settings import Smtp
from sfm_archiver.notify.store import NotifyStore
from sfm_archiver.state import StateStore
from tests.notify.receivers import SmtpReceiver
from tests.notify.test_alerts import config_for

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=timezone.utc)


def make_runs(store: StateStore, rng: random.Random) -> list[tuple[datetime, int]]:
    """Timeline runs every 3 hours over 70 days with random post counts; returns (start, posts)."""
    made, moment = [], NOW - timedelta(days=70)
    with store.transaction() as db:
        while moment < NOW:
            posts = rng.randint(0, 50)
            db.execute("INSERT INTO runs (run_id, job, collection, started_at, ended_at, result, counts, warnings, errors) "
                       "VALUES (?, 'user_timeline', 'news', ?, ?, 'ok', ?, '[]', '[]')",
                       (uuid.uuid4().hex[:12], moment.isoformat(timespec="milliseconds"),
                        moment.isoformat(timespec="milliseconds"), json.dumps({"posts": posts})))
            made.append((moment, posts))
            moment += timedelta(hours=3, minutes=rng.randint(0, 20))
    return made


def oracle(made: list[tuple[datetime, int]], first_day: date, last_day: date) -> int:
    """Posts of runs started on the calendar days first_day..last_day inclusive."""
    return sum(posts for start, posts in made if first_day <= start.date() <= last_day)


def test_comparisons_yesterday_7_and_30_days(tmp_path):
    config = config_for(tmp_path, None)
    config = replace(config, collections=config.collections + (Collection(name="news", type="timeline"),))
    store = StateStore(config.paths.state)
    made = make_runs(store, random.Random(15))
    data = digest.build(store, config, NOW, [])
    (news,) = [c for c in data["collections"] if c["name"] == "news"]
    today = NOW.date()
    day = timedelta(days=1)
    expected = {
        "yesterday": (oracle(made, today - day, today - day), oracle(made, today - 2 * day, today - 2 * day)),
        "7 days": (oracle(made, today - 7 * day, today - day), oracle(made, today - 14 * day, today - 8 * day)),
        "30 days": (oracle(made, today - 30 * day, today - day), oracle(made, today - 60 * day, today - 31 * day)),
    }
    got = {name: (pair["recent"], pair["previous"]) for name, pair in news["comparisons"].items()}
    assert got == expected
    assert all(recent > 0 for recent, _ in expected.values())
    text = digest.render_text(data)
    assert f"{expected['7 days'][0]} / {expected['7 days'][1]} posts" in text


def test_digest_is_sent_once_at_its_time_by_mail(tmp_path):
    smtp = SmtpReceiver()
    try:
        config = config_for(tmp_path, None)
        config = replace(config, notify=replace(config.notify, digest="daily", digest_at="07:00",
                                                 smtp=Smtp(host="127.0.0.1", port=smtp.port, security="none", to=("a@example.edu",))))
        store = StateStore(config.paths.state)
        assert not digest_if_due(store, config, NOW, [])          # first sight: plans the next one
        assert not digest_if_due(store, config, NOW + timedelta(hours=20), [])
        assert digest_if_due(store, config, NOW + timedelta(hours=22), [])   # past 07:00 the next day
        assert not digest_if_due(store, config, NOW + timedelta(hours=22, minutes=1), [])
        deliver_due(NotifyStore(store), config, NOW + timedelta(hours=22, minutes=2))
        assert len(smtp.messages) == 1
        message = smtp.messages[0]
        assert "digest" in message["Subject"]
        assert message.get_body(("html",)) is not None and "yesterday" in message.get_body(("plain",)).get_content()
    finally:
        smtp.stop()
