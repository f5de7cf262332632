"""Fixity of payload files, computed once per file for every algorithm, in worker processes.

A file is read once and fed to all configured hashes. In copy mode the same read also writes
the copy (so the manifest describes the source bytes and validation of the staged bag proves the
copy is identical). Work goes to worker processes;
small bags are hashed inline because starting interpreters would cost more than the hashing.
Workers are `spawn`ed when other threads exist (the daemon: forking a threaded process can
copy locks held by other threads), and forked otherwise (a one-shot `bag`: much faster start).
Workers die with their parent (PR_SET_PDEATHSIG), so a kill -9 of the bagger leaves no process
writing into staging behind it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import multiprocessing
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterable

from sfm_archiver.durable import sync_file, write_all
from sfm_archiver.errors import StopRequested

BLOCK = 1 << 20
INLINE_BELOW_BYTES = 32 << 20
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class HashTask:
    """Hash `target`; when `source` is set, first copy `source` to `target` while hashing."""

    target: str
    algorithms: tuple[str, ...]
    source: str | None = None
    size: int = 0


@dataclass(frozen=True)
class HashResult:
    target: str
    size: int
    digests: dict[str, str]


def hash_file(task: HashTask) -> HashResult:
    """Read a file once, feeding every algorithm (and the copy, in copy mode)."""
    hashers = [hashlib.new(name) for name in task.algorithms]
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    size = 0
    out_fd = None
    if task.source is not None:
        out_fd = os.open(task.target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with open(task.source or task.target, "rb", buffering=0) as handle:
            while True:
                count = handle.readinto(buffer)
                if not count:
                    break
                chunk = view[:count]
                for hasher in hashers:
                    hasher.update(chunk)
                if out_fd is not None:
                    write_all(out_fd, chunk)
                size += count
        if out_fd is not None:
            sync_file(out_fd)
    finally:
        if out_fd is not None:
            os.close(out_fd)
    if task.source is not None:
        stat = os.stat(task.source)
        os.utime(task.target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return HashResult(task.target, size, {name: h.hexdigest() for name, h in zip(task.algorithms, hashers, strict=True)})


def init_worker(parent_pid: int | None = None) -> None:
    """Worker setup: die with the parent, leave Ctrl-C to the parent."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Ask Linux to SIGKILL this process when its parent dies (no-op elsewhere).

    The parent may already be gone when this runs (a kill during worker start-up): then the
    process was re-parented and exits at once.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1 or (parent_pid is not None and os.getppid() != parent_pid):
        os._exit(1)


def default_workers(configured: int = 0) -> int:
    """Configured worker count, or one per core available to this process."""
    if configured > 0:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def start_context() -> multiprocessing.context.BaseContext:
    """`fork` when this process runs a single thread (safe and fast), else `spawn`."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


class HashPool:
    """Runs HashTasks inline or on a pool of spawned workers, started on first need."""

    def __init__(self, workers: int, inline_below: int = INLINE_BELOW_BYTES):
        self.workers = max(1, workers)
        self.inline_below = inline_below
        self._executor: ProcessPoolExecutor | None = None

    def run(
        self,
        tasks: Iterable[HashTask],
        on_result: Callable[[HashResult], None] = lambda result: None,
        stop: Callable[[], bool] = lambda: False,
    ) -> list[HashResult]:
        """Hash every task, largest first; `on_result` is called in this process after each."""
        ordered = sorted(tasks, key=lambda t: t.size, reverse=True)
        if self.workers == 1 or sum(t.size for t in ordered) < self.inline_below:
            return self._run_inline(ordered, on_result, stop)
        return self._run_pool(ordered, on_result, stop)

    def _run_inline(self, tasks, on_result, stop) -> list[HashResult]:
        results = []
        for task in tasks:
            if stop():
                raise StopRequested()
            result = hash_file(task)
            results.append(result)
            on_result(result)
        return results

    def _run_pool(self, tasks, on_result, stop) -> list[HashResult]:
        executor = self._pool()
        futures: set[Future] = {executor.submit(hash_file, task) for task in tasks}
        results = []
        try:
            while futures:
                done, futures = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    results.append(result)
                    on_result(result)
                if futures and stop():
                    raise StopRequested()
        except BaseException:
            for future in futures:
                future.cancel()
            wait(futures)
            raise
        return results

    def call(self, function: Callable, *args, stop: Callable[[], bool] = lambda: False):
        """Run `function(*args)` in a worker process (started if needed); poll `stop` meanwhile.

        Workers are not daemonic, so the function may start processes of its own (bagit does).
        """
        future = self._pool().submit(function, *args)
        while True:
            done, _ = wait([future], timeout=0.2)
            if done:
                return future.result()
            if stop():
                future.cancel()
                raise StopRequested()

    def map(self, function: Callable, items: list[tuple], sizes: list[int]) -> list:
        """`function(*item)` for each item: inline when small, else on the workers; in input order."""
        if self.workers == 1 or sum(sizes) < self.inline_below:
            return [function(*item) for item in items]
        executor = self._pool()
        return [future.result() for future in [executor.submit(function, *item) for item in items]]

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=start_context(), initializer=init_worker, initargs=(os.getpid(),)
            )
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> HashPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
