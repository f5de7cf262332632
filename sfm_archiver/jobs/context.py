"""What every job needs, handed over in one object by the daemon or a one-shot command."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from sfm_archiver.config import Config
from sfm_archiver.ledger import Ledger
from sfm_archiver.state import StateStore
from sfm_archiver.timeutil import Clock, utcnow

if TYPE_CHECKING:
    from sfm_archiver.locks import LockWait
    from sfm_archiver.ratelimit import RateLimiter


def _always_ok() -> bool:
    return True


@dataclass
class JobContext:
    """Configuration, stores, a stop flag and the reporting hooks shared by all jobs.

    `stop` is set on SIGTERM: jobs check it between units of work (an account, a URL, a period)
    and return at the next safe point. `disk_ok` turns False when free space is below the
    configured minimum: writers pause instead of filling the disk. `rate_limiter` is shared by
    every job of the process (created on first use), so concurrent jobs share each budget. `progress` is a terminal
    status line for one-shot commands (a no-op in the daemon, which logs instead). `lock_wait`
    (daemon jobs only) makes a job wait for a busy collection lock instead of refusing it.
    """

    config: Config
    store: StateStore
    ledger: Ledger
    stop: threading.Event = field(default_factory=threading.Event)
    progress: Callable[[str], None] | None = None
    clock: Clock = utcnow
    disk_ok: Callable[[], bool] = _always_ok
    rate_limiter: RateLimiter | None = None
    lock_wait: LockWait | None = None

    @classmethod
    def open(cls, config: Config, **kwargs) -> JobContext:
        config.paths.state.mkdir(parents=True, exist_ok=True)
        return cls(config=config, store=StateStore(config.paths.state), ledger=Ledger(config.paths.state), **kwargs)

    def report(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)
