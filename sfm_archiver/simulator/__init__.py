"""A fake X API v2 and URL shortener on 127.0.0.1, for tests, benchmarks and `demo`.

    Simulator(scenario).start() -> base URL; .stop(); context manager
    Scenario.default() / .from_yaml(path_or_text) / .from_dict(data)
    run_simulator(port, scenario_path, announce)   (the `simulate` command)

Reference: docs/simulator.md.
"""

from sfm_archiver.simulator.lifecycle import EventError
from sfm_archiver.simulator.scenario import AccountSpec, Scenario, ScenarioError
from sfm_archiver.simulator.server import Simulator, run_simulator

__all__ = ["AccountSpec", "EventError", "Scenario", "ScenarioError", "Simulator", "run_simulator"]
