"""A post longer than 280 characters keeps its full text and every link, in timelines and streams.

X cuts `text` at 280 characters and sends the whole post only in `note_tweet`, when asked; the
simulator does the same (every post is long here), and puts the last link of a long post past
the cut. So a capture path that forgets `note_tweet` loses that text and that link, and fetch-urls
never sees the link.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sfm_archiver.jobs.timeline import harvest_timelines
from sfm_archiver.jobs.urls import collect_links
from sfm_archiver.platforms.x_stream import BackoffPolicy
from sfm_archiver.streams.supervisor import StreamSupervisor
from tests.streams.conftest import captured as stream_captured
from tests.streams.conftest import make_context
from tests.timelines.helpers import COLLECTION, TOKEN, captured, context, fast_client, published_ids, wait_for, write_config

FAST = BackoffPolicy(network_step=0.02, network_max=0.2, http_start=0.2, http_max=1.0, too_many_start=0.2,
                     too_many_max=1.0)


def assert_whole(post: dict) -> str:
    """The post carries its full text and links; returns the link found only past the cut."""
    note = post.get("note_tweet")
    assert note, f"post {post['id']} has no note_tweet: its text past 280 characters is lost"
    full = note["text"]
    assert len(full) > 280 and full.startswith(post["text"]) and len(post["text"]) <= 280
    links = note["entities"]["urls"]
    assert all(full[link["start"]:link["end"]] == link["url"] for link in links)
    last = links[-1]
    assert last["start"] >= len(post["text"]) and last["url"] not in post["text"]
    return last["expanded_url"]


def links_found(archive, collection: str) -> set[str]:
    today = datetime.now(timezone.utc).date()
    return set(collect_links(archive, collection, today, today).posts)


def test_long_posts_arrive_whole_in_timeline_captures(tmp_path, make_simulator, wire_style):
    sim = make_simulator(wire=wire_style, tokens=[TOKEN], long_posts=1.0,
                         accounts=[{"id": "901", "username": "essayist", "tweets": 40}])
    config = write_config(tmp_path, sim.base_url, ["essayist"])
    ctx = context(config)
    assert harvest_timelines(ctx, COLLECTION, client=fast_client(ctx.config))["result"] == "ok"

    posts = [post for page in captured(tmp_path / "archive") for post in page.get("data", [])]
    assert {post["id"] for post in posts} == published_ids(sim, "901")
    past_the_cut = {assert_whole(post) for post in posts}
    assert past_the_cut <= links_found(tmp_path / "archive", COLLECTION)


def test_long_posts_arrive_whole_in_stream_captures(tmp_path, make_simulator, wire_style):
    sim = make_simulator(wire=wire_style, long_posts=1.0, streams={"messages_per_second": 100, "keepalive_seconds": 0.1})
    ctx = make_context(tmp_path, sim.base_url, [{"name": "sampled", "type": "sample_stream"}])
    supervisor = StreamSupervisor(ctx, backoff=FAST)
    supervisor.start()
    try:
        wait_for(lambda: len(_safe(tmp_path / "archive")) >= 40, what="40 stream messages captured")
    finally:
        supervisor.stop()

    messages = [line for line in stream_captured(tmp_path / "archive", "sampled") if "data" in line]
    past_the_cut = {assert_whole(message["data"]) for message in messages}
    assert past_the_cut <= links_found(tmp_path / "archive", "sampled")


def _safe(archive) -> list[dict]:
    """Messages captured so far (a file being appended to may end in a half-written batch)."""
    try:
        return stream_captured(archive, "sampled")
    except (OSError, EOFError, ValueError):
        return []
