"""Lifecycle events (scenario script, and the simulator's Python methods) applied to the world, with a log.

The script runs on the X simulator's ScriptRunner (entries at `after_seconds` from start); an
event names its account by `handle` or `did`.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping

from sfm_archiver.simulator.bluesky.scenario import check_event
from sfm_archiver.simulator.bluesky.world import ACTIVE, DEACTIVATED, DELETED, TAKENDOWN, World
from sfm_archiver.simulator.lifecycle import EventError

# event -> (new status, the statuses it may come from)
STATUS_CHANGES = {
    "takedown": (TAKENDOWN, (ACTIVE, DEACTIVATED)),
    "restore": (ACTIVE, (TAKENDOWN,)),
    "deactivate": (DEACTIVATED, (ACTIVE,)),
    "reactivate": (ACTIVE, (DEACTIVATED,)),
    "delete_account": (DELETED, (ACTIVE, TAKENDOWN, DEACTIVATED)),
}


class Lifecycle:
    def __init__(self, world: World, clock: Callable[[], float]):
        self._world = world
        self._clock = clock
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []

    def apply(self, event: Mapping[str, Any], source: str = "python") -> dict[str, Any]:
        """Apply {"action": name, ...} now and log it; raises EventError when it cannot apply."""
        params = {key: value for key, value in event.items() if key != "action"}
        name = str(event.get("action"))
        problems = check_event({"event": name, **params})
        entry: dict[str, Any] = {"event": name, "params": params, "source": source,
                                 "at": round(time.monotonic() - self._started, 3), "time": self._clock()}
        try:
            if problems:
                raise EventError("; ".join(problems))
            entry["result"] = self._dispatch(name, params)
        except EventError as error:
            entry["error"] = f"{name}: {error}"
        with self._lock:
            self._log.append(entry)
        if "error" in entry:
            raise EventError(entry["error"])
        return entry["result"]

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def _dispatch(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        world = self._world
        if name == "delete_post":
            uri = params.get("uri") or world.newest_post(self._did(params))
            world.delete_post(uri)
            return {"uri": uri}
        did = self._did(params)
        if name == "rename":
            world.rename(did, str(params["to"]))
            return {"did": did, "handle": str(params["to"]).lower()}
        if name == "post":
            uris = [world.post(did, params.get("text"), params.get("links"), params.get("reply_to"))
                    for _ in range(int(params.get("count", 1)))]
            return {"did": did, "uris": uris}
        status, allowed_from = STATUS_CHANGES[name]
        world.set_status(did, status, allowed_from)
        return {"did": did, "status": status}

    def _did(self, params: Mapping[str, Any]) -> str:
        actor = params.get("did") or params.get("handle")
        account = self._world.find(str(actor)) if actor else None
        if account is None:
            raise EventError(f"no account {actor!r}")
        return account.did
