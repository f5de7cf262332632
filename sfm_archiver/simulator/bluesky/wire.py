"""JSON as the Bluesky simulator writes it: `plain` (compact, fixed key order) or `variant`.

A real AppView or Jetstream instance may space, order and escape its JSON differently, legally;
`variant` does all of that (the X simulator's generic `variant` writer), so a client that depends
on one spelling shows up in the tests. Both styles keep a document on one line.
"""

from __future__ import annotations

from sfm_archiver.simulator.wire import Wire

WIRE_STYLES = ("plain", "variant")


def make_wire(style: str, seed: int) -> Wire:
    """The writer for a Bluesky wire style ("plain" is the X writer's compact form)."""
    if style not in WIRE_STYLES:
        raise ValueError(f"unknown wire style {style!r} (known: {', '.join(WIRE_STYLES)})")
    return Wire("compact" if style == "plain" else "variant", seed)
