"""When a job is due after a restart: properties of `next_due` against independent oracles.

The crontab oracle walks the clock minute by minute and matches the fields by hand (day names,
so there is no numbering to share with the code); the restart simulations replay a server
restarted on a cadence and count the runs a year of it would see.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.config import parse_schedule
from sfm_archiver.scheduling import due_of, next_due
from sfm_archiver.state import StateStore

BASE = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # a Monday
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
moments = st.integers(min_value=0, max_value=20 * 24 * 60 * 60).map(lambda s: BASE + timedelta(seconds=s))


def _weekly(minute: int, hour: int, day: int) -> str:
    return f"{minute} {hour} * * {DAYS[day]}"


def _fires(minute: int, hour: int, day: int, after: datetime, until: datetime) -> list[datetime]:
    """Every fire time in (after, until], found by walking whole minutes."""
    moment = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    found = []
    while moment <= until:
        if moment.minute == minute and moment.hour == hour and moment.weekday() == day:
            found.append(moment)
        moment += timedelta(minutes=1)
    return found


@settings(max_examples=60, deadline=None)
@given(
    minute=st.integers(0, 59), hour=st.integers(0, 23), day=st.integers(0, 6),
    anchor=moments, later=st.integers(0, 15 * 24 * 3600), catch_up=st.booleans(),
)
def test_a_missed_crontab_time_runs_once_at_start_or_waits_for_the_next(minute, hour, day, anchor, later, catch_up):
    now = anchor + timedelta(seconds=later)
    due = next_due(parse_schedule(_weekly(minute, hour, day)), last_start=anchor, since=anchor - timedelta(days=30),
                   catch_up=catch_up, now=now)
    missed = _fires(minute, hour, day, anchor, now)
    upcoming = _fires(minute, hour, day, now, now + timedelta(days=8))[0]
    if missed and catch_up:
        assert due == now
    else:
        assert due == upcoming
    assert due >= now


@settings(max_examples=60, deadline=None)
@given(minute=st.integers(0, 59), hour=st.integers(0, 23), day=st.integers(0, 6), since=moments, later=st.integers(0, 15 * 24 * 3600))
def test_a_job_that_never_ran_owes_the_times_since_it_was_scheduled(minute, hour, day, since, later):
    now = since + timedelta(seconds=later)
    due = next_due(parse_schedule(_weekly(minute, hour, day)), last_start=None, since=since, catch_up=True, now=now)
    assert due == (now if _fires(minute, hour, day, since, now) else _fires(minute, hour, day, now, now + timedelta(days=8))[0])


@settings(max_examples=60, deadline=None)
@given(interval=st.integers(1, 14 * 24 * 3600), last=st.one_of(st.none(), moments), later=st.integers(0, 30 * 24 * 3600))
def test_an_interval_job_is_due_its_interval_after_its_last_start(interval, last, later):
    now = (last or BASE) + timedelta(seconds=later)
    due = next_due(parse_schedule(f"every {interval}s"), last_start=last, since=BASE, catch_up=False, now=now)
    if last is None or later >= interval:
        assert due == now  # never ran, or overdue: at once
    else:
        assert due == last + timedelta(seconds=interval)


def _up_times(restarts: timedelta, weeks: int) -> list[tuple[datetime, datetime]]:
    """(boot, down) of a daemon restarted every `restarts`; a restart takes two minutes."""
    ups, boot, end = [], BASE, BASE + timedelta(weeks=weeks)
    while boot < end:
        down = min(boot + restarts, end)
        ups.append((boot, down))
        boot = down + timedelta(minutes=2)
    return ups


def _replay(schedule: str, ups: list[tuple[datetime, datetime]], run_length: timedelta, catch_up: bool = True) -> list[datetime]:
    """Start times of a job over those up times, asking `next_due` at each start and after each run."""
    parsed = parse_schedule(schedule)
    last, starts = None, []
    for boot, down in ups:
        now = boot
        while True:
            due = next_due(parsed, last_start=last, since=BASE, catch_up=catch_up, now=now)
            if due >= down:
                break
            last = due
            starts.append(due)
            now = due + run_length
    return starts


@settings(max_examples=30, deadline=None)
@given(restart_hours=st.integers(1, 7 * 24), weeks=st.integers(2, 8))
def test_every_7d_runs_weekly_on_a_server_restarted_more_often_than_weekly(restart_hours, weeks):
    starts = _replay("every 7d", _up_times(timedelta(hours=restart_hours), weeks), timedelta(minutes=5))
    assert len(starts) >= weeks - 1
    assert all(later - earlier >= timedelta(days=7) for earlier, later in zip(starts, starts[1:], strict=False))


@settings(max_examples=30, deadline=None)
@given(restart_hours=st.integers(1, 30 * 24), weeks=st.integers(2, 10), catch_up=st.booleans())
def test_a_weekly_crontab_job_runs_each_time_it_is_up_and_catches_up_once_per_outage(restart_hours, weeks, catch_up):
    ups = _up_times(timedelta(hours=restart_hours), weeks)
    starts = _replay("0 3 * * sat", ups, timedelta(minutes=5), catch_up)
    expected, previous_down = [], BASE
    for boot, down in ups:
        if catch_up and _fires(0, 3, 5, previous_down - timedelta(microseconds=1), boot - timedelta(microseconds=1)):
            expected.append(boot)  # one run for every time missed while it was down
        expected += _fires(0, 3, 5, boot - timedelta(microseconds=1), down - timedelta(microseconds=1))
        previous_down = down
    assert starts == expected


def test_the_status_reading_of_a_stored_record_is_the_daemons(tmp_path):
    store = StateStore(tmp_path)
    store.set_job_schedule("timeline:news", "every 2h", 7200.0, True, BASE)
    store.update_job_schedule("timeline:news", last_start=BASE + timedelta(minutes=10))
    record = store.job_schedule("timeline:news")
    assert due_of(record, BASE + timedelta(minutes=30)) == BASE + timedelta(hours=2, minutes=10)
    assert due_of(record, BASE + timedelta(hours=5)) == BASE + timedelta(hours=5)
    store.set_job_schedule("timeline:news", "every 2h", 7200.0, False, BASE + timedelta(days=1))
    assert store.job_schedule("timeline:news")["scheduled_since"] == record["scheduled_since"]  # same schedule: kept
    store.set_job_schedule("timeline:news", "0 3 * * sat", None, True, BASE + timedelta(days=1))
    assert store.job_schedule("timeline:news")["scheduled_since"] != record["scheduled_since"]


def test_crontab_days_of_the_week_count_from_sunday_as_cron_does():
    # crontab: 0 and 7 are Sunday, 6 is Saturday; Python: Monday is weekday() 0
    for field, weekdays in (("6", {5}), ("0", {6}), ("7", {6}), ("sat", {5}), ("1-5", {0, 1, 2, 3, 4}),
                            ("*/2", {6, 1, 3, 5}), ("5-7", {4, 5, 6}), ("0,3", {6, 2}), ("mon-fri/2", {0, 2, 4}),
                            ("0-6", set(range(7)))):
        schedule = parse_schedule(f"0 3 * * {field}")
        fires, moment = set(), BASE
        for _ in range(7):
            moment = next_due(schedule, last_start=moment, since=None, catch_up=True, now=moment)
            fires.add(moment.weekday())
        assert fires == weekdays, field
