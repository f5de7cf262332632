"""WARC files of API calls and link checks: valid, linked pairs, crash-safe, rotated, no secrets."""

from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone

import requests

from sfm_archiver.platforms.transport import make_client
from sfm_archiver.platforms.x import XClient
from sfm_archiver.storage.gzmembers import seal
from sfm_archiver.storage.layout import parse_capture_name
from sfm_archiver.storage.warc import WarcWriter, api_writer, record_api_calls, record_session

from .helpers import TOKEN, assert_no_secret, gzip_members, index, make_ctx, warc_files, warcio


def check(path) -> None:
    result = warcio("check", "-v", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "digest pass" in result.stdout


def pairs(records: list[dict]) -> list[tuple[dict, dict]]:
    """(request, response) per exchange, matched by WARC-Concurrent-To."""
    responses = {r["warc-record-id"]: r for r in records if r["warc-type"] == "response"}
    requests_ = [r for r in records if r["warc-type"] == "request"]
    assert len(requests_) == len(responses)
    return [(request, responses[request["warc-concurrent-to"]]) for request in requests_]


def test_tweepy_client_calls_are_recorded_without_the_token(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    client = XClient(ctx.config.x, user_agent=ctx.config.user_agent())
    with record_api_calls(ctx, "news", "timeline", "user_timeline", client) as recorded:
        users = recorded.users_by_usernames(["sfm_alpha", "sfm_banned"])
        user_id = users.body["data"][0]["id"]
        first = recorded.user_timeline(user_id, max_results=20)
        second = recorded.user_timeline(user_id, max_results=20, pagination_token=first.body["meta"]["next_token"])
        assert recorded.session.hooks["response"]
    assert not client.session.hooks["response"], "the hook stays on the session after the block"
    client.user_timeline(user_id, max_results=5)  # not recorded: outside the block

    (path,) = warc_files(ctx.config.paths.archive)
    check(path)
    records = index(path)
    assert [r["warc-type"] for r in records[:1]] == ["warcinfo"]
    exchanges = pairs(records)
    calls = simulator.counters()["calls_total"]
    assert len(exchanges) == 3 == calls - 1
    for request, response in exchanges:
        assert request["warc-target-uri"] == response["warc-target-uri"]
        assert request["warc-target-uri"].startswith(simulator.base_url + "/2/users")
        assert response["http:status"] == "200"
    text = gzip.decompress(path.read_bytes())
    for page in (users, first, second):
        assert page.raw in text  # the exact bytes the API sent
    assert b"Authorization" not in text and b"Bearer" not in text
    assert b"job: user_timeline" in text and b"collection: news" in text and b"software: sfm-archiver/" in text
    assert gzip_members(path) == len(records)
    assert_no_secret(tmp_path / "archive")


def test_plain_tweepy_client_through_record_session(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    client = make_client(TOKEN, simulator.base_url, return_type=requests.Response)
    writer = api_writer(ctx, "news", "users", "update_usernames")
    record_session(client.session, writer)
    client.get_user(username="sfm_alpha")
    client.get_users(usernames=["sfm_alpha", "nobody_here"])
    writer.close()
    (path,) = warc_files(ctx.config.paths.archive)
    assert parse_capture_name(path.name)["kind"] == "users"
    check(path)
    exchanges = pairs(index(path))
    assert [response["warc-target-uri"].split("?")[0] for _, response in exchanges] == [
        f"{simulator.base_url}/2/users/by/username/sfm_alpha", f"{simulator.base_url}/2/users/by"]
    assert ctx.store.open_files() == []
    assert_no_secret(tmp_path / "archive")


def test_streams_record_no_warc_by_default(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    assert ctx.config.collection("live").warc is False and api_writer(ctx, "live", "stream", "sample_stream") is None
    client = make_client(TOKEN, simulator.base_url, return_type=requests.Response)
    with record_api_calls(ctx, "live", "stream", "sample_stream", client):
        client.get_user(username="sfm_alpha")
    assert warc_files(ctx.config.paths.archive) == []


def test_secrets_are_removed_from_urls_headers_and_bodies(tmp_path, simulator):
    # The shortener echoes its last path segment in Location headers and landing pages, so a
    # link carrying the token shows that every place a secret can hide is cleaned.
    ctx = make_ctx(tmp_path, simulator.base_url)
    writer = WarcWriter(ctx.config.paths.archive, "news", "urls", "fetch_urls", secrets=[TOKEN])
    session = requests.Session()
    session.trust_env = False
    session.headers["X-Api-Token"] = "kept-out-by-name"
    session.hooks["response"].append(writer.hook)
    session.get(f"{simulator.base_url}/s/chain/1/301/{TOKEN}",
                headers={"Authorization": f"Bearer {TOKEN}", "Cookie": "sid=1"})
    writer.close()
    (path,) = warc_files(ctx.config.paths.archive)
    check(path)
    text = gzip.decompress(path.read_bytes())
    assert text.count(b"[redacted]") >= 4  # two target URIs, request lines, Location, landing page
    for leaked in (b"Authorization", b"Bearer", b"Cookie", b"kept-out-by-name"):
        assert leaked not in text
    assert_no_secret(tmp_path / "archive")


def test_each_record_is_one_gzip_member_and_a_torn_tail_is_sealed(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    writer = WarcWriter(ctx.config.paths.archive, "news", "urls", "fetch_urls", registry=ctx.store)
    session = requests.Session()
    session.trust_env = False
    for n in range(5):
        writer.write_exchange(session.get(f"{simulator.base_url}/s/chain/0/301/m{n}"))
    path = writer.path
    assert ctx.store.open_files()[0]["path"] == str(path)
    writer.sync()
    assert gzip_members(path) == 1 + 5 * 2
    size = path.stat().st_size
    with open(path, "r+b") as handle:  # a power cut in the middle of the last write
        handle.truncate(size - 30)
    removed = seal(path)
    assert 0 < removed < size
    check(path)
    assert len(index(path)) == 1 + 4 * 2 + 1  # the last pair lost its request record only
    writer.close()


def test_files_rotate_on_the_hour_each_with_its_warcinfo(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    now = [datetime(2026, 11, 20, 10, 59, 59, 500000, tzinfo=timezone.utc)]
    writer = WarcWriter(ctx.config.paths.archive, "news", "timeline", "user_timeline", clock=lambda: now[0])
    session = requests.Session()
    session.trust_env = False
    writer.write_exchange(session.get(f"{simulator.base_url}/s/chain/0/301/r1"))
    now[0] += timedelta(seconds=1)
    writer.write_exchange(session.get(f"{simulator.base_url}/s/chain/0/301/r2"))
    writer.close()
    files = warc_files(ctx.config.paths.archive)
    assert [p.parent.relative_to(ctx.config.paths.archive).as_posix() for p in files] == [
        "news/2026/11/20/10", "news/2026/11/20/11"]
    for path in files:
        check(path)
        records = index(path)
        assert [r["warc-type"] for r in records] == ["warcinfo", "response", "request"]


def test_streamed_and_cut_bodies_are_marked_truncated(tmp_path, simulator):
    ctx = make_ctx(tmp_path, simulator.base_url)
    writer = WarcWriter(ctx.config.paths.archive, "news", "urls", "fetch_urls")
    session = requests.Session()
    session.trust_env = False
    session.hooks["response"].append(writer.hook)
    streamed = session.get(f"{simulator.base_url}/s/chain/0/301/streamed", stream=True)
    assert b"Landing page streamed" in streamed.content  # the hook left the body to its reader
    session.hooks["response"].clear()
    page = session.get(f"{simulator.base_url}/s/chain/0/301/cut")
    writer.write_exchange(page, page.content[:40], truncated=True)
    writer.close()
    (path,) = warc_files(ctx.config.paths.archive)
    check(path)
    text = gzip.decompress(path.read_bytes())
    assert text.count(b"WARC-Truncated: unspecified") == 1 and text.count(b"WARC-Truncated: length") == 1
    assert b"Landing page streamed" not in text and page.content[:40] in text
    assert page.content[40:] not in text
