"""A real Bluesky simulator (AppView over HTTP on 127.0.0.1) for every test here, in both wire styles."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from sfm_archiver.simulator.bluesky import BlueskyScenario, BlueskySimulator
from sfm_archiver.simulator.bluesky.wire import WIRE_STYLES

BlueskyFactory = Callable[..., BlueskySimulator]


@pytest.fixture(params=WIRE_STYLES)
def bluesky_wire(request: pytest.FixtureRequest) -> str:
    """Each wire style of the Bluesky simulator in turn (plain, and the variant a legal server may send)."""
    return request.param


@pytest.fixture
def make_bluesky(bluesky_wire: str) -> Iterator[BlueskyFactory]:
    """Start Bluesky simulators from scenario data (`wire` defaults to the test's wire style)."""
    started: list[BlueskySimulator] = []

    def make(**scenario: Any) -> BlueskySimulator:
        sim = BlueskySimulator(BlueskyScenario.from_dict({"wire": bluesky_wire, **scenario})).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()
