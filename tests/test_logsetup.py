"""Logging: one line per event on stderr, journald priorities, secrets masked."""

from __future__ import annotations

import io
import logging

import pytest

from sfm_archiver.logsetup import add_secrets, configure_logging

TOKEN = "AAAAAAAAAAAAAAAAAAAAAbearer%2Fsecret"


@pytest.fixture
def stream():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_secrets_are_masked_and_lines_carry_priorities(stream):
    configure_logging("INFO", secrets=[TOKEN, "abc"], stream=stream)
    log = logging.getLogger("sfm_archiver.test")
    log.info("Authorization: Bearer %s", TOKEN)
    log.warning("two\nlines")
    log.debug("hidden")
    text = stream.getvalue()
    assert TOKEN not in text
    assert text.splitlines() == [
        "<6>INFO sfm_archiver.test: Authorization: Bearer ***",
        "<4>WARNING sfm_archiver.test: two | lines",
    ]


def test_secrets_added_after_a_reload_are_masked(stream):
    configure_logging("INFO", secrets=[], stream=stream)
    add_secrets(["new-token-value"])
    logging.getLogger("x").error("token new-token-value refused")
    assert stream.getvalue() == "<3>ERROR x: token *** refused\n"


def test_noisy_libraries_are_quieted(stream):
    configure_logging("DEBUG", stream=stream)
    logging.getLogger("urllib3.connectionpool").info("https://api.twitter.com/2/tweets?token=...")
    assert stream.getvalue() == ""


def test_url_credentials_and_every_configured_secret_are_masked(stream, tmp_path):
    from sfm_archiver.config import load_config_text

    text = (f"paths: {{archive: {tmp_path}/a, state: {tmp_path}/s, outbox: {tmp_path}/o}}\n"
            "x: {bearer_token: '${SFM_TEST_TOKEN}'}\n"
            "bagging: {on_handoff: [rsync, 'rsync://ingest:Zk7s6d5f4g3h@store.example.edu/in/']}\n")
    config = load_config_text(text, tmp_path / "c.yaml", environ={"SFM_TEST_TOKEN": "Zk1q2w3e4r5t6y"}, check_paths=False)
    configure_logging("DEBUG", secrets=[config.x.bearer_token, *config.secrets], stream=stream)
    log = logging.getLogger("sfm_archiver.test")
    log.debug("running %s with %s", config.bagging.on_handoff, config.x.bearer_token)
    log.info("notify via mailtos://user:Zk0p9o8i7u6y@smtp.example.edu?to=a@b.edu&pass=Zk5t4r3e2w1q")
    output = stream.getvalue()
    for secret in ("Zk1q2w3e4r5t6y", "Zk7s6d5f4g3h", "Zk0p9o8i7u6y", "Zk5t4r3e2w1q"):
        assert secret not in output
    assert "store.example.edu/in/" in output and "smtp.example.edu" in output
