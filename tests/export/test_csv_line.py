"""The CSV/TSV writers' own line making agrees with `csv.writer` on any row of JSON values, in
columns of any type (values of the type a column expects, the common case, or of any other)."""

from __future__ import annotations

import csv
import io
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.export.columns import BLUESKY_COLUMNS, COLUMNS, EXTRA
from sfm_archiver.export.csvline import line_maker
from sfm_archiver.export.flatten import to_json
from sfm_archiver.export.writers import GUARDED_STARTS, CsvWriter, TsvWriter

tricky = st.sampled_from(["", ",", '"', "\r", "\n", "\r\n", "\t", "=1+1", "+x", "-1", "@a", "'=", " a ", "a,b", 'say "hi"',
                          "\u2028", "\x00", "é", "\\", "x\ty"])
text = tricky | st.text(max_size=12) | st.text(alphabet=',"\r\n\t=+-@ ab', max_size=8)
scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                      max_leaves=6)
expected = {"int": st.integers(-2**70, 2**70), "bool": st.booleans(), "json": values}


@st.composite
def typed_rows(draw) -> tuple[list, list[list]]:
    """Columns of every table, and rows whose values mostly have the class their column expects."""
    columns = draw(st.lists(st.sampled_from(COLUMNS + BLUESKY_COLUMNS + (EXTRA,)), min_size=2, max_size=8))
    cell = [st.none() | expected.get(column.type, text) | values for column in columns]
    return columns, draw(st.lists(st.tuples(*cell).map(list), max_size=4))


def text_cell(value):
    """A value as the CSV/TSV formats document it: text guarded, lists and objects as JSON."""
    if isinstance(value, str):
        return "'" + value if value.startswith(GUARDED_STARTS) else value
    return to_json(value) if isinstance(value, (list, dict)) else value


def written_by_csv_module(rows: list, delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows([[text_cell(value) for value in row] for row in rows])
    return out.getvalue()


@settings(max_examples=600, deadline=None)
@given(table=typed_rows(), delimiter=st.sampled_from([",", "\t"]))
def test_line_maker_writes_what_csv_writer_writes(table, delimiter):
    columns, rows = table
    line = line_maker(delimiter, columns)
    assert "".join(map(line, rows)) == written_by_csv_module(rows, delimiter)


@settings(max_examples=50, deadline=None)
@given(rows=st.lists(st.lists(values, min_size=1, max_size=1), min_size=1, max_size=5),
       writer=st.sampled_from([CsvWriter, TsvWriter]))
def test_files_of_one_or_many_columns_are_what_csv_writer_writes(tmp_path_factory, rows, writer):
    for columns in (COLUMNS[:1], COLUMNS[:3]):
        wide = [row * len(columns) for row in rows]
        path = tmp_path_factory.mktemp("csv") / f"out.{writer.ext}"
        sink = writer(columns, Counter())
        sink.open(path)
        for row in wide:
            sink.put(sink.prepare(row))
        sink.close()
        header = [[column.name for column in columns]]
        assert path.read_bytes().decode("utf-8") == written_by_csv_module(header + wide, writer.delimiter)
