"""Validation reports every problem of a file, once each, in one pass, each at its line.

The configurations are written line by line here, so the line of every planted mistake is known
from the text itself, not from the loader.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.config import load_config_text
from sfm_archiver.errors import ConfigError

SOURCE = Path("/etc/sfm-archiver/config.yaml")
ENVIRON = {"HOME": "/tmp"}

SIX_MISTAKES = """\
paths: {archive: /tmp/a, state: /tmp/s, outbox: /tmp/o}
x: {bearer_token: t}
colections: []
collections:
  - name: Bad Name
    type: timeline
    schedule: "61 * * * *"
    accounts: [ok_user, "bad user!"]
  - name: other
    type: timelime
jobs:
  bag: "every 5x"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, SOURCE, environ=ENVIRON, check_paths=False)
    return raised.value.problems


def lines_of(problems: list[str]) -> list[int]:
    lines = []
    for problem in problems:
        match = re.match(re.escape(str(SOURCE)) + r":(\d+): ", problem)
        assert match, f"no file:line in {problem!r}"
        lines.append(int(match.group(1)))
    return lines


def test_six_distinct_mistakes_are_six_problems_at_their_lines():
    problems = problems_of(SIX_MISTAKES)
    assert sorted(lines_of(problems)) == [3, 5, 7, 8, 10, 12], problems
    text = "\n".join(problems)
    for words in ("colections", "Bad Name", "61", "bad user!", "timelime", "every 5x"):
        assert words in text


# Each slot is one line of a configuration, written correctly or with one mistake in it.
# (line text when right, line text when wrong); `None` as the right text: the line is left out.
SLOTS = {
    "top": [
        ("organization:", None),
        ("  name: Test Library", None),
        ("  contact_email: archives@example.edu", "  contact_email: not-an-address"),
        ("paths: {archive: /tmp/a, state: /tmp/s, outbox: /tmp/o}", None),
        ("x:", None),
        ("  bearer_token: t", None),
        ("  workers: 4", "  workers: 0"),
        (None, "colections: []"),
    ],
    "timeline": [
        ("  - name: news", "  - name: Bad Name"),
        ("    type: timeline", None),
        ('    schedule: "0 */6 * * *"', '    schedule: "61 * * * *"'),
        ("    accounts:", None),
        ("      - sfm_alpha", '      - "bad user!"'),
        ('      - {id: "12345"}', '      - {id: "12a45"}'),
        ("    backfill: 100", "    backfill: 5000"),
    ],
    "stream": [
        ("  - name: climate", "  - name: -climate"),
        ("    type: filter_stream", None),
        ("    rules:", None),
        ("      - {value: climate, tag: cc}", "      - {value: climate, tag: 'c:c'}"),
        ("      - {value: weather, tag: ww}", "      - {value: '', tag: ww}"),
        (None, "    colour: blue"),
    ],
    "other": [
        ("  - name: other", "  - name: ''"),
        ("    type: sample_stream", "    type: timelime"),
        ("    warc: true", "    warc: maybe"),
    ],
    "tail": [
        ("jobs:", None),
        ('  bag: "every 5m"', '  bag: "every 5x"'),
        ('  fetch_urls: "15 1 * * *"', '  fetch_urls: "15 25 * * *"'),
        ("bagging:", None),
        ("  period: day", "  period: fortnight"),
        ("storage:", None),
        ("  compresslevel: 6", "  compresslevel: 12"),
        ("urls:", None),
        ("  per_host: 4", "  per_host: -1"),
        ("disk:", None),
        ("  warning_free: 10GB", "  warning_free: lots"),
    ],
}
ORDER = ("top", "collections", "timeline", "stream", "other", "tail")
MISTAKES = [(part, index) for part in SLOTS for index, (_, wrong) in enumerate(SLOTS[part]) if wrong is not None]


def write(mistakes: set[tuple[str, int]]) -> tuple[str, list[int]]:
    """The configuration with `mistakes` planted, and the line of each."""
    lines, wrong_lines = [], []
    for part in ORDER:
        if part == "collections":
            lines.append("collections:")
            continue
        for index, (right, wrong) in enumerate(SLOTS[part]):
            text = wrong if (part, index) in mistakes else right
            if text is None:
                continue
            lines.append(text)
            if (part, index) in mistakes:
                wrong_lines.append(len(lines))
    return "\n".join(lines) + "\n", wrong_lines


def test_the_slots_are_a_valid_configuration_when_right():
    text, wrong = write(set())
    assert wrong == []
    config = load_config_text(text, SOURCE, environ=ENVIRON, check_paths=False)
    assert [c.name for c in config.collections] == ["news", "climate", "other"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(st.sampled_from(MISTAKES), min_size=1))
def test_k_independent_mistakes_are_k_problems_each_at_its_line(mistakes):
    text, wrong_lines = write(mistakes)
    problems = problems_of(text)
    assert sorted(lines_of(problems)) == sorted(wrong_lines), "\n".join([text, *problems])


@pytest.mark.parametrize("text, line", [
    ("organization: {name: &t Zk8h3j2k4l5m6n}\npaths: {archive: /a, state: /s, outbox: /o}\nx:\n  bearer_token: *t\n", 1),
    ("paths: {archive: /a, state: /s, outbox: /o}\nx:\n  bearer_token: &t Zk8h3j2k4l5m6n\norganization:\n  name: *t\n", 5),
])
def test_a_secret_reused_by_alias_where_it_would_be_shown_is_refused(text, line):
    problems = problems_of(text)
    assert lines_of(problems) == [line]
    assert "Zk8h3j2k4l5m6n" not in problems[0] and "secret" in problems[0]


def test_a_problem_with_a_secret_never_quotes_its_value():
    """Problems reach the terminal, the log and (a refused reload) the state store."""
    from sfm_archiver.config import _Builder, _email, _Problems
    from sfm_archiver.yamlsource import load_located

    document, _ = load_located("notify:\n  smtp_password: Zk8h3j2k4l5m6n\n  contact: Zk9q8w7e6r5t4y\n")
    problems = _Problems(SOURCE)
    builder = _Builder(problems, SOURCE, ENVIRON, check_paths=False)
    section = document["notify"]
    builder.value(section, "smtp_password", None, _email, "an e-mail address")
    builder.value(section, "contact", None, _email, "an e-mail address")
    secret_problem, plain_problem = problems.messages
    assert "smtp_password" in secret_problem and "Zk8h3j2k4l5m6n" not in secret_problem
    assert "Zk9q8w7e6r5t4y" in plain_problem  # other values are quoted, to help


def test_durations_too_long_for_the_clock_are_problems_not_tracebacks():
    text = ("paths: {archive: /a, state: /s, outbox: /o}\n"
            "urls:\n  timeout: 86400000000000.0\n"
            "jobs:\n  bag: every 99999999999999d\n")
    assert sorted(lines_of(problems_of(text))) == [3, 5]
