"""Scenario loading: defaults, YAML files and text, clear errors naming keys and lines."""

from __future__ import annotations

import pytest

from sfm_archiver.errors import ConfigError, exit_code_for
from sfm_archiver.simulator import Scenario, ScenarioError

FULL = """\
seed: 9
epoch: 2026-06-01T00:00:00Z
tokens: [alpha, beta]
accounts:
  - {id: 1, username: one, tweets: 4, posts_per_second: 0.5, protected: true}
  - {id: 2, username: two, name: Two, suspended: true}
rate_limits:
  window_seconds: 2
  users_lookup: 5
  user_tweets: {limit: 7, window_seconds: 3}
usage_cap: {calls: 10, period_seconds: 60}
streams: {messages_per_second: 100, message_bytes: 2000, keepalive_seconds: 0.5, multi_match_probability: 0.3}
faults: {error_rate: 0.1, latency_ms: 5, endpoint_latency_ms: {user_tweets: 20}, endpoints: [user_tweets]}
links: {probability: 1, mix: {chain: 1, loop: 1}}
shortener: {latency_ms: 100}
clock_skew_seconds: -30
script:
  - {at: 2, action: suspend, account: one}
  - {at: 1, action: stream_stall, seconds: 3, kind: search}
"""


def test_default_scenario_has_working_defaults():
    scenario = Scenario.default()
    assert [account.username for account in scenario.accounts][:2] == ["sfm_alpha", "sfm_beta"]
    assert scenario.rate_limits["users_by_username"].limit == 300 and scenario.rate_limits["user_tweets"].limit == 1500
    assert scenario.rate_limits["user_tweets"].window_seconds == 900
    assert scenario.streams.keepalive_seconds == 20 and scenario.usage_cap.calls is None
    assert Scenario.from_dict({}) == scenario and Scenario.from_yaml("") == scenario


def test_full_yaml_file(tmp_path):
    path = tmp_path / "scenario.yaml"
    path.write_text(FULL)
    for source in (path, str(path), FULL):
        scenario = Scenario.from_yaml(source)
        assert scenario.seed == 9 and scenario.tokens == ("alpha", "beta")
        assert scenario.accounts[0].id == "1" and scenario.accounts[0].protected and scenario.accounts[1].name == "Two"
        assert scenario.rate_limits["users"].limit == 5 and scenario.rate_limits["users"].window_seconds == 2
        assert (scenario.rate_limits["user_tweets"].limit, scenario.rate_limits["user_tweets"].window_seconds) == (7, 3)
        assert scenario.faults.endpoint_latency_ms == {"user_tweets": 20.0}
        assert [event.action for event in scenario.script] == ["stream_stall", "suspend"]  # sorted by time
        assert scenario.script[0].params == {"seconds": 3, "kind": "search"}
        assert scenario.clock_skew_seconds == -30


@pytest.mark.parametrize("text, message", [
    ("colour: red\n", "scenario:1: unknown key 'colour'"),
    ("seed: 1\nstreams:\n  speed: 3\n", "scenario:3: unknown key 'speed' in streams"),
    ("accounts:\n  - {id: 1, username: a, hair: x}\n", "unknown key 'hair' in accounts[0]"),
    ("accounts:\n  - {username: a}\n", "accounts[0] needs id"),
    ("accounts:\n  - {id: abc, username: a}\n", "accounts[0].id must be digits"),
    ("rate_limits: {timelines: 3}\n", "unknown key 'timelines' in rate_limits"),
    ("rate_limits: {users: 0}\n", "rate_limits.users needs a limit of at least 1"),
    ("faults: {error_rate: 2}\n", "faults.error_rate is a probability"),
    ("faults: {endpoints: [nope]}\n", "unknown endpoint 'nope'"),
    ("streams: {keepalive_seconds: 0}\n", "streams.keepalive_seconds must be more than 0"),
    ("links: {mix: {teleport: 1}}\n", "unknown behaviour 'teleport'"),
    ("seed: many\n", "scenario.seed must be a whole number"),
    ("script:\n  - {at: 1, action: explode}\n", "unknown action 'explode'"),
    ("script:\n  - {action: suspend, account: 1}\n", "needs 'at'"),
    ("script:\n  - {at: 1, action: suspend, acount: 1}\n", "unknown key 'acount' for action 'suspend'"),
    ("script:\n  - {at: 1, action: stream_drop, kind: firehose}\n", "kind must be one of search, sample"),
    ("seed: 1\nseed: 2\n", "duplicate key 'seed'"),
    ("seed: [\n", "YAML syntax error"),
])
def test_invalid_scenarios_name_the_problem(text, message):
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(text)
    assert any(message in problem for problem in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_and_maps_to_exit_code_2(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("colour: red\nstreams: {speed: 1}\n")
    with pytest.raises(ScenarioError) as caught:
        Scenario.from_yaml(path)
    assert [problem.split(": ")[0] for problem in caught.value.problems] == [f"{path}:1", f"{path}:2"]
    assert isinstance(caught.value, ConfigError) and exit_code_for(caught.value) == 2


def test_missing_file_is_a_scenario_error(tmp_path):
    with pytest.raises(ScenarioError, match="cannot read"):
        Scenario.from_yaml(tmp_path / "absent.yaml")


def test_from_dict_reports_unknown_keys():
    with pytest.raises(ScenarioError, match="unknown key 'usage_caps'"):
        Scenario.from_dict({"usage_caps": {}})
