"""A Bluesky login (identifier + app password) against a simulator that requires a session:
made once, renewed when it expires, never written anywhere, and refused with a clear line."""

from __future__ import annotations

from pathlib import Path

from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.simulator.bluesky import BlueskyScenario, BlueskySimulator

from .helpers import COLLECTION, assert_each_once, context, run_cli, write_config

IDENTIFIER, PASSWORD = "archive.bsky.test", "abcd-efgh-ijkl-mnop"
ACCOUNTS = [{"handle": "alice.bsky.test", "posts": 130}, {"handle": "bob.bsky.test", "posts": 20}]


def simulator(now: list[float]) -> BlueskySimulator:
    scenario = BlueskyScenario.from_dict({"seed": 3, "accounts": ACCOUNTS, "login": {
        "identifier": IDENTIFIER, "password": PASSWORD, "access_seconds": 60, "required": True}})
    return BlueskySimulator(scenario, clock=lambda: now[0])


def login_config(tmp_path: Path, sim: BlueskySimulator, password: str = PASSWORD) -> Path:
    (tmp_path / "app-password").write_text(password + "\n")
    (tmp_path / "app-password").chmod(0o600)
    login = {"bluesky": {"appview_url": "http://127.0.0.1:9", "service_url": sim.appview_url, "identifier": IDENTIFIER,
                         "app_password_file": str(tmp_path / "app-password")}}
    return write_config(tmp_path, sim.appview_url, [a["handle"] for a in ACCOUNTS], extra=login)


def test_a_session_is_made_once_renewed_when_it_expires_and_written_nowhere(tmp_path):
    now = [1_780_000_000.0]
    with simulator(now) as sim:
        dids = [sim.did_of(a["handle"]) for a in ACCOUNTS]
        ctx = context(login_config(tmp_path, sim))
        first = harvest_timelines(ctx, COLLECTION)
        assert first["result"] == "ok", first
        assert sim.counters["sessions_created"] == 1 and sim.counters["calls_with_session"] >= 3
        now[0] += 120  # the access token has expired
        sim.post(dids[0], text="after the token expired")
        again = harvest_timelines(ctx, COLLECTION)
        assert again["result"] == "ok" and again["counts"]["posts"] == 1, again
        assert sim.counters["sessions_refreshed"] == 1 and sim.counters["sessions_created"] == 1
        assert_each_once(tmp_path / "archive", sim, dids)
        tokens = sim.sessions.issued()
    assert tokens
    for path in [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "app-password"]:
        data = path.read_bytes()
        assert PASSWORD.encode() not in data and not any(token.encode() in data for token in tokens), path


def test_a_wrong_app_password_is_one_clear_line_naming_the_identifier(tmp_path):
    now = [1_780_000_000.0]
    with simulator(now) as sim:
        result = run_cli("--config", str(login_config(tmp_path, sim, password="wrong-pass-word")), "user-timeline")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"refused the app password of '{IDENTIFIER}'" in result.stdout + result.stderr
    assert "wrong-pass-word" not in result.stdout + result.stderr


def test_without_a_login_a_service_that_needs_one_says_so(tmp_path):
    now = [1_780_000_000.0]
    with simulator(now) as sim:
        config = write_config(tmp_path, sim.appview_url, [a["handle"] for a in ACCOUNTS])
        result = run_cli("--config", str(config), "user-timeline")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs bluesky.identifier" in result.stdout + result.stderr
