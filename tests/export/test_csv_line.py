"""The CSV/TSV writers' own line making agrees with `csv.writer` on any row of JSON values."""

from __future__ import annotations

import csv
import io
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from sfm_archiver.export.columns import COLUMNS
from sfm_archiver.export.writers import CsvWriter, TsvWriter, csv_line_maker, text_cell

tricky = st.sampled_from(["", ",", '"', "\r", "\n", "\r\n", "\t", "=1+1", "+x", "-1", "@a", "'=", " a ", "a,b", 'say "hi"',
                          "\u2028", "\x00", "é", "\\", "x\ty"])
text = tricky | st.text(max_size=12) | st.text(alphabet=',"\r\n\t=+-@ ab', max_size=8)
scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
                      max_leaves=6)


def written_by_csv_module(rows: list, delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows([[text_cell(value) for value in row] for row in rows])
    return out.getvalue()


@settings(max_examples=400, deadline=None)
@given(rows=st.lists(st.lists(values, min_size=2, max_size=6), max_size=4), delimiter=st.sampled_from([",", "\t"]))
def test_line_maker_writes_what_csv_writer_writes(rows, delimiter):
    line = csv_line_maker(delimiter)
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
            sink.write(row)
        sink.close()
        header = [[column.name for column in columns]]
        assert path.read_bytes().decode("utf-8") == written_by_csv_module(header + wide, writer.delimiter)
