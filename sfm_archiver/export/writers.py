"""The export's file formats, each streaming rows to `<name>_NNN.<ext>` segments.

Spreadsheet formula guard: in CSV and TSV a text cell starting with `=`, `+`, `-` or `@` gets a
leading `'`, so a spreadsheet shows it as text instead of running it as a formula (readers that
want the exact text drop that one character). XLSX needs no change of text: its cells are written
as text cells with Excel's quote-prefix flag, never as formulas.
"""

from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from sfm_archiver.export.columns import Column
from sfm_archiver.export.csvline import GUARDED_STARTS, field_maker, line_maker
from sfm_archiver.export.flatten import to_json

_LINE_BREAKS = re.compile("[\u0085\u2028\u2029]")
XLSX_MAX_ROWS = 1_048_576  # Excel's limit per sheet, the header row included
XLSX_MAX_CHARS = 32_767  # Excel's limit per cell
PARQUET_BATCH_ROWS = 10_000
CSV_BATCH_ROWS = 1000
WRITE_BUFFER = 1 << 20


def guard(text: str) -> str:
    """A text cell that a spreadsheet would take for a formula, made plain text."""
    return "'" + text if text.startswith(GUARDED_STARTS) else text


class FormatWriter:
    """One segment file at a time; `Segments` opens, feeds and closes them."""

    ext = ""
    item = "row"  # what `prepare` takes: a row (values in the order of `columns`), the nested post ("post") or the id ("id")
    batch_rows = 0  # > 0: `put` takes batches of up to this many prepared rows (`batch`), not rows

    def __init__(self, columns: tuple[Column, ...], notes: dict[str, int]):
        self.columns = columns
        self.names = [column.name for column in columns]
        self.notes = notes  # counts of adjustments the README reports (truncated cells, ...)

    def open(self, path: Path) -> None:
        raise NotImplementedError

    def prepare(self, item: Any) -> Any:
        """The part of writing an item that needs no open file (a worker process may do it)."""
        return item

    def batch(self, prepared: list[Any]) -> Any:
        """Prepared rows as one batch (formats with `batch_rows`); it has a `len` and a `slice`."""
        raise NotImplementedError

    def put(self, prepared: Any) -> None:
        """Write a prepared item (or batch) to the open file."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class CsvWriter(FormatWriter):
    ext = "csv"
    delimiter = ","

    def __init__(self, columns: tuple[Column, ...], notes: dict[str, int]):
        super().__init__(columns, notes)
        if len(columns) > 1:
            self.prepare = line_maker(self.delimiter, columns)
        else:
            self._field = field_maker(self.delimiter)

    def open(self, path: Path) -> None:
        self._file = open(path, "w", encoding="utf-8", newline="", buffering=WRITE_BUFFER)
        csv.writer(self._file, delimiter=self.delimiter).writerow(self.names)
        self._lines: list[str] = []

    def put(self, prepared: str) -> None:
        self._lines.append(prepared)
        if len(self._lines) >= CSV_BATCH_ROWS:
            self._flush()

    def prepare(self, item: Sequence) -> str:
        """The line of a row of one field (`csv.writer` quotes it when it is empty)."""
        return (self._field(item[0]) or '""') + "\r\n"

    def _flush(self) -> None:
        self._file.write("".join(self._lines))
        self._lines = []

    def close(self) -> None:
        self._flush()
        self._file.close()


class TsvWriter(CsvWriter):
    ext = "tsv"
    delimiter = "\t"


class JsonLinesWriter(FormatWriter):
    """UTF-8 JSON, one object per line; characters that some readers take for line breaks
    (U+0085, U+2028, U+2029) are written as escapes, so every reader sees one post per line."""

    ext = "jsonl"
    item = "post"

    def open(self, path: Path) -> None:
        self._file = open(path, "w", encoding="utf-8")

    def prepare(self, item: dict) -> str:
        line = to_json(item)
        if _LINE_BREAKS.search(line):
            line = _LINE_BREAKS.sub(lambda match: f"\\u{ord(match.group()):04x}", line)
        return line + "\n"

    def put(self, prepared: str) -> None:
        self._file.write(prepared)

    def close(self) -> None:
        self._file.close()


class IdsWriter(FormatWriter):
    ext = "txt"
    item = "id"

    def open(self, path: Path) -> None:
        self._file = open(path, "w", encoding="utf-8")

    def put(self, prepared: str) -> None:
        self._file.write(prepared + "\n")

    def close(self) -> None:
        self._file.close()


class XlsxWriter(FormatWriter):
    """xlsxwriter in constant-memory mode; a new sheet every 1,048,575 rows."""

    ext = "xlsx"

    def open(self, path: Path) -> None:
        import xlsxwriter

        self._book = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
            "strings_to_urls": False, "nan_inf_to_errors": True,
        })
        self._quoted = self._book.add_format({"quote_prefix": True})
        self._sheets = 0
        self._new_sheet()

    def _new_sheet(self) -> None:
        self._sheets += 1
        self._sheet = self._book.add_worksheet("posts" if self._sheets == 1 else f"posts_{self._sheets}")
        for number, name in enumerate(self.names):
            self._sheet.write_string(0, number, name)
        self._row = 1

    def put(self, prepared: Sequence) -> None:
        item = prepared
        if self._row >= XLSX_MAX_ROWS:
            self._new_sheet()
        sheet, row = self._sheet, self._row
        for number, value in enumerate(item):
            if value is None:
                continue
            if value is True or value is False:
                sheet.write_boolean(row, number, value)
            elif isinstance(value, int) and abs(value) < 2**53:
                sheet.write_number(row, number, value)
            else:
                text = value if isinstance(value, str) else to_json(value) if isinstance(value, (list, dict)) else str(value)
                if len(text) > XLSX_MAX_CHARS:
                    self.notes["xlsx cells cut to 32,767 characters (Excel's limit)"] += 1
                    text = text[:XLSX_MAX_CHARS]
                if text.startswith(GUARDED_STARTS):
                    sheet.write_string(row, number, text, self._quoted)
                else:
                    sheet.write_string(row, number, text)
        self._row += 1

    def close(self) -> None:
        self._book.close()


class ParquetWriter(FormatWriter):
    """Typed columns (ids and text as strings, counts as int64, flags as bool, times as UTC
    timestamps), written in record batches: each file's rows in batches of PARQUET_BATCH_ROWS,
    made where the rows are (a worker process), so the export's process only writes them."""

    ext = "parquet"
    batch_rows = PARQUET_BATCH_ROWS

    def __init__(self, columns: tuple[Column, ...], notes: dict[str, int]):
        super().__init__(columns, notes)
        self._json = tuple(n for n, column in enumerate(columns) if column.type == "json")
        self._schema = None

    def prepare(self, item: Sequence) -> Sequence:
        """Lists and objects as JSON text."""
        if not self._json:
            return item
        row = list(item)
        for n in self._json:
            if row[n] is not None:
                row[n] = to_json(row[n])
        return row

    def batch(self, prepared: list[Sequence]):
        import pyarrow as pa

        arrays = [self._array(pa, list(values), column)
                  for values, column in zip(zip(*prepared, strict=True), self.columns, strict=True)]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema(pa))

    def schema(self, pa):
        if self._schema is None:
            self._schema = pa.schema([(column.name, _arrow_type(pa, column.type)) for column in self.columns])
        return self._schema

    def open(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(str(path), self.schema(pa), compression="zstd")

    def put(self, prepared) -> None:
        self._writer.write_batch(prepared)

    def _array(self, pa, values: list[Any], column: Column):
        kind = column.type
        arrow_type = _arrow_type(pa, kind)
        try:
            if kind == "time":
                return pa.array(values, type=pa.string()).cast(arrow_type)
            return pa.array(values, type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):  # e.g. a count >= 2**63
            converted = [_coerce(value, kind) for value in values]
            self.notes[f"parquet values that did not fit their column's type, left empty ({column.name})"] += sum(
                1 for before, after in zip(values, converted, strict=True) if before is not None and after is None)
            return pa.array(converted, type=arrow_type)

    def close(self) -> None:
        self._writer.close()


def _arrow_type(pa, kind: str):
    return {"int": pa.int64(), "bool": pa.bool_(), "time": pa.timestamp("ms", tz="UTC")}.get(kind, pa.string())


def _coerce(value: Any, kind: str) -> Any:
    """One value in its column's type, or None when it has none."""
    if value is None:
        return None
    if kind == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63 else None
    if kind == "bool":
        return value if isinstance(value, bool) else None
    if kind == "time":
        try:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return value if isinstance(value, str) else to_json(value)  # as the text formats write it


FORMATS: dict[str, type[FormatWriter]] = {
    "csv": CsvWriter, "tsv": TsvWriter, "xlsx": XlsxWriter, "jsonl": JsonLinesWriter,
    "parquet": ParquetWriter, "ids": IdsWriter,
}


class Segments:
    """Rows into `<name>_001.<ext>`, `<name>_002.<ext>`, ...: a new file every `segment` rows."""

    def __init__(self, folder: Path, name: str, writer: FormatWriter, segment: int,
                 on_file: Callable[[Path, int], None]):
        self.folder, self.name, self.writer, self.segment = folder, name, writer, segment
        self.on_file = on_file
        self.files = 0
        self.rows_in_file = 0
        self._path: Path | None = None

    def put(self, prepared: Any) -> None:
        """A prepared item, or batch (`FormatWriter.prepare`, `batch`: perhaps made in another
        process); a batch is split where a segment ends."""
        if not self.writer.batch_rows:
            self._room()
            self.writer.put(prepared)
            self.rows_in_file += 1
            return
        done, size = 0, len(prepared)
        while done < size:
            self._room()
            part = min(size - done, self.segment - self.rows_in_file)
            self.writer.put(prepared if part == size else prepared.slice(done, part))
            self.rows_in_file += part
            done += part

    def _room(self) -> None:
        """An open file with room for a row."""
        if self._path is None or self.rows_in_file >= self.segment:
            self._close_file()
            self.files += 1
            self._path = self.folder / f"{self.name}_{self.files:03d}.{self.writer.ext}"
            self.writer.open(self._path)

    def close(self) -> None:
        """Close the last file; an export without rows still gets one file (a header only)."""
        if self._path is None:
            self.files = 1
            self._path = self.folder / f"{self.name}_001.{self.writer.ext}"
            self.writer.open(self._path)
        self._close_file()

    def _close_file(self) -> None:
        if self._path is not None:
            self.writer.close()
            self.on_file(self._path, self.rows_in_file)
            self._path = None
            self.rows_in_file = 0

