"""Seeded fault injection for the REST endpoints: 5xx answers, latency, damaged bodies."""

from __future__ import annotations

import random
import threading
from typing import Any, Mapping

from sfm_archiver.simulator.scenario import FaultSpec, parse_faults

ERROR, TRUNCATE, MALFORMED = "error", "truncated", "malformed"


class FaultInjector:
    """Decides per call, from one seeded generator, whether and how to misbehave."""

    def __init__(self, spec: FaultSpec, seed: int):
        self._spec = spec
        self._rng = random.Random(seed ^ 0x5F5F)
        self._lock = threading.Lock()

    @property
    def spec(self) -> FaultSpec:
        return self._spec

    def update(self, changes: Mapping[str, Any]) -> FaultSpec:
        """Merge live changes (admin endpoint or script `faults` action); validated like the scenario."""
        with self._lock:
            self._spec = parse_faults(changes, self._spec)
            return self._spec

    def applies(self, endpoint: str) -> bool:
        return not self._spec.endpoints or endpoint in self._spec.endpoints

    def latency_seconds(self, endpoint: str) -> float:
        if not self.applies(endpoint):
            return 0.0
        spec = self._spec
        return spec.endpoint_latency_ms.get(endpoint, spec.latency_ms) / 1000

    def draw(self, endpoint: str, streaming: bool) -> str | None:
        """ERROR, TRUNCATE, MALFORMED or None; streams only ever get ERROR (at connect)."""
        if not self.applies(endpoint):
            return None
        spec = self._spec
        with self._lock:
            roll = self._rng.random()
        if roll < spec.error_rate:
            return ERROR
        if streaming:
            return None
        roll -= spec.error_rate
        if roll < spec.truncate_rate:
            return TRUNCATE
        roll -= spec.truncate_rate
        return MALFORMED if roll < spec.malformed_rate else None

    def damage(self, body: bytes, fault: str) -> bytes:
        """A cut body (TRUNCATE) or a body that is no longer JSON (MALFORMED)."""
        if fault == MALFORMED:
            return body[:-1] + b",}"  # a trailing comma: no JSON parser accepts it
        with self._lock:
            return body[:self._rng.randrange(1, max(2, len(body)))]
