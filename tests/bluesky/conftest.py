"""Real Bluesky simulators (AppView over HTTP and Jetstream over WebSocket on 127.0.0.1) for the
tests here, a configuration pointing at one, and the capture read back."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from sfm_archiver.simulator.bluesky import BlueskyScenario, BlueskySimulator
from sfm_archiver.simulator.bluesky.wire import WIRE_STYLES
from sfm_archiver.storage.reader import capture_files
from tests.streams.conftest import captured  # noqa: F401  (re-exported for the tests here)

BlueskyFactory = Callable[..., BlueskySimulator]
ACCOUNTS = [{"handle": "alice.bsky.test", "posts": 3}, {"handle": "bob.bsky.test", "posts": 2},
            {"handle": "carol.bsky.test", "posts": 1}]


@pytest.fixture
def make_bsky() -> Iterator[Callable[..., BlueskySimulator]]:
    started: list[BlueskySimulator] = []

    def make(**scenario: Any) -> BlueskySimulator:
        data = {"seed": 11, "accounts": ACCOUNTS, **scenario}
        sim = BlueskySimulator(BlueskyScenario.from_dict(data)).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


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


def write_config(root: Path, sim: BlueskySimulator, collections: list[dict], **sections: Any) -> Path:
    """A configuration under `root` with its own folders, Bluesky at the simulator."""
    document: dict[str, Any] = {
        "paths": {"archive": str(root / "archive"), "state": str(root / "state"), "outbox": str(root / "outbox")},
        "bluesky": {"appview_url": sim.appview_url, "jetstream_url": sim.jetstream_url},
        "collections": collections,
        "storage": {"stream_flush_seconds": "0.1s"},
    }
    document.update(sections)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def officials(*accounts: str, name: str = "officials") -> dict:
    """A bluesky timeline collection (never scheduled here) whose accounts a jetstream follows."""
    return {"name": name, "platform": "bluesky", "type": "timeline", "accounts": list(accounts)}


def jetstream(name: str = "live", **keys: Any) -> dict:
    return {"name": name, "platform": "bluesky", "type": "jetstream", **keys}


def event_keys(lines: list[dict]) -> list[tuple]:
    """Each captured event by what makes it one event (derived from the published documents'
    shape, not from the code under test)."""
    return [published_key(line) for line in lines]


def published_key(document: dict) -> tuple:
    if document["kind"] == "commit":
        commit = document["commit"]
        return (document["did"], commit["collection"], commit["rkey"], commit["rev"])
    return (document["did"], document["kind"], document[document["kind"]]["seq"])


def raw_lines(archive: Path, collection: str) -> list[bytes]:
    """Every capture line as bytes, oldest file first."""
    return [line for path in capture_files(archive, collection, kinds=["stream"])
            for line in gzip.decompress(path.read_bytes()).splitlines()]

