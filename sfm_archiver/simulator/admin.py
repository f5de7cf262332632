"""The /_sim/... control endpoints (no auth): counters, published record, events, faults."""

from __future__ import annotations

import json
from typing import Any, Protocol

from sfm_archiver.simulator.lifecycle import EventError
from sfm_archiver.simulator.reply import Reply, json_reply
from sfm_archiver.simulator.scenario import ScenarioError


class Controls(Protocol):
    """What the admin endpoints need from the simulator (its public Python API)."""

    def counters(self) -> dict[str, Any]: ...
    def published(self, stream_messages: bool = True) -> dict[str, Any]: ...
    def apply_event(self, event: dict[str, Any]) -> dict[str, Any]: ...
    def faults(self) -> dict[str, Any]: ...
    def set_faults(self, changes: dict[str, Any]) -> dict[str, Any]: ...


def handle_admin(controls: Controls, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Reply:
    """`GET /_sim/published?stream_messages=false` leaves the (possibly huge) message list out."""
    route = (method, path.rstrip("/"))
    try:
        if route == ("GET", "/_sim/counters"):
            return json_reply(200, controls.counters())
        if route == ("GET", "/_sim/published"):
            wanted = query.get("stream_messages", ["true"])[0].lower() != "false"
            return json_reply(200, controls.published(stream_messages=wanted))
        if route == ("GET", "/_sim/faults"):
            return json_reply(200, controls.faults())
        if route == ("POST", "/_sim/faults"):
            return json_reply(200, controls.set_faults(_json_object(body)))
        if route == ("POST", "/_sim/events"):
            document = _json(body)
            events = document if isinstance(document, list) else [document]
            return json_reply(200, {"applied": [controls.apply_event(event) for event in events]})
    except (EventError, ScenarioError, ValueError) as error:
        return json_reply(400, {"error": str(error)})
    return json_reply(404, {"error": f"no admin route {method} {path}",
                            "routes": ["GET /_sim/counters", "GET /_sim/published", "GET /_sim/faults",
                                       "POST /_sim/faults", "POST /_sim/events"]})


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise ValueError(f"the body is not JSON: {error}") from error


def _json_object(body: bytes) -> dict[str, Any]:
    document = _json(body)
    if not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document
