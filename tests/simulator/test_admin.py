"""The /_sim admin endpoints over HTTP (no auth), mirroring the Python methods."""

from __future__ import annotations

from tests.simulator.helpers import plain_session, raw_client


def test_counters_published_events_and_faults_over_http(simulator):
    session = plain_session()
    raw_client(simulator.base_url).get_user(id="100001")
    counters = session.get(f"{simulator.base_url}/_sim/counters").json()
    assert counters["calls"] == {"users_id": 1} and counters["streams"]["connections_total"] == 0
    applied = session.post(f"{simulator.base_url}/_sim/events",
                           json=[{"action": "protect", "account": "100001"},
                                 {"action": "post", "account": "100002"}]).json()["applied"]
    assert [entry["action"] for entry in applied] == ["protect", "post"]
    published = session.get(f"{simulator.base_url}/_sim/published").json()
    assert set(published) == {"posts", "stream_messages", "connections", "events"}
    assert published["posts"]["100002"][-1] == {"id": applied[1]["result"]["tweet_ids"][0],
                                                "created_at": published["posts"]["100002"][-1]["created_at"],
                                                "kind": published["posts"]["100002"][-1]["kind"], "source": "script"}
    faults = session.post(f"{simulator.base_url}/_sim/faults", json={"latency_ms": 5}).json()
    assert faults["latency_ms"] == 5 and session.get(f"{simulator.base_url}/_sim/faults").json() == faults


def test_admin_errors_are_400_json(simulator):
    session = plain_session()
    bad_event = session.post(f"{simulator.base_url}/_sim/events", json={"action": "rename", "account": "100001"})
    assert bad_event.status_code == 400 and "needs 'username'" in bad_event.json()["error"]
    not_json = session.post(f"{simulator.base_url}/_sim/faults", data=b"{nope")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    bad_fault = session.post(f"{simulator.base_url}/_sim/faults", json={"error_rate": 3})
    assert bad_fault.status_code == 400 and "probability" in bad_fault.json()["error"]
    assert session.get(f"{simulator.base_url}/_sim/nothing").status_code == 404


def test_published_can_leave_stream_messages_out(simulator):
    assert plain_session().get(f"{simulator.base_url}/_sim/published?stream_messages=false").json()[
        "stream_messages"] is None
    assert simulator.published(stream_messages=False)["stream_messages"] is None
    assert simulator.published()["stream_messages"] == []
