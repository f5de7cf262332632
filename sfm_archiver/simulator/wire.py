"""How the simulator writes JSON: X's compact form, or a variant that a legal server may send.

X writes compact JSON with keys in a fixed order. Nothing in the JSON or X API contract promises
that, and an independently written server differs: spaces after `,` and `:`, other key orders,
`\\/` and `\\uXXXX` escapes, whitespace around the document. `variant` output exercises all of
those (deterministically, from the scenario seed) so that a fast path which assumes X's exact
bytes shows up in the tests. Stream messages stay on one line (X frames them with CRLF).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
from typing import Any

WIRE_STYLES = ("compact", "variant")
_SEPARATORS = ((", ", ": "), (",", ": "), (", ", ":"), (" , ", " : "), (",\t", ":\t"))


def compact(document: Any) -> bytes:
    """Compact JSON as X sends it; key order is insertion order, so output is deterministic."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same value with every object's keys in a random order (arrays keep their order)."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {key: _shuffled(item, rng) for key, item in items}
    if isinstance(value, list):
        return [_shuffled(item, rng) for item in value]
    return value


class Wire:
    """The JSON writer of one simulator: `compact` (X's bytes) or `variant` (legal, different)."""

    def __init__(self, style: str = "compact", seed: int = 1):
        if style not in WIRE_STYLES:
            raise ValueError(f"unknown wire style {style!r} (known: {', '.join(WIRE_STYLES)})")
        self.style = style
        self._seed = seed
        self._counter = itertools.count()
        self._lock = threading.Lock()

    @property
    def is_variant(self) -> bool:
        return self.style == "variant"

    def rng(self) -> random.Random:
        """A fresh deterministic generator for one document (thread-safe)."""
        with self._lock:
            number = next(self._counter)
        return random.Random(self._seed * 1_000_003 + number)

    def encode(self, document: Any, *, one_line: bool = True) -> bytes:
        """The document's bytes in this wire style; `one_line=False` allows newlines (REST bodies)."""
        if not self.is_variant:
            return compact(document)
        return variant(document, self.rng(), one_line=one_line)


def variant(document: Any, rng: random.Random, *, one_line: bool = True) -> bytes:
    """A legal serialisation of `document` unlike X's: keys shuffled, spaced, escaped."""
    shuffled = _shuffled(document, rng)
    if not one_line and rng.random() < 0.3:
        text = json.dumps(shuffled, indent=rng.choice((1, 2, "\t")), ensure_ascii=rng.random() < 0.7)
    else:
        text = json.dumps(shuffled, separators=rng.choice(_SEPARATORS), ensure_ascii=rng.random() < 0.7)
    if rng.random() < 0.5:
        text = text.replace("/", "\\/")  # "/" occurs only inside strings, where "\/" is a legal escape
    return (" " * rng.randrange(3) + text + " " * rng.randrange(3)).encode("utf-8")
