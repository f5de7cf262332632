"""Recording job runs: start, counts, warnings, errors and result, and log lines that name them."""

from __future__ import annotations

import logging
from collections import Counter

from sfm_archiver.errors import SfmError
from sfm_archiver.state import StateStore


class RunRecorder:
    """`with RunRecorder(store, job, collection) as run:` records one run in the state store.

    The result is `ok`, `warning` (finished with warnings or per-item errors), `failed` (an
    exception escaped) or `interrupted` (stopped at a safe point by SIGTERM: call
    `run.interrupted()`). Every log line carries the collection and run id.
    """

    def __init__(self, store: StateStore, job: str, collection: str | None, logger: logging.Logger | None = None):
        self.store = store
        self.job = job
        self.collection = collection
        self.counts: Counter = Counter()
        self.warnings: list[str] = []
        self.errors: list[str] = []
        self.run_id = ""
        self._interrupted = False
        self._logger = logger or logging.getLogger(f"sfm_archiver.jobs.{job}")

    def __enter__(self) -> RunRecorder:
        self.run_id = self.store.start_run(self.job, self.collection)
        self.info("run started")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc is not None:
            message = str(exc) if isinstance(exc, SfmError) else f"{type(exc).__name__}: {exc}"
            self.errors.append(message)
            self.store.finish_run(self.run_id, "failed", dict(self.counts), self.warnings, self.errors)
            self.error(f"run failed: {message}")
            return False
        result = "interrupted" if self._interrupted else "warning" if (self.warnings or self.errors) else "ok"
        self.store.finish_run(self.run_id, result, dict(self.counts), self.warnings, self.errors)
        summary = " ".join(f"{k}={v}" for k, v in sorted(self.counts.items()))
        self.info(f"run {result}: {summary}".rstrip())
        return False

    @property
    def observed_by(self) -> dict:
        """How ledger events name the run that saw them."""
        return {"job": self.job, "run": self.run_id}

    def interrupted(self) -> None:
        self._interrupted = True

    def warn(self, message: str, account: str | None = None) -> None:
        self.warnings.append(_with_account(message, account))
        self._log(logging.WARNING, message, account)

    def fail_item(self, message: str, account: str | None = None) -> None:
        """An error confined to one item (an account, a URL): the run goes on."""
        self.errors.append(_with_account(message, account))
        self._log(logging.ERROR, message, account)

    def info(self, message: str, account: str | None = None) -> None:
        self._log(logging.INFO, message, account)

    def error(self, message: str, account: str | None = None) -> None:
        self._log(logging.ERROR, message, account)

    def _log(self, level: int, message: str, account: str | None) -> None:
        where = f"collection={self.collection or '-'} run={self.run_id}"
        if account:
            where += f" account={account}"
        self._logger.log(level, "%s: %s", where, message)


def _with_account(message: str, account: str | None) -> str:
    return f"{account}: {message}" if account else message
