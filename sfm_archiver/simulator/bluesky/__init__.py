"""A fake Bluesky (AppView XRPC subset and Jetstream) on 127.0.0.1, for tests and the demo.

    from sfm_archiver.simulator.bluesky import BlueskySimulator, BlueskyScenario
    with BlueskySimulator(BlueskyScenario.default()) as sim:
        sim.appview_url, sim.jetstream_url, sim.did_of(handle), sim.post(did, text=...), ...

Reference: docs/simulator.md ("Bluesky side").
"""

from sfm_archiver.simulator.bluesky.scenario import BlueskyAccountSpec, BlueskyScenario, JetstreamSpec
from sfm_archiver.simulator.bluesky.server import BlueskySimulator
from sfm_archiver.simulator.lifecycle import EventError

__all__ = ["BlueskyAccountSpec", "BlueskyScenario", "BlueskySimulator", "EventError", "JetstreamSpec"]
