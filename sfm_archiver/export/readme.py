"""`README.txt` and `manifest-sha256.txt` of an export folder: what it holds and how it was made."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sfm_archiver import __version__
from sfm_archiver.durable import atomic_write
from sfm_archiver.export.columns import select_columns
from sfm_archiver.export.sources import sha256_of
from sfm_archiver.export.writers import GUARDED_STARTS
from sfm_archiver.timeutil import rfc3339_ms

if TYPE_CHECKING:
    from sfm_archiver.export.run import ExportResult

README = "README.txt"
MANIFEST = "manifest-sha256.txt"
ACCOUNTS_LISTED = 1000

_FORMATS = {
    "csv": "CSV, UTF-8, comma-separated, a header row",
    "tsv": "TSV, UTF-8, tab-separated (CSV quoting where a value holds a tab or newline), a header row",
    "xlsx": "Excel workbooks; a sheet holds at most 1,048,575 rows, then posts_2, ... follow",
    "jsonl": "JSON lines: one post per line as `twarc2 flatten` shapes it (author, referenced posts, media "
             "inline) plus its capture's __sfm; twarc plugins read it",
    "parquet": "Parquet with typed columns (ids and text strings, counts int64, flags bool, times UTC timestamps)",
    "ids": "one post id per line (dehydrated: hydrate under X's terms)",
}
_BLUESKY_FORMATS = {  # where Bluesky's rows differ
    "jsonl": "JSON lines: one post per line as captured (an author feed's item, or a Jetstream event) plus its capture's __sfm",
    "ids": "one post at:// URI per line",
}


def write_readme_and_manifest(folder: Path, result: ExportResult) -> None:
    atomic_write(folder / README, render_readme(result).encode())
    lines = [f"{sha256_of(folder / name)}  {name}" for name, _rows in result.files] + [
        f"{sha256_of(folder / README)}  {README}"]
    atomic_write(folder / MANIFEST, ("\n".join(lines) + "\n").encode())


def render_readme(result: ExportResult) -> str:
    request = result.request
    out: list[str] = [
        "sfm-archiver export",
        "===================",
        "",
        f"Made {rfc3339_ms(result.started)} by sfm-archiver {__version__}.",
        "",
        "What was asked",
        "--------------",
        f"collections: {', '.join(request.collections)}",
        f"platform: {result.platform}",
        f"format: {request.format} ({_format_text(request.format, result.platform)})",
        f"dedupe: {request.dedupe}" + {
            "latest": " (a post captured several times is one row: its most recent capture)",
            "first": " (a post captured several times is one row: its earliest capture)",
            "none": " (every capture of a post is a row; captured_at tells them apart)"}[request.dedupe],
        f"time range: {request.start or 'any'} to {request.end or 'any'} by "
        + ("posting time (created_at)" if request.by == "posted" else "capture time (captured_at)")
        + " (--end dates include their whole day)",
        f"kind: {request.kind or 'timeline and stream'}",
        f"include referenced posts as rows: {'yes' if request.include_referenced else 'no'}",
        f"rows per file: {request.segment:,}",
    ]
    if request.accounts:
        out.append("accounts: " + "; ".join(
            f"{name} = ids {', '.join(sorted(result.account_ids.get(name) or [])) or 'none in the ledger'}"
            f" (any username held, from the ledger; also posts whose author had this username at capture)"
            for name in request.accounts))
    out += ["", "Sources", "-------"]
    for source in result.sources:
        label = f"{source.type} {source.path}"
        if source.name:
            label += f" (bag {source.name}"
            label += f", sha256 of {'the .tar' if source.type == 'tar' else 'manifest-sha256.txt'} {source.checksum})"
        state = "SKIPPED, not read (why below)" if source.skipped else f"{len(source.files)} capture files"
        out.append(f"{label}: {state}")
        out += [f"    {problem}" for problem in source.problems[:50]]
    out += ["", "Files", "-----"]
    out += [f"{name}: {rows:,} rows" for name, rows in result.files]
    out += [
        "", "Counts", "------",
        f"rows written: {result.rows:,}",
        f"post captures read (after filters): {result.captures:,}",
    ]
    if request.dedupe != "none":
        out.append(f"duplicate captures left out: {result.captures - result.rows:,}")
    out += [f"collection {name}: {result.by_collection.get(name, 0):,} rows" for name in request.collections]
    out += [f"kind {name}: {count:,} rows" for name, count in sorted(result.by_kind.items())]
    out.append(f"capture time range: {_span(result.captured_range)}")
    out.append(f"posting time range: {_span(result.posted_range)}")
    out.append(f"link checks joined (urls.final): {result.links:,}")
    if result.by_account:
        out += ["", "Rows per timeline account (id, username at capture)"]
        for account_id, count in result.by_account.most_common(ACCOUNTS_LISTED):
            out.append(f"{account_id} {result.account_names.get(account_id, '')}: {count:,}")
        if len(result.by_account) > ACCOUNTS_LISTED:
            out.append(f"... and {len(result.by_account) - ACCOUNTS_LISTED:,} more accounts")
    out += ["", "Skipped or damaged inputs", "-------------------------"]
    if result.problem_count or any(source.skipped for source in result.sources):
        out += result.problems
        if result.problem_count > len(result.problems):
            out.append(f"... and {result.problem_count - len(result.problems):,} more")
        skipped = [source for source in result.sources if source.skipped]
        out += [f"{source.path}: skipped, not read (see Sources)" for source in skipped]
    else:
        out.append("none: every input was read whole")
    out += ["", "Columns", "-------"]
    if request.format in ("jsonl", "ids"):
        out.append("(this format has no columns; the table below is what csv, tsv, xlsx and parquet hold)")
    out += [f"{column.name} ({column.type}): {column.doc}" for column in select_columns(request.columns, result.platform)]
    out += ["", "Fields outside the columns", "--------------------------"]
    if result.unknown:
        out.append("Fields of the posts written that no column holds (kept in the raw captures; "
                   "`--columns all` adds them as JSON in the column `extra`; jsonl keeps them):")
        out += [f"{path}: {count:,} rows" for path, count in sorted(result.unknown.items())]
    else:
        out.append("none")
    if result.notes:
        out += ["", "Adjustments", "-----------"] + [f"{note}: {count:,}" for note, count in sorted(result.notes.items())]
    out += [
        "", "Notes", "-----",
        "Ids are strings in every format (a spreadsheet must not round 19-digit ids).",
        f"Formula guard: in CSV and TSV a text cell starting with {' '.join(GUARDED_STARTS)} has a ' added in "
        "front, so spreadsheets show it as text instead of running it; drop that one character to get the "
        "exact text. XLSX cells are text cells (quote-prefixed), never formulas, with the text unchanged.",
        "Metadata caveat: counts and profile fields (likes, reposts, followers, display names, descriptions) "
        "are as of capture time (captured_at), not posting time.",
        "Long posts: `text` holds the full text of `note_tweet` where X sent one." if result.platform == "x" else
        "Reposts: a post reposted into a feed is a row of the reposted post with repost.by (the reposter's DID); "
        "dedupe keeps it apart from the post's own row (its key is the URI and the reposter).",
        f"{MANIFEST} lists the sha256 of every file here but itself.",
        "",
    ]
    return "\n".join(line for line in out if line is not None)


def _format_text(fmt: str, platform: str) -> str:
    return (_BLUESKY_FORMATS.get(fmt) if platform == "bluesky" else None) or _FORMATS[fmt]


def _span(span: list[str]) -> str:
    return f"{span[0]} to {span[1]}" if span else "no rows"
