"""The writing pass on every core: capture files to worker processes, rows back in file order.

Making rows (decoding lines, flattening posts, quoting CSV fields) is nearly all of an export's
time, and each file's rows depend only on that file, the dedupe winners and the link finals. So
worker processes make them with the same `RowMaker` (and `write_part`) the export's process uses,
each spilling a file's prepared items (CSV lines, Parquet batches) to a temporary file (memory
stays flat whatever the file's size), and the export's process puts the spills, in file order,
into the segments (the index pass likewise spills index entries): the same files, byte for byte,
as one process writes (tests/export/test_parallel.py checks every format).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from sfm_archiver.export.columns import select_columns
from sfm_archiver.export.index import final_url_reader
from sfm_archiver.export.rows import Emit, FileTally, RowMaker, RowSpec
from sfm_archiver.export.sources import CaptureFile
from sfm_archiver.export.writers import FORMATS, FormatWriter

SPILL_BATCH = 2000  # prepared items per pickle in a spill file
AUTO_MIN_BYTES = 16 << 20  # compressed captures below this are written in one process (workers cost more)


def worker_count(jobs: int, files: list[CaptureFile]) -> int:
    """How many worker processes to use: `jobs` when given (1: none), else one per core for an
    export big enough to gain. Files inside `.tar` bags are read in the export's process."""
    if jobs == 1 or len(files) < 2 or any(file.opener is not None for file in files):
        return 0
    if jobs > 1:
        return min(jobs, len(files))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if cores < 2 or sum(_size(file) for file in files) < AUTO_MIN_BYTES:
        return 0
    return min(cores, len(files))


def map_files(job: Callable[..., Any], tasks: Iterable[tuple], workers: int, spill_dir: Path,
              per_pickle: int = SPILL_BATCH) -> Iterator[tuple[Any, Iterator[Any]]]:
    """(result, emitted items) of `job(*task, emit)` for each task, in task order, run by
    `workers` processes; what a job emits is spilled to a file, `per_pickle` items at a time
    (1 for items that are batches of rows themselves), and read back from it here.

    At most two tasks per worker are in flight, so spills never run far ahead of the reader.
    A job's exception is raised here, as it would be in one process.
    """
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pending: deque[tuple[Future, Path]] = deque()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            for number, task in enumerate(tasks):
                spill = spill_dir / f"part-{os.getpid()}-{number:06d}.pickle"
                pending.append((pool.submit(_spilled, job, task, spill, per_pickle), spill))
                if len(pending) >= 2 * workers:
                    yield _finished(*pending.popleft())
            while pending:
                yield _finished(*pending.popleft())
        finally:
            for future, _spill in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for _future, spill in pending:
                spill.unlink(missing_ok=True)


def _spilled(job: Callable[..., Any], task: tuple, spill: Path, per_pickle: int) -> Any:
    """In a worker: run a job, its emitted items pickled to `spill` `per_pickle` at a time."""
    batch: list[Any] = []
    with open(spill, "wb") as handle:
        def emit(item: Any) -> None:
            batch.append(item)
            if len(batch) >= per_pickle:
                pickle.dump(batch, handle, protocol=pickle.HIGHEST_PROTOCOL)
                batch.clear()

        result = job(*task, emit)
        if batch:
            pickle.dump(batch, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return result


def _finished(future: Future, spill: Path) -> tuple[Any, Iterator[Any]]:
    return future.result(), _read_spill(spill)


def _read_spill(path: Path) -> Iterator[Any]:
    try:
        with open(path, "rb") as handle:
            while True:
                try:
                    batch = pickle.load(handle)
                except EOFError:
                    return
                yield from batch
    finally:
        path.unlink(missing_ok=True)


_worker: tuple[tuple[RowSpec, str | None], RowMaker, FormatWriter | None] | None = None  # one per process


def write_part(spec: RowSpec, fmt: str, file: CaptureFile, winners: set[int] | None, emit: Emit) -> FileTally:
    """A job: one file's writing pass, each item prepared for the writer (CSV lines are made
    here), or for a batched format each batch of the file's rows. The export's own process runs
    it too, when it has no workers, so the files never depend on where their rows were made."""
    maker, writer = _maker(spec, fmt)
    assert writer is not None
    if not writer.batch_rows:
        prepare = writer.prepare
        return maker.write_file(file, winners, lambda item: emit(prepare(item)))
    rows: list[Any] = []

    def add(item: Any) -> None:
        rows.append(writer.prepare(item))
        if len(rows) >= writer.batch_rows:
            emit(writer.batch(rows))
            rows.clear()

    tally = maker.write_file(file, winners, add)
    if rows:
        emit(writer.batch(rows))
    tally.notes.update(writer.notes)
    writer.notes.clear()
    return tally


def index_part(spec: RowSpec, number: int, file: CaptureFile, emit: Emit) -> None:
    """A job: one file's index pass (no filters)."""
    _maker(spec, None)[0].index_file(file, number, emit)


def forget_maker() -> None:
    """Let go of this process's row maker (and the index it reads) once an export is written."""
    global _worker
    _worker = None


def _maker(spec: RowSpec, fmt: str | None) -> tuple[RowMaker, FormatWriter | None]:
    """The row maker and (for the writing pass) the format's preparing writer of this process."""
    global _worker
    if _worker is None or _worker[0] != (spec, fmt):
        final_url = final_url_reader(spec.index_path) if spec.index_path else None
        writer = FORMATS[fmt](select_columns(spec.columns, spec.platform), Counter()) if fmt else None
        _worker = ((spec, fmt), RowMaker(spec, final_url), writer)
    return _worker[1], _worker[2]


def _size(file: CaptureFile) -> int:
    try:
        return os.stat(file.label).st_size
    except OSError:
        return 0
