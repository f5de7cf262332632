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
