"""Shared fixtures: a real X API simulator on 127.0.0.1 for any test that needs one.

    def test_x(simulator): ...                       # default scenario
    @pytest.mark.parametrize("simulator", [{"seed": 3}], indirect=True)
    def test_y(simulator): ...                       # scenario overrides via request.param
    def test_z(make_simulator): sim = make_simulator(rate_limits={"window_seconds": 1})
    def test_w(make_simulator, wire_style): sim = make_simulator(wire=wire_style)  # runs twice:
        # X's compact bytes, and the variant a legal server may send (spacing, key order, escapes)
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from sfm_archiver.simulator import Scenario, Simulator
from sfm_archiver.simulator.wire import WIRE_STYLES

SimulatorFactory = Callable[..., Simulator]


def scenario_with(**overrides: Any) -> Scenario:
    """The default scenario with top-level keys overridden: sections (streams, faults, ...) merge
    over their defaults, lists (accounts, tokens, script) replace them."""
    return Scenario.from_dict(overrides)


@pytest.fixture
def make_simulator() -> Iterator[SimulatorFactory]:
    """Start simulators from scenario overrides (keyword arguments); all stop after the test."""
    started: list[Simulator] = []

    def make(**overrides: Any) -> Simulator:
        simulator = Simulator(scenario_with(**overrides))
        simulator.start()
        started.append(simulator)
        return simulator

    yield make
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(request: pytest.FixtureRequest, make_simulator: SimulatorFactory) -> Simulator:
    """A started simulator; `request.param` (a dict of scenario overrides) when parametrized indirectly."""
    return make_simulator(**getattr(request, "param", {}))


@pytest.fixture(params=WIRE_STYLES)
def wire_style(request: pytest.FixtureRequest) -> str:
    """Each wire style of the simulator in turn: a test using it runs against both."""
    return request.param


def with_wire(make: SimulatorFactory, wire_style: str) -> SimulatorFactory:
    """`make_simulator` answering in `wire_style` unless a test names its own `wire`.

    For a folder or module whose every simulator test should run against both wire styles:
        @pytest.fixture
        def make_simulator(make_simulator, wire_style): return with_wire(make_simulator, wire_style)
    """
    return lambda **overrides: make(**{"wire": wire_style, **overrides})
