"""Which periods are complete: period end, grace, --before, and writers still holding files."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta

from sfm_archiver.bagging import bag_completed_periods, pending_periods
from sfm_archiver.storage.writer import CaptureWriter
from tests.bagging.conftest import DAY1, UTC, assert_each_capture_once, capture_lines


def statuses(results):
    return {r["name"]: r["status"] for r in results}


def test_open_and_grace_periods_are_never_bagged(env):
    env.fill("gw", days=2, hours=(3, 14))
    # Day 2 ends at DAY1+2d; grace is 1h.
    during = DAY1 + timedelta(days=1, hours=20)
    assert statuses(bag_completed_periods(env.context(now=during))) == {"gw_2024-03-01": "bagged"}
    in_grace = DAY1 + timedelta(days=2, minutes=59)
    assert bag_completed_periods(env.context(now=in_grace)) == []
    assert (env.archive / "gw/2024/03/02/14").is_dir()
    after_grace = DAY1 + timedelta(days=2, hours=1)
    assert statuses(bag_completed_periods(env.context(now=after_grace))) == {"gw_2024-03-02": "bagged"}
    assert_each_capture_once(env)


def test_before_limits_periods_and_cannot_reach_into_grace(env):
    env.fill("gw", days=3, hours=(5,))
    now = DAY1 + timedelta(days=3, minutes=30)  # day 3 ended 30 minutes ago: inside grace
    ctx = env.context(now=now)
    first = bag_completed_periods(ctx, before=DAY1 + timedelta(days=1))
    assert statuses(first) == {"gw_2024-03-01": "bagged"}
    later = bag_completed_periods(ctx, before=DAY1 + timedelta(days=10))
    assert statuses(later) == {"gw_2024-03-02": "bagged"}
    assert (env.archive / "gw/2024/03/03/05").is_dir()


def test_period_with_an_open_writer_is_not_bagged(env):
    env.fill("gw", days=1, hours=(2,))
    ctx = env.context(now=DAY1 + timedelta(days=5))
    writer = CaptureWriter(env.archive, "gw", "timeline", clock=lambda: DAY1 + timedelta(hours=9), registry=ctx.store)
    writer.write_batch(capture_lines(3, env.rng))
    assert ctx.store.open_files("gw")
    results = bag_completed_periods(ctx)
    assert statuses(results) == {"gw_2024-03-01": "writer"}
    assert [p["status"] for p in pending_periods(ctx)] == ["writer"]
    assert writer.path.exists() and not any(env.outbox.glob("gw_*"))
    writer.close()
    assert statuses(bag_completed_periods(ctx)) == {"gw_2024-03-01": "bagged"}


def test_file_left_open_by_a_dead_writer_is_sealed_then_bagged(env):
    ctx = env.context(now=DAY1 + timedelta(days=5))
    code = (
        "import sys, os\n"
        "from datetime import datetime, timezone\n"
        "from sfm_archiver.state import StateStore\n"
        "from sfm_archiver.storage.writer import CaptureWriter\n"
        "w = CaptureWriter(sys.argv[1], 'gw', 'timeline', clock=lambda: datetime(2024, 3, 1, 9, tzinfo=timezone.utc),"
        " registry=StateStore(sys.argv[2]))\n"
        "w.write_batch([b'{\"data\": []}\\n'])\n"
        "open(w.path, 'ab').write(b'\\x1f\\x8b torn tail')\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(env.archive), str(env.state)], check=True, timeout=30)
    [entry] = ctx.store.open_files("gw")
    path = entry["path"]
    results = bag_completed_periods(ctx)
    assert statuses(results) == {"gw_2024-03-01": "bagged"}
    assert ctx.store.open_files("gw") == []
    assert not os.path.exists(path)
    run = ctx.store.last_run("gw", "bag")
    assert any("torn tail" in w for w in run["warnings"])


def test_unknown_collection_is_a_usage_error(env):
    import pytest

    from sfm_archiver.errors import UsageError

    with pytest.raises(UsageError, match="nope"):
        bag_completed_periods(env.context(now=datetime(2030, 1, 1, tzinfo=UTC)), ["nope"])


def test_collection_removed_from_the_config_is_still_bagged(make_env):
    env = make_env(collections=[{"name": "climate", "type": "filter_stream", "rules": ["x"]}])
    env.fill("oldcoll", days=1)
    results = bag_completed_periods(env.context(now=DAY1 + timedelta(days=3)))
    assert statuses(results) == {"oldcoll_2024-03-01": "bagged"}
    text = (env.outbox / "oldcoll_2024-03-01/data/provenance/collection.json").read_text()
    assert "not in the configuration" in text
