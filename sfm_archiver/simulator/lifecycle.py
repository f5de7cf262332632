"""Lifecycle events (the scenario `script` and `POST /_sim/events`) and their log."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Callable, Mapping

from sfm_archiver.simulator.faults import FaultInjector
from sfm_archiver.simulator.ratelimits import UsageCap
from sfm_archiver.simulator.scenario import ScenarioError, ScriptEvent, check_event
from sfm_archiver.simulator.streams import DISCONNECT, DROP, STALL, StreamHub
from sfm_archiver.simulator.world import World, WorldError

log = logging.getLogger(__name__)

_FLAGS = {"protect": ("protected", True), "unprotect": ("protected", False),
          "suspend": ("suspended", True), "unsuspend": ("suspended", False),
          "deactivate": ("deactivated", True), "reactivate": ("deactivated", False)}
_STREAM_ACTIONS = {"stream_disconnect": DISCONNECT, "stream_drop": DROP, "stream_stall": STALL}


class EventError(ValueError):
    """An event that is malformed or cannot apply now; the message says which and why."""


class Lifecycle:
    """Applies events to the world, streams, usage cap and faults; keeps the applied-event log."""

    def __init__(self, world: World, hub: StreamHub, usage_cap: UsageCap, faults: FaultInjector,
                 clock: Callable[[], float]):
        self._world, self._hub, self._usage_cap, self._faults = world, hub, usage_cap, faults
        self._clock = clock
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []

    def apply(self, event: Mapping[str, Any], source: str = "admin") -> dict[str, Any]:
        """Apply one event now and log it; raises EventError when it cannot apply (logged too)."""
        problems = check_event(event) if isinstance(event, Mapping) else ["an event must be a mapping"]
        if problems:
            raise EventError("; ".join(problems))
        action = event["action"]
        params = {key: value for key, value in event.items() if key not in ("action", "at")}
        entry: dict[str, Any] = {"action": action, "params": params, "source": source,
                                 "at": round(time.monotonic() - self._started, 3), "time": self._clock()}
        try:
            entry["result"] = self._dispatch(action, params)
        except (WorldError, ScenarioError) as error:
            entry["error"] = f"{action}: {error}"
        with self._lock:
            self._log.append(entry)
        if "error" in entry:
            raise EventError(entry["error"])
        return entry

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    def _dispatch(self, action: str, params: dict[str, Any]) -> dict[str, Any]:
        world = self._world
        if action in _FLAGS:
            flag, value = _FLAGS[action]
            account = world.set_flag(params["account"], flag, value)
            return {"account": account.id, flag: value}
        if action == "rename":
            account = world.rename(params["account"], str(params["username"]))
            return {"account": account.id, "username": account.username}
        if action == "reassign_username":
            account = world.reassign_username(str(params["username"]), params.get("id"), params.get("name"),
                                              params.get("tweets", 0), params.get("posts_per_second", 0.0))
            return {"account": account.id, "username": account.username}
        if action == "post":
            account = world.resolve(params["account"])
            return {"account": account.id,
                    "tweet_ids": [str(tweet_id) for tweet_id in world.publish(account.id, params.get("count", 1))]}
        if action in _STREAM_ACTIONS:
            count = self._hub.command(_STREAM_ACTIONS[action], params.get("kind"), float(params.get("seconds", 0)))
            return {"connections": count}
        if action == "usage_cap":
            self._usage_cap.force(params.get("token"))
            return {"token": params.get("token")}
        if action == "lift_usage_cap":
            self._usage_cap.lift(params.get("token"))
            return {"token": params.get("token")}
        return {"faults": dataclasses.asdict(self._faults.update(params))}


class ScriptRunner:
    """Applies the scenario script at its `at` offsets (seconds after start) on a daemon thread."""

    def __init__(self, lifecycle: Lifecycle, script: tuple[ScriptEvent, ...], stopping: threading.Event):
        self._lifecycle = lifecycle
        self._script = script
        self._stopping = stopping
        self._thread = threading.Thread(target=self._run, name="sim-script", daemon=True)

    def start(self) -> None:
        if self._script:
            self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        for event in self._script:
            if self._stopping.wait(max(0.0, started + event.at - time.monotonic())):
                return
            try:
                self._lifecycle.apply({"action": event.action, **event.params}, source="script")
            except EventError as error:
                log.warning("script event at %ss not applied: %s", event.at, error)
