"""The Bluesky side of the chaos run: a timeline collection and a Jetstream following its accounts,
the same kills, and a check of what the Bluesky simulator published against what was captured.

The day, as fractions of its length D (per cycle, next to the X plan in engine.py):
  0.10  a handle change        0.20 takedown ... 0.50 restore
  0.32-0.40 a slow AppView (latency per call; a kill then lands inside a feed's paging)
  0.18 and 0.58  Jetstream drops every connection (close 1011, as a server restart does)
  0.45  a post deleted         all along: new posts of the followed accounts
and a small latency the whole day, so harvests are in flight when the kills come.

What must hold (the oracle is the simulator's own record, read as plain JSON):
  - every item of every feed now (plus the items deleted during the day) was captured once by
    the timeline collection, nothing else; each checkpoint names a captured item;
  - every Jetstream event of a followed account (commits, #identity, #account) was captured
    exactly once by the jetstream collection, kills or not: its cursor resumes with overlap;
  - the ledger holds each handle change, takedown and restore exactly once, as `platform: bluesky`,
    and each account `added` once per collection holding it (the timeline and the jetstream).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from sfm_archiver.simulator.bluesky import BlueskyScenario, BlueskySimulator
from sfm_archiver.storage import layout
from tests.bluesky.conftest import published_key
from tests.bluesky.helpers import item_name
from tests.invariants import CaptureRef, Report

TIMELINE = "bsky"
JETSTREAM = "bsky-live"
ACCOUNTS = [{"handle": "chaos-lib.bsky.test", "posts": 90, "reposts": 0.2, "replies": 0.3},
            {"handle": "chaos-arc.bsky.test", "posts": 50, "links": 0.5},
            {"handle": "chaos-old.bsky.test", "posts": 30}]
POSTERS = ["chaos-lib.bsky.test", "chaos-arc.bsky.test"]
RENAMED, TAKEN_DOWN = "chaos-old.bsky.test", "chaos-arc.bsky.test"
DAY_LATENCY_MS, SLOW_LATENCY_MS = 20, 300
POSTS = "app.bsky.feed.post"  # the commits a jetstream collection captures (creates and deletes of posts)
LEDGER_EVENT_OF = {"rename": "renamed", "takedown": "suspended", "restore": "unsuspended"}


def simulator(settings: Any) -> BlueskySimulator:
    return BlueskySimulator(BlueskyScenario.from_dict({
        "seed": settings.seed, "wire": "variant" if settings.wire == "variant" else "plain", "accounts": ACCOUNTS,
        "rate_limit": {"limit": 3000, "window_seconds": 300}, "jetstream": {"events_per_second": 5},
        "latency_ms": DAY_LATENCY_MS,
    }))


def config_section(sim: BlueskySimulator) -> dict:
    return {"appview_url": sim.appview_url, "jetstream_url": sim.jetstream_url}


def collections() -> list[dict]:
    return [{"name": TIMELINE, "platform": "bluesky", "type": "timeline", "schedule": "every 2s", "backfill": 300,
             "accounts": [account["handle"] for account in ACCOUNTS]},
            {"name": JETSTREAM, "platform": "bluesky", "type": "jetstream", "from_collections": [TIMELINE]}]


def cycle_events(cycle: int, d: float, rng: random.Random) -> list[tuple[float, dict]]:
    """(fraction of the cycle, event) of one cycle; accounts are named by their first handle."""
    events: list[tuple[float, dict]] = [
        (0.10, {"event": "rename", "account": RENAMED, "to": f"chaos-new{cycle + 1}.bsky.test"}),
        (0.20, {"event": "takedown", "account": TAKEN_DOWN}), (0.50, {"event": "restore", "account": TAKEN_DOWN}),
        (0.32, {"event": "latency", "ms": SLOW_LATENCY_MS}), (0.40, {"event": "latency", "ms": DAY_LATENCY_MS}),
        (0.18, {"event": "drop_jetstream"}), (0.58, {"event": "drop_jetstream"}),
        (0.45, {"event": "delete_post", "account": POSTERS[0]}),
    ]
    for _ in range(int(d / 6)):
        events.append((rng.uniform(0.05, 0.7), {"event": "post", "account": rng.choice(POSTERS), "count": rng.randint(1, 3)}))
    return events


class BlueskyDay:
    """The Bluesky simulator of one chaos run: applies the plan's events, then checks the archive."""

    def __init__(self, settings: Any):
        self.sim = simulator(settings)
        self.dids: dict[str, str] = {}
        self.deleted: dict[str, set[str]] = {}
        self.timeline_items: dict[str, Counter] = {}  # per account: each feed item's captured copies
        self.jetstream_events: Counter = Counter()

    def start(self) -> None:
        self.sim.start()
        self.dids = {account["handle"]: self.sim.did_of(account["handle"]) for account in ACCOUNTS}

    def stop(self) -> None:
        self.sim.stop()

    def apply(self, event: dict) -> None:
        name = event["event"]
        if name == "latency":
            self.sim.set_latency(event["ms"])
        elif name == "drop_jetstream":
            self.sim.drop_jetstream_connections()
        else:
            did = self.dids[event["account"]]
            if name == "delete_post":
                uri = next(uri for uri in self.sim.feed_uris(did) if uri.startswith(f"at://{did}/{POSTS}/"))
                self.sim.delete_post(uri)
                self.deleted.setdefault(did, set()).add(uri)
            else:
                params = {key: value for key, value in event.items() if key not in ("event", "account")}
                self.sim.apply_event({"event": name, "did": did, **params})

    def quiet(self) -> None:
        """No more slowness at the end of the day (the final harvest runs at full speed)."""
        self.sim.set_latency(0)

    # -- the check -------------------------------------------------------------------------

    def visit(self, ref: CaptureRef, record: dict) -> None:
        """Every record of every capture, in the archive or in a bag (`check_run` reads them)."""
        kind = layout.parse_capture_name(ref.name)["kind"]
        if ref.collection == TIMELINE and kind == "timeline":
            items = self.timeline_items.setdefault(record["__sfm"]["account"]["id"], Counter())
            items.update(item_name(item) for item in record["feed"])
        elif ref.collection == JETSTREAM and kind == "stream":
            self.jetstream_events[published_key(record)] += 1

    def check(self, store: Any, ledger_records: list[dict], report: Report) -> None:
        """After `visit` has seen every capture."""
        self._check_timelines(store, report)
        self._check_jetstream(report)
        self._check_ledger(store, ledger_records, report)

    def _check_timelines(self, store: Any, report: Report) -> None:
        for did in self.dids.values():
            where = f"{TIMELINE}/{did}"
            counts = self.timeline_items.get(did, Counter())
            published = set(self.sim.feed_uris(did))
            report.counts["bluesky_feed_items_published"] += len(published)
            report.counts["bluesky_feed_items_captured"] += len(set(counts) & published)
            doubled = sorted(uri for uri, n in counts.items() if n > 1)
            if doubled:
                report.add("bluesky.timeline.duplicate", f"{len(doubled)} feed items captured more than once: {doubled[:5]}", where)
            missing = sorted(published - set(counts))
            if missing:
                report.add("bluesky.timeline.missing", f"{len(missing)} of {len(published)} feed items not captured: "
                           f"{missing[:5]}", where)
            strangers = sorted(set(counts) - published - self.deleted.get(did, set()))
            if strangers:
                report.add("bluesky.timeline.unknown", f"{len(strangers)} captured items the feed never held: {strangers[:5]}", where)
            checkpoint = store.checkpoint(TIMELINE, did)
            if not checkpoint or checkpoint.split(" ", 1)[-1] not in counts:
                report.add("bluesky.checkpoint", f"checkpoint {checkpoint!r} names no captured item", where)

    def _check_jetstream(self, report: Report) -> None:
        followed = set(self.dids.values())
        expected = Counter(published_key(event) for event in self.sim.jetstream_events()
                           if event.get("did") in followed and (event.get("commit") or {}).get("collection", POSTS) == POSTS)
        got = self.jetstream_events
        report.counts["jetstream_events_expected"] = len(expected)
        report.counts["jetstream_events_captured"] = len(set(got) & set(expected))
        for check, keys in (("bluesky.jetstream.missing", set(expected) - set(got)),
                            ("bluesky.jetstream.duplicate", {key for key, n in got.items() if n > 1}),
                            ("bluesky.jetstream.unknown", set(got) - set(expected))):
            if keys:
                report.add(check, f"{len(keys)} events: {sorted(keys, key=str)[:5]}", JETSTREAM)

    def _check_ledger(self, store: Any, records: list[dict], report: Report) -> None:
        dids = set(self.dids.values())
        mine = [r for r in records if r.get("account_id") in dids]
        wrong_platform = [r["seq"] for r in mine if r.get("platform") != "bluesky"]
        if wrong_platform:
            report.add("bluesky.ledger.platform", f"records {wrong_platform[:5]} of Bluesky accounts say another platform")
        found = Counter((r["account_id"], r["event"]) for r in mine if r["event"] in LEDGER_EVENT_OF.values())
        expected: Counter = Counter()
        for event in self.sim.events():
            if event.get("event") in LEDGER_EVENT_OF and "error" not in event:
                expected[((event.get("result") or {}).get("did"), LEDGER_EVENT_OF[event["event"]])] += 1
        added = Counter(r["account_id"] for r in mine if r["event"] == "added")
        holders = Counter(member["account_id"] for name in (TIMELINE, JETSTREAM)
                          for member in store.memberships(name, include_removed=True))
        for did in sorted(dids):
            if added[did] != holders[did] or not holders[did]:
                report.add("bluesky.ledger.added", f"account {did} recorded as added {added[did]} times, "
                           f"once per collection holding it ({holders[did]}) expected")
        report.counts["bluesky_ledger_events_expected"] = sum(expected.values())
        report.counts["bluesky_ledger_events_matched"] = sum(min(n, found[key]) for key, n in expected.items())
        for key in sorted(set(expected) | set(found)):
            if expected[key] != found[key]:
                report.add("bluesky.ledger.events", f"account {key[0]}: {found[key]} '{key[1]}' events recorded, "
                           f"{expected[key]} expected")
