"""A field X adds tomorrow breaks no format: random new fields in captured posts (hypothesis)."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import openpyxl
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.export import ExportRequest, run_export

from .helpers import add_capture, harvest, raw_captures, read_csv_rows, write_config

FORMATS = ("csv", "tsv", "xlsx", "jsonl", "parquet", "ids")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# where a new field may appear: the post, its public_metrics, its author, the author's public_metrics
places = st.sampled_from(["post", "post.public_metrics", "author", "author.public_metrics"])
new_names = st.from_regex(r"zz_[a-z_]{1,10}", fullmatch=True)
# known fields whose value changes type (X changing a field's shape must not break an export either)
retyped = st.lists(st.tuples(st.sampled_from(["lang", "created_at", "possibly_sensitive", "entities", "text"]),
                             json_values), max_size=2)


def test_random_new_fields_break_no_format(tmp_path, make_simulator):
    sim = make_simulator(tokens=["timeline-test-token"], accounts=[{"id": "301", "username": "alice", "tweets": 30}])
    config = write_config(tmp_path, sim.base_url, {"tl": ["alice"]})
    assert harvest(config, "tl")["result"] == "ok"
    [page] = raw_captures(tmp_path / "archive", "tl")
    ids = [post["id"] for post in page["data"]]

    @settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(additions=st.lists(st.tuples(places, new_names, json_values), min_size=1, max_size=4), changes=retyped,
           like_count=json_values)
    def check(additions, changes, like_count):
        changed = copy.deepcopy(page)
        for post in changed["data"]:
            post["public_metrics"]["like_count"] = like_count
            post.update(changes)
        for place, name, value in additions:
            for post in changed["data"]:
                holder = post if place.startswith("post") else changed["includes"]["users"][0]
                if place.endswith("public_metrics"):
                    holder = holder["public_metrics"]
                holder[name] = value
        with tempfile.TemporaryDirectory() as temp:
            archive = Path(temp) / "archive"
            add_capture(archive, "tl", "timeline", [changed])
            for fmt in FORMATS:
                out = Path(temp) / fmt
                result = run_export(ExportRequest(collections=("tl",), sources=(archive,), out=out, format=fmt,
                                                  columns="all" if fmt == "csv" else None))
                assert result.exit_code == 0 and result.rows == len(ids)
                assert read_ids(out, fmt) == ids, fmt
                readme = (out / "README.txt").read_text()
                for place, name, _value in additions:
                    path = {"post": name, "post.public_metrics": f"public_metrics.{name}", "author": f"author.{name}",
                            "author.public_metrics": f"author.public_metrics.{name}"}[place]
                    assert f"{path}: " in readme, (fmt, path)

    check()


def read_ids(folder: Path, fmt: str) -> list[str]:
    if fmt in ("csv", "tsv"):
        return [row["id"] for row in read_csv_rows(folder, fmt)]
    [path] = [p for p in folder.iterdir() if p.name.startswith("tl_")]
    if fmt == "xlsx":
        return [row[0] for row in list(openpyxl.load_workbook(path, read_only=True)["posts"].iter_rows(values_only=True))[1:]]
    if fmt == "parquet":
        return pq.read_table(path).column("id").to_pylist()
    if fmt == "jsonl":
        return [json.loads(line)["id"] for line in path.read_text().splitlines()]
    return path.read_text().splitlines()
