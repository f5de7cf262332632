"""Waiting for a condition in tests: poll with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition", interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy and return that; fail naming `what` at the deadline.

    The deadline only bounds a failing test: it is generous so that a loaded machine never fails a
    test that would pass (nothing here measures time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
