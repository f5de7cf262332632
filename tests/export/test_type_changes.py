"""Ids that change type break no format: where X sends a string id (a post's author, the account
replied to, a referenced post, a media key, a place, a user in `includes`), a list, object, number
or null joins nothing and the export goes on (hypothesis)."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.export import ExportRequest, run_export

from .helpers import add_capture, harvest, raw_captures, write_config
from .test_unknown_fields import FORMATS, json_values, read_ids

odd_ids = st.lists(json_values, max_size=2) | st.dictionaries(st.text(max_size=4), json_values, max_size=2) | json_values
# (where in a post, or in includes, an id sits)
id_places = st.sampled_from([
    "author_id", "in_reply_to_user_id", "referenced_tweets.type", "referenced_tweets.id", "attachments.media_keys",
    "geo.place_id", "includes.users.id", "includes.tweets.id", "includes.media.media_key", "includes.places.id",
])


def retype(page: dict, place: str, value) -> None:
    if place.startswith("includes."):
        _, kind, key = place.split(".")
        items = page.setdefault("includes", {}).setdefault(kind, [{}])
        for item in items or [{}]:
            item[key] = value
        return
    for post in page["data"]:
        head, _, key = place.partition(".")
        if not key:
            post[head] = value
        elif head == "referenced_tweets":
            post[head] = [{"type": "quoted", "id": "1"} | {key: value}]
        elif head == "attachments":
            post[head] = {key: [value, "3_1"]}
        else:
            post[head] = {key: value}


def test_ids_of_any_type_break_no_format(tmp_path, make_simulator):
    sim = make_simulator(tokens=["timeline-test-token"], accounts=[{"id": "301", "username": "alice", "tweets": 12}])
    config = write_config(tmp_path, sim.base_url, {"tl": ["alice"]})
    assert harvest(config, "tl")["result"] == "ok"
    [page] = raw_captures(tmp_path / "archive", "tl")
    ids = [post["id"] for post in page["data"]]

    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(changes=st.lists(st.tuples(id_places, odd_ids), min_size=1, max_size=3))
    def check(changes):
        changed = copy.deepcopy(page)
        for place, value in changes:
            retype(changed, place, value)
        with tempfile.TemporaryDirectory() as temp:
            archive = Path(temp) / "archive"
            add_capture(archive, "tl", "timeline", [changed])
            for fmt in FORMATS:
                out = Path(temp) / fmt
                result = run_export(ExportRequest(collections=("tl",), sources=(archive,), out=out, format=fmt,
                                                  columns="all" if fmt == "csv" else None,
                                                  accounts=("alice",) if fmt == "tsv" else ()))
                if fmt == "tsv":  # the account filter looks ids up too; alice's posts keep her id or are left out
                    assert set(read_ids(out, fmt)) <= set(ids)
                    continue
                assert result.exit_code == 0 and result.rows == len(ids), fmt
                assert read_ids(out, fmt) == ids, fmt

    check()


def test_counts_beyond_64_bits_break_no_format(tmp_path, make_simulator):
    """JSON numbers have no size limit: a count Parquet's int64 cannot hold is left empty there
    (and counted in the export's notes), and written as sent everywhere else."""
    import pyarrow.parquet as pq

    sim = make_simulator(tokens=["timeline-test-token"], accounts=[{"id": "301", "username": "alice", "tweets": 3}])
    config = write_config(tmp_path, sim.base_url, {"tl": ["alice"]})
    assert harvest(config, "tl")["result"] == "ok"
    [page] = raw_captures(tmp_path / "archive", "tl")
    huge = [2**70, -(2**64)]
    for post, count in zip(page["data"], huge, strict=False):  # the first two posts
        post.setdefault("public_metrics", {})["like_count"] = count
    archive = tmp_path / "odd"
    add_capture(archive, "tl", "timeline", [page])
    for fmt in FORMATS:
        out = tmp_path / f"out-{fmt}"
        result = run_export(ExportRequest(collections=("tl",), sources=(archive,), out=out, format=fmt))
        assert result.exit_code == 0 and result.rows == len(page["data"]), fmt
        if fmt == "parquet":
            [path] = [p for p in out.iterdir() if p.suffix == ".parquet"]
            likes = pq.read_table(path).column("public_metrics.like_count").to_pylist()
            assert likes[:2] == [None, None] and any("like_count" in note for note in result.notes), result.notes
        if fmt == "csv":
            from .helpers import read_csv_rows

            assert [row["public_metrics.like_count"] for row in read_csv_rows(out)][:2] == [str(n) for n in huge]


def test_a_null_id_in_includes_joins_nothing():
    """A post without an author or references gets none from an include whose id is null (what
    a missing reference would otherwise look up)."""
    from sfm_archiver.export.xrows import row_by_name

    record = {"data": [{"id": "1", "text": "t", "referenced_tweets": [{"type": "replied_to", "id": "2"}]}],
              "includes": {"users": [{"id": None, "username": "ghost"}],
                           "tweets": [{"id": None, "author_id": "5"}], "places": [{"id": None, "full_name": "x"}]}}
    [row] = row_by_name(record)
    assert (row["author.username"], row["in_reply_to_username"], row["retweeted_user_id"], row["quoted_user_id"],
            row["geo.full_name"]) == (None, None, None, None, None)
    assert row["referenced_tweets.replied_to.id"] == "2"


def test_a_list_in_a_text_column_is_the_json_text_the_text_formats_write():
    """Where X sends a list or object for a text field, Parquet's string column holds the same
    compact JSON text as a CSV cell (json.dumps with compact separators), numbers as text too."""
    from collections import Counter

    from sfm_archiver.export.columns import BY_NAME
    from sfm_archiver.export.writers import ParquetWriter

    writer = ParquetWriter((BY_NAME["lang"],), Counter())
    values = ["en", ["a", {"b": 1}], {"k": [True, None]}, 7, None]
    batch = writer.batch([writer.prepare((value,)) for value in values])
    expected = [value if isinstance(value, str) or value is None else json.dumps(value, separators=(",", ":"))
                for value in values]
    assert batch.column(0).to_pylist() == expected
