"""One token, several processes: `user-timeline` one-shots share each rate window through the state store.

The simulator's windows here begin at the first call after the last one ended and end a second
before the reset they announce. The oracle is the simulator's own count of 429s served.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sfm_archiver.config import load_config_text
from sfm_archiver.platforms.x import XClient
from sfm_archiver.ratelimit import RateLimiter
from sfm_archiver.state import StateStore

from .helpers import TOKEN, captured_by_account, published_ids, wait_for

WINDOWS = {"windows": "rolling", "early_reset_seconds": 1}


def accounts(prefix: str, first_id: int, count: int, tweets: int = 130) -> list[dict]:
    return [{"id": str(first_id + n), "username": f"{prefix}_{n}", "tweets": tweets} for n in range(count)]


def config_file(tmp_path: Path, base_url: str, collections: dict[str, list[dict]]) -> Path:
    """One config, one token, one state folder; a timeline collection per entry."""
    document = {
        "paths": {name: str(tmp_path / name) for name in ("archive", "state", "outbox")},
        "x": {"bearer_token": TOKEN, "api_base_url": base_url, "workers": 3},
        "collections": [{"name": name, "type": "timeline", "accounts": [a["username"] for a in members]}
                        for name, members in collections.items()],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def one_shot(config: Path, *collections: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sfm_archiver", "user-timeline", *collections,
                             "--config", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, out + err
    return out


def check_archive(tmp_path: Path, sim, collections: dict[str, list[dict]]) -> None:
    for name, members in collections.items():
        by_account = captured_by_account(tmp_path / "archive", name)
        for account in members:
            assert by_account[account["id"]] == published_ids(sim, account["id"]), account["username"]


@pytest.mark.parametrize("windows", ["rolling", "fixed"])
def test_two_one_shots_on_one_token_share_the_window(tmp_path, make_simulator, windows):
    collections = {"east": accounts("east", 500, 6), "west": accounts("west", 600, 6)}
    sim = make_simulator(tokens=[TOKEN], accounts=collections["east"] + collections["west"],
                         rate_limits={**WINDOWS, "windows": windows, "window_seconds": 3, "user_tweets": 7},
                         faults={"latency_ms": 5})
    config = config_file(tmp_path, sim.base_url, collections)
    first, second = one_shot(config, "east"), one_shot(config, "west")
    outputs = [finish(first), finish(second)]
    assert all("user_timeline ok" in out for out in outputs), outputs
    assert sim.counters()["rate_limited"] == 0
    assert sim.counters()["calls"]["user_tweets"] == 24  # two pages per account, no call repeated
    check_archive(tmp_path, sim, collections)


def test_a_one_shot_started_in_a_spent_window_waits_instead_of_a_429(tmp_path, make_simulator):
    collections = {"tl": accounts("lib", 700, 3)}
    sim = make_simulator(tokens=[TOKEN], accounts=collections["tl"],
                         rate_limits={**WINDOWS, "window_seconds": 8, "user_tweets": 4})
    config = config_file(tmp_path, sim.base_url, collections)
    # another process (this one) spends the timeline window of the token first
    loaded = load_config_text(config.read_text(), config)
    spender = XClient(loaded.x, limiter=RateLimiter(store=StateStore(loaded.paths.state)))
    for _ in range(4):
        spender.user_timeline("700")
    out = finish(one_shot(config))
    assert "user_timeline ok" in out and "rate_limit_waits=" in out, out
    assert sim.counters()["rate_limited"] == 0
    check_archive(tmp_path, sim, collections)


def test_a_call_that_raises_gives_its_permit_back(tmp_path, simulator):
    config = config_file(tmp_path, simulator.base_url, {"tl": accounts("lib", 700, 1)})
    loaded = load_config_text(config.read_text(), config)
    client = XClient(loaded.x, limiter=RateLimiter(store=StateStore(loaded.paths.state)))

    def broken() -> None:
        raise RuntimeError("a bug below the client")

    with pytest.raises(RuntimeError):
        client._call("GET /2/users/:id/tweets", None, None, broken, ("meta",))
    # a permit kept would make every process sharing the budget wait for an answer that never comes
    assert client.limiter.budget(client.credential, "GET /2/users/:id/tweets")["in_flight"] == 0


def test_a_one_shot_beside_the_daemon_shares_its_window(tmp_path, make_simulator):
    """The daemon harvests one collection every second, spending the window; a one-shot of another
    collection on the same token waits its turn instead of drawing 429s."""
    daemon_accounts = accounts("live", 800, 4, tweets=20)
    collections = {"live": daemon_accounts, "extra": accounts("extra", 900, 4)}
    sim = make_simulator(tokens=[TOKEN], accounts=[{**a, "posts_per_second": 0.5} for a in daemon_accounts]
                         + collections["extra"],
                         rate_limits={**WINDOWS, "window_seconds": 3, "user_tweets": 6})
    config = config_file(tmp_path, sim.base_url, collections)
    document = yaml.safe_load(config.read_text())
    document["collections"][0]["schedule"] = "every 1s"
    document["collections"][1]["schedule"] = "off"
    document["jobs"] = {"update_usernames": "off", "fetch_urls": "off", "bag": "off"}
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    log = tmp_path / "daemon.log"
    with open(log, "wb") as stderr:
        daemon = subprocess.Popen([sys.executable, "-m", "sfm_archiver", "--config", str(config), "run"],
                                  stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        wait_for(lambda: sim.counters()["calls"].get("user_tweets", 0) >= 8 or daemon.poll() is not None,
                 timeout=60, what="the daemon harvesting")
        assert daemon.poll() is None, log.read_text()
        out = finish(one_shot(config, "extra"))
        assert "user_timeline ok" in out
        assert daemon.poll() is None, log.read_text()
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
    assert sim.counters()["rate_limited"] == 0
    check_archive(tmp_path, sim, {"extra": collections["extra"]})
