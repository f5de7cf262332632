"""Rate-limit windows per (endpoint, token) and the per-token usage cap."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Callable, Mapping

from sfm_archiver.simulator.scenario import EndpointLimit, UsageCapSpec


@dataclass(frozen=True)
class Quota:
    """The outcome of one call against a window, as the x-rate-limit-* headers report it."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds (server clock, before skew)


class RateLimiter:
    """Windows per (endpoint, token), shaped as the scenario says (EndpointLimit).

    `rolling` (the default): a window starts with the first call after the previous one ended and
    is announced to end at the first whole second `window_seconds` later. `fixed`: windows follow
    a grid of `window_seconds` from the Unix epoch. Either way the window really ends
    `early_reset_seconds` before the reset it announces: a client must learn each new window from
    the headers, not assume where it begins.
    """

    def __init__(self, limits: Mapping[str, EndpointLimit], clock: Callable[[], float]):
        self._limits = dict(limits)
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], list[float]] = {}  # key -> [real end, used, announced reset]

    def take(self, endpoint: str, token: str, consume: bool = True) -> Quota:
        """Count one call (unless `consume` is False) and report the window it fell in."""
        spec = self._limits[endpoint]
        now = self._clock()
        with self._lock:
            window = self._windows.get((endpoint, token))
            if window is None or now >= window[0]:
                end, announced = window_end(spec, now)
                window = [end, 0, announced]
                self._windows[(endpoint, token)] = window
            allowed = window[1] < spec.limit
            if allowed and consume:
                window[1] += 1
            return Quota(allowed, spec.limit, spec.limit - int(window[1]), int(window[2]))

    def exhaust(self, endpoint: str, token: str) -> None:
        """Use up the current window of (endpoint, token), opening one when none is running."""
        self.take(endpoint, token, consume=False)
        with self._lock:
            self._windows[(endpoint, token)][1] = self._limits[endpoint].limit


def window_end(spec: EndpointLimit, now: float) -> tuple[float, int]:
    """(when it really ends, the reset it announces) of the window a call at `now` opens."""
    early = _early(spec)
    if spec.windows == "fixed":
        grid_end = (math.floor((now + early) / spec.window_seconds) + 1) * spec.window_seconds
        return grid_end - early, math.ceil(grid_end)
    announced = math.ceil(now + spec.window_seconds)
    return announced - early, announced


def _early(spec: EndpointLimit) -> float:
    return min(spec.early_reset_seconds, spec.window_seconds / 2)


class UsageCap:
    """A total-call cap per token over a period; forced on and lifted by lifecycle events."""

    def __init__(self, spec: UsageCapSpec, clock: Callable[[], float]):
        self._spec = spec
        self._clock = clock
        self._lock = threading.Lock()
        self._periods: dict[str, list[float]] = {}  # token -> [period start, calls]
        self._forced: dict[str | None, float] = {}  # token (None: every token) -> forced at

    def admit(self, token: str) -> bool:
        """Count a call; False when the token is capped (the call is then not counted)."""
        now = self._clock()
        with self._lock:
            self._expire_forced(now)
            if token in self._forced or None in self._forced:
                return False
            period = self._periods.get(token)
            if period is None or now >= period[0] + self._spec.period_seconds:
                period = [now, 0]
                self._periods[token] = period
            if self._spec.calls is not None and period[1] >= self._spec.calls:
                return False
            period[1] += 1
            return True

    def force(self, token: str | None = None) -> None:
        with self._lock:
            self._forced[token] = self._clock()

    def lift(self, token: str | None = None) -> None:
        """End the cap (every token when None) and start a fresh period."""
        with self._lock:
            if token is None:
                self._forced.clear()
                self._periods.clear()
            else:
                self._forced.pop(token, None)
                self._periods.pop(token, None)

    def _expire_forced(self, now: float) -> None:
        for token, since in list(self._forced.items()):
            if now >= since + self._spec.period_seconds:
                del self._forced[token]
