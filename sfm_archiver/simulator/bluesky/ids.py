"""atproto identifiers as the real network spells them: did:plc, TIDs (record keys, revisions), CIDs.

Only their shape matters to a client (syntax, length, sort order), so they are derived from
hashes of the seed and content, not from real key material.
"""

from __future__ import annotations

import base64
import hashlib
import threading

_SORTABLE = "234567abcdefghijklmnopqrstuvwxyz"  # atproto's base32-sortable alphabet
_CID_PREFIX = bytes((0x01, 0x71, 0x12, 0x20))  # CIDv1, dag-cbor, sha2-256, 32 bytes


def plc_did(seed: int, name: str) -> str:
    """`did:plc:` and 24 lowercase base32 characters, fixed by the seed and the account's first handle."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return "did:plc:" + base64.b32encode(digest).decode("ascii").lower()[:24]


def cid_of(content: bytes) -> str:
    """A CIDv1 string (`bafyrei...`, 59 characters) naming `content`."""
    digest = hashlib.sha256(content).digest()
    return "b" + base64.b32encode(_CID_PREFIX + digest).decode("ascii").lower().rstrip("=")


def tid(micros: int, clock_id: int = 0) -> str:
    """A 13-character TID: microseconds since the epoch (53 bits) and a 10-bit clock id, sortable as text."""
    value = ((micros & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_SORTABLE[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def tid_micros(key: str) -> int:
    """The microseconds a TID was made from (inverse of `tid`, clock id dropped)."""
    value = 0
    for char in key:
        value = value * 32 + _SORTABLE.index(char)
    return value >> 10


class TidClock:
    """Strictly increasing TIDs from given times: a time at or before the last one moves on by 1 µs."""

    def __init__(self, clock_id: int):
        self._clock_id = clock_id
        self._last = 0
        self._lock = threading.Lock()

    def next(self, micros: int) -> str:
        with self._lock:
            self._last = max(micros, self._last + 1)
            return tid(self._last, self._clock_id)
