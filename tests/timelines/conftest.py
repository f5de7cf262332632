"""Every timeline and account test runs against both wire styles of the simulator."""

from __future__ import annotations

import pytest

from tests.conftest import SimulatorFactory, with_wire


@pytest.fixture
def make_simulator(make_simulator: SimulatorFactory, wire_style: str) -> SimulatorFactory:
    return with_wire(make_simulator, wire_style)
