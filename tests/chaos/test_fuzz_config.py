"""Bad configuration never gives a traceback: a valid Config, or ConfigError with `file:line:` problems.

Random YAML documents, structure-aware mutations of config.example.yaml (a value somewhere
replaced by something random) and text mutations (lines deleted, repeated, swapped, re-indented,
characters changed, the file cut short).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.config import Config, load_config_text
from sfm_archiver.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
SOURCE = Path("/etc/sfm-archiver/config.yaml")
PROBLEM = re.compile(r"^" + re.escape(str(SOURCE)) + r":\d+: \S")
ENVIRON = {"SFM_X_BEARER_TOKEN": "fuzz-token"}
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(["every 2s", "0 */6 * * *", "hour", "tar", "30s", "10GB", "${NOPE}",
                                           "${SFM_X_BEARER_TOKEN}", "../../etc", "/abs/path", "a:b", "-", "~"]),
)
documents = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12) | st.sampled_from(
        ["paths", "x", "collections", "name", "type", "rules", "accounts", "bagging", "period", "jobs"]), inner, max_size=4)),
    max_leaves=25)


def assert_clean(text: str) -> Config | None:
    """The loader's contract: a Config, or ConfigError whose every problem names file and line."""
    try:
        config = load_config_text(text, SOURCE, environ=ENVIRON, check_paths=False)
    except ConfigError as error:
        assert error.problems, "a ConfigError without problems"
        for problem in error.problems:
            assert PROBLEM.match(problem), f"not a file:line problem: {problem!r}"
        return None
    assert isinstance(config, Config)
    return config


def test_the_example_itself_loads():
    assert assert_clean(EXAMPLE.read_text()) is not None


@FUZZ
@given(documents)
def test_random_documents(document):
    assert_clean(yaml.safe_dump(document, allow_unicode=True))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, prefix + (index,))


EXAMPLE_DOC = yaml.safe_load(EXAMPLE.read_text())
EXAMPLE_PATHS = list(_paths(EXAMPLE_DOC))[1:]


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(EXAMPLE_PATHS), documents), min_size=1, max_size=3))
def test_example_with_values_replaced(replacements):
    import copy

    document = copy.deepcopy(EXAMPLE_DOC)
    for path, value in replacements:
        node = document
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    assert_clean(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


EXAMPLE_LINES = EXAMPLE.read_text().splitlines()
line_numbers = st.integers(0, len(EXAMPLE_LINES) - 1)
edits = st.one_of(
    st.tuples(st.just("delete"), line_numbers),
    st.tuples(st.just("repeat"), line_numbers),
    st.tuples(st.just("swap"), line_numbers, line_numbers),
    st.tuples(st.just("indent"), line_numbers, st.integers(-4, 4)),
    st.tuples(st.just("char"), line_numbers, st.integers(0, 80), st.sampled_from(list(":-[]{}'\"#&*!|>%@`,\t ?x0"))),
    st.tuples(st.just("cut"), st.integers(0, 6000)),
)


def apply_edit(lines: list[str], edit: tuple) -> list[str]:
    """One edit; line numbers wrap around the current length."""
    lines = list(lines)
    kind = edit[0]
    if kind != "cut":
        edit = (kind, *(value % len(lines) if index < (2 if kind != "swap" else 3) else value
                        for index, value in enumerate(edit[1:], start=1)))
    if kind == "delete":
        del lines[edit[1]]
    elif kind == "repeat":
        lines.insert(edit[1], lines[edit[1]])
    elif kind == "swap":
        lines[edit[1]], lines[edit[2]] = lines[edit[2]], lines[edit[1]]
    elif kind == "indent":
        line = lines[edit[1]]
        lines[edit[1]] = " " * edit[2] + line if edit[2] >= 0 else line[-edit[2]:]
    elif kind == "char":
        line = lines[edit[1]]
        at = min(edit[2], len(line))
        lines[edit[1]] = line[:at] + edit[3] + line[at + 1:]
    else:
        lines = "\n".join(lines)[:edit[1]].split("\n")
    return lines


@FUZZ
@given(st.lists(edits, min_size=1, max_size=4))
def test_example_text_mutations(mutations):
    lines = EXAMPLE_LINES
    for edit in mutations:
        if lines:
            lines = apply_edit(lines, edit)
    assert_clean("\n".join(lines) + "\n")


@FUZZ
@given(st.binary(max_size=300).map(lambda data: data.decode("utf-8", "replace")))
def test_arbitrary_text(text):
    assert_clean(text)
