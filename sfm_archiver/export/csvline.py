"""CSV/TSV lines made fast: one function compiled per column set, exact as `csv.writer`.

A row's line is the text `csv.writer` (minimal quoting, `\r\n` line ends) writes for its cells:
text with the formula guard (`writers.py`), lists and objects as JSON, the rest as they are.
Making it cell by cell (class tests, a guard test and a quoting test per cell) was most of a CSV
export's time, so `line_maker` compiles a function for the columns at hand: each cell is rendered
by the class its column's type leads to expect, without tests, and one probe of the joined cells
shows whether any of them needed quoting or the guard; only then is the row made cell by cell.
Cells that often need either (the prose columns, JSON) are made exactly each time, outside the
probe. tests/export/test_csv_line.py compares the lines with `csv.writer`'s on arbitrary rows.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from sfm_archiver.export.columns import Column
from sfm_archiver.export.flatten import to_json

GUARDED_STARTS = ("=", "+", "-", "@")
# how a probed cell renders the class its column's type leads to expect ("v" is the value)
_EXPECTED = {
    "int": ("int", "str({v})"),
    "bool": ("bool", "('True' if {v} else 'False')"),
}
_TEXT = ("str", "{v}")  # ids, times and short strings
_COMMON = ("-",)  # guarded starts that probed cells hold elsewhere (every time has two)


def field_maker(delimiter: str) -> Callable[[Any], str]:
    """A function from one value to the exact text of its field in a row of several fields: text
    guarded, lists and objects as JSON, None empty, the rest as `csv` renders it (numbers as
    digits, flags True/False as twarc-csv writes them); quoted when it holds the delimiter, a
    quote or a line break (`in` tests: several times faster than a regular expression here)."""

    def field(value: Any) -> str:
        cls = value.__class__
        if cls is str:
            text = "'" + value if value.startswith(GUARDED_STARTS) else value
        elif value is None:
            return ""
        elif cls is list or cls is dict:
            text = to_json(value)
        else:
            return str(value)  # int, float, bool: never quoted
        if '"' in text:
            return '"' + text.replace('"', '""') + '"'
        return '"' + text + '"' if delimiter in text or "\n" in text or "\r" in text else text

    return field


def line_maker(delimiter: str, columns: Sequence[Column]) -> Callable[[Sequence], str]:
    """A function from a row of `columns` (two or more: `csv.writer` quotes a lone empty field)
    to its line."""
    if len(columns) < 2 or delimiter in '"\r\n{}\\\'':
        raise ValueError("a line maker is for rows of two or more fields and a plain delimiter")
    field = field_maker(delimiter)

    def cell_by_cell(row: Sequence) -> str:
        return delimiter.join(map(field, row)) + "\r\n"

    namespace = {"field": field, "cell_by_cell": cell_by_cell, "GUARDED": GUARDED_STARTS}
    exec(_line_source(delimiter, columns), namespace)  # noqa: S102 (source made here from column types)
    return namespace["line"]


def _line_source(delimiter: str, columns: Sequence[Column]) -> str:
    """The source of `line(row)`: cells `c<n>` of values `v<n>`, the probe, the line."""
    d = repr(delimiter)
    cells = [_cell(f"v{n}", column, d) for n, column in enumerate(columns)]
    probed = [f"c{n}" for n, (_statement, is_probed) in enumerate(cells) if is_probed]
    lines = ["def line(row):", f"    {', '.join(f'v{n}' for n in range(len(columns)))}, = row"]
    lines += [f"    c{n} = {statement}" for n, (statement, _is_probed) in enumerate(cells)]
    if probed:
        # a guarded start after a delimiter; a two-character search costs fifteen times a one-character
        # one, so for the rare characters it is made only once one of them is in the probe at all
        rare = [start for start in GUARDED_STARTS if start not in _COMMON]
        guards = " or ".join([f"{delimiter + start!r} in probe" for start in _COMMON] + [
            f"(({' or '.join(f'{start!r} in probe' for start in rare)})"
            f" and ({' or '.join(f'{delimiter + start!r} in probe' for start in rare)}))"])
        lines += [
            f"    probe = {d}.join(({', '.join(probed)},))",
            f"    if (probe.count({d}) != {len(probed) - 1} or '\"' in probe or '\\r' in probe or '\\n' in probe",
            f"            or probe.startswith(GUARDED) or {guards}):",
            "        return cell_by_cell(row)",
        ]
    lines.append(f"    return {d}.join(({', '.join(f'c{n}' for n in range(len(columns)))},)) + '\\r\\n'")
    return "\n".join(lines) + "\n"


def _cell(v: str, column: Column, d: str) -> tuple[str, bool]:
    """The expression of one cell from its value `v`, and whether the probe checks it (prose and
    JSON are checked here, cell by cell: they often need quoting or the guard)."""
    if column.type == "json":
        return f"'' if {v} is None else field({v})", False
    if column.prose:
        plain = f"not ({v}.startswith(GUARDED) or '\"' in {v} or {d} in {v} or '\\n' in {v} or '\\r' in {v})"
        return f"{v} if {v}.__class__ is str and {plain} else '' if {v} is None else field({v})", False
    cls, render = _EXPECTED.get(column.type, _TEXT)
    return f"{render.format(v=v)} if {v}.__class__ is {cls} else '' if {v} is None else field({v})", True
