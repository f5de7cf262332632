"""Redaction of configuration text by YAML structure.

The property test builds random YAML documents (block and flow collections, every scalar style,
quoted keys, long values wrapped over several lines, anchors and aliases, `${VAR:-literal}`,
comments, URLs with credentials), then checks the redacted text against an oracle written from
the rule alone: `yaml.safe_load` of it has the same structure; each value under a key naming a
token, secret or password (not a `*_file` path) is an environment reference; every other value
is unchanged except URL credentials; and no secret is anywhere in the text.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sfm_archiver.config_redact import WITHHELD, redact_text, redact_url_credentials

STR = "tag:yaml.org,2002:str"
SECRET_WORDS = ("token", "secret", "password")
SECRET_KEYS = ["bearer_token", "Api_Token", "TOKEN", "client_secret", "SMTP_Password", "passwordHash", "x-token"]
PLAIN_KEYS = ["name", "url", "targets", "workers", "a b", "key: colon", "#hash", "bearer_token_file", "note"]
ENV_REFERENCE = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\})+$")


def secret_key(key: str) -> bool:
    """The rule as written in the issue, independently of the code: *token*, *secret*, *password*."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS) and not lowered.endswith("_file")


# -- generated documents ----------------------------------------------------------------------

distinct = st.text("abcdefghjkmnpqrstuvwxyz23456789", min_size=10, max_size=14).map(lambda s: "Zq" + s)
secret_literal = st.one_of(
    distinct,
    st.lists(distinct, min_size=2, max_size=4).map(" ".join),  # wraps over several lines
    st.lists(distinct, min_size=2, max_size=3).map("\n".join),  # real line breaks (block scalars)
    distinct.map(lambda s: "${SFM_TEST_UNSET:-" + s + "}"),
)
secret_value = st.one_of(secret_literal, st.just("${SFM_X_BEARER_TOKEN}"), st.just(""))
harmless = st.one_of(
    st.text("abcdefgh ", min_size=1, max_size=30).map(lambda s: "v" + s.strip()),
    st.sampled_from(["http://127.0.0.1:8080/hooks/sfm", "climate change lang:en", "every 6h", "50", "true",
                     "https://example.edu/page?pagination_token=abc", "${HOME}"]),
)
url_with_credentials = st.builds(
    lambda scheme, user, password, query: f"{scheme}://{user}:{password}@smtp.example.edu:587/path?to=a@b.edu{query}",
    st.sampled_from(["mailtos", "https", "json"]), distinct, distinct,
    st.one_of(st.just(""), distinct.map(lambda s: "&pass=" + s), distinct.map(lambda s: "&apikey=" + s)),
)
scalar_style = st.sampled_from([None, "'", '"', "|", ">"])


@st.composite
def scalar(draw, value):
    return yaml.ScalarNode(STR, draw(value), style=draw(scalar_style))


@st.composite
def mapping(draw, depth: int, shared: list, secret: bool = False):
    pairs, used = [], set()
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(SECRET_KEYS + PLAIN_KEYS))
        if key in used:
            continue
        used.add(key)
        key_node = yaml.ScalarNode(STR, key, style=draw(st.sampled_from([None, '"', "'"])))
        pairs.append((key_node, draw(value_node(depth, shared, secret or secret_key(key)))))
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=draw(st.booleans()))


@st.composite
def value_node(draw, depth: int, shared: list, secret: bool):
    choices = ["scalar", "url"] + (["mapping", "sequence"] if depth < 3 else []) + (["alias"] if shared else [])
    kind = draw(st.sampled_from(choices))
    if kind == "alias":
        return draw(st.sampled_from(shared))
    if kind == "mapping":
        node = draw(mapping(depth + 1, shared, secret))
    elif kind == "sequence":
        items = [draw(value_node(depth + 1, shared, secret)) for _ in range(draw(st.integers(1, 3)))]
        node = yaml.SequenceNode("tag:yaml.org,2002:seq", items, flow_style=draw(st.booleans()))
    elif kind == "url":
        node = draw(scalar(url_with_credentials))
    else:
        node = draw(scalar(secret_value if secret else harmless))
    if draw(st.booleans()):
        shared.append(node)  # may be used again: an anchor and its aliases
    return node


@st.composite
def documents(draw) -> str:
    root = draw(mapping(0, []))
    root.flow_style = False
    text = yaml.serialize(root, width=draw(st.sampled_from([24, 40, 200])), allow_unicode=True)
    lines = text.splitlines(keepends=True)
    comments = st.sampled_from(["# a note\n", "# token: " + draw(distinct) + "\n", "# see mailtos://u:" + draw(distinct) + "@h\n"])
    out = []
    for line in lines:  # comment lines before top-level keys (never inside a value)
        if not line[:1].isspace() and draw(st.booleans()):
            out.append(draw(comments))
        out.append(line)
    return "".join(out)


# -- the oracle -------------------------------------------------------------------------------


def secrets_in(text: str) -> set[str]:
    """Every distinctive random word of the document that is a secret or a credential."""
    found = set()
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            found.update(re.findall(r"Zq[a-z0-9]+", line))
    document = yaml.safe_load(text)
    stack = [(document, False)]
    while stack:
        value, secret = stack.pop()
        if isinstance(value, dict):
            stack.extend((v, secret or secret_key(str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, secret) for v in value)
        elif isinstance(value, str):
            if secret or "://" in value:
                found.update(re.findall(r"Zq[a-z0-9]+", value.split("@")[0] if not secret else value))
                if not secret and "?" in value:
                    found.update(v for k, v in parse_qsl(urlsplit(value).query) if k in ("pass", "apikey"))
    return found


def check(original, redacted, secret: bool, secret_values: set, path: str) -> None:
    if isinstance(original, dict):
        assert isinstance(redacted, dict) and list(original) == list(redacted), path
        for key in original:
            check(original[key], redacted[key], secret or secret_key(str(key)), secret_values, f"{path}.{key}")
    elif isinstance(original, list):
        assert isinstance(redacted, list) and len(original) == len(redacted), path
        for index, (a, b) in enumerate(zip(original, redacted, strict=True)):
            check(a, b, secret, secret_values, f"{path}[{index}]")
    elif secret or (isinstance(original, str) and len(original) > 1 and id(original) in secret_values):  # an alias: same object
        if original in (None, "") or ENV_REFERENCE.match(str(original)):
            assert redacted == original, path
        elif str(original).startswith("${SFM_TEST_UNSET:-"):
            assert redacted == "${SFM_TEST_UNSET}", path
        else:
            assert isinstance(redacted, str) and ENV_REFERENCE.match(redacted), (path, redacted)
    elif isinstance(original, str) and "://" in original and "@" in original.split("?")[0]:
        before, after = urlsplit(original), urlsplit(redacted)
        assert (after.scheme, after.hostname, after.port, after.path) == (before.scheme, before.hostname, before.port, before.path), path
        assert [k for k, _ in parse_qsl(after.query)] == [k for k, _ in parse_qsl(before.query)], path
        assert dict(parse_qsl(after.query))["to"] == "a@b.edu", path
    else:
        assert redacted == original, path


def values_under_secret_keys(document, secret: bool = False) -> set[int]:
    """Identities of the values under secret keys (an alias elsewhere is the same object)."""
    if isinstance(document, dict):
        return {v for k, value in document.items() for v in values_under_secret_keys(value, secret or secret_key(str(k)))}
    if isinstance(document, list):
        return {v for item in document for v in values_under_secret_keys(item, secret)}
    return {id(document)} if secret and document not in (None, "") else set()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(documents())
def test_redaction_keeps_everything_but_the_secrets(text):
    redacted_text = redact_text(text)
    assert redacted_text != WITHHELD, text
    original = yaml.safe_load(text)
    redacted = yaml.safe_load(redacted_text)
    check(original, redacted, False, values_under_secret_keys(original), "")
    leaked = [secret for secret in secrets_in(text) if secret in redacted_text]
    assert leaked == [], (text, redacted_text)
    assert len(redacted_text.splitlines()) == len(text.splitlines())  # errors in it name the same lines


# -- the forms named in the issue, one by one ---------------------------------------------------

TOKEN = "AAAAzz9SecretBearerValue77"
FORMS = {
    "block scalar >-": f"x:\n  bearer_token: >-\n    {TOKEN}\n  workers: 2\n",
    "block scalar |": f"x:\n  bearer_token: |\n    {TOKEN}\n",
    "quoted key": f'x:\n  "bearer_token": {TOKEN}\n',
    "single-quoted key and value": f"x:\n  'bearer_token': '{TOKEN}'\n",
    "flow mapping": f"x: {{api_base_url: 'http://h', bearer_token: {TOKEN}, workers: 2}}\n",
    "multi-line plain": f"x:\n  bearer_token: {TOKEN[:10]}\n    {TOKEN[10:]}\n  workers: 2\n",
    "multi-line double-quoted": f'x:\n  bearer_token: "{TOKEN[:10]}\n    {TOKEN[10:]}"\n',
    "comment after the value": f"x:\n  bearer_token: {TOKEN}   # the app's token\n  workers: 2\n",
    "anchor under the secret, alias elsewhere": f"x:\n  bearer_token: &t {TOKEN}\nother: [*t]\n",
    "anchor elsewhere, alias under the secret": f"other: &t {TOKEN}\nx:\n  bearer_token: *t\n",
    "merged mapping": f"base: &b {{bearer_token: {TOKEN}}}\nx:\n  <<: *b\n  workers: 2\n",
    "environment default": f"x:\n  bearer_token: ${{SFM_X_BEARER_TOKEN:-{TOKEN}}}\n",
    "tagged": f"x:\n  bearer_token: !!str {TOKEN}\n",
    "future section": f"notify:\n  smtp_password: {TOKEN}\nmetrics:\n  auth:\n    client_secret: {TOKEN}x\n",
    "apprise URL": f'notify:\n  targets: ["mailtos://user:{TOKEN}@smtp.example.edu?to=x@example.edu"]\n',
    "query parameter": f"notify:\n  targets: [json://127.0.0.1/hook?token={TOKEN}&a=1]\n",
    "commented-out token": f"x:\n  # bearer_token: {TOKEN}\n  workers: 2\n",
}


@pytest.mark.parametrize("form", FORMS)
def test_each_form_loses_its_secret_and_stays_valid_yaml(form):
    text = FORMS[form]
    redacted = redact_text(text)
    assert TOKEN[:10] not in redacted and TOKEN[10:] not in redacted, redacted
    assert redacted != WITHHELD
    yaml.safe_load(redacted)
    assert len(redacted.splitlines()) == len(text.splitlines())


def test_a_literal_becomes_the_documented_variable_and_references_stay():
    text = f"x:\n  bearer_token: {TOKEN}\n  bearer_token_file: /etc/sfm-archiver/x-bearer-token\nnotify:\n  password: ${{SMTP_PW}}\n"
    assert yaml.safe_load(redact_text(text)) == {
        "x": {"bearer_token": "${SFM_X_BEARER_TOKEN}", "bearer_token_file": "/etc/sfm-archiver/x-bearer-token"},
        "notify": {"password": "${SMTP_PW}"},
    }


def test_comments_are_kept_unless_they_name_a_secret():
    text = "# site configuration\nx:\n  bearer_token: abcdefghijk  # the app token\n  # token: oldoldoldold\n"
    redacted = redact_text(text)
    assert "# site configuration" in redacted and "# the app token" in redacted
    assert "oldoldoldold" not in redacted and "abcdefghijk" not in redacted


@pytest.mark.parametrize("text", [
    f"x:\n  bearer_token: {TOKEN}\n  bad: [unclosed\n",
    f"x: {{bearer_token: {TOKEN}}}\n---\nsecond: document\n",
    f"x:\n\tbearer_token: {TOKEN}\n",
])
def test_text_that_cannot_be_parsed_is_withheld_whole(text):
    assert redact_text(text) == WITHHELD


def test_url_credentials_in_values():
    assert redact_url_credentials("mailtos://user:pw123456@smtp.example.edu?to=a@b.edu") == "mailtos://REDACTED:REDACTED@smtp.example.edu?to=a@b.edu"
    assert redact_url_credentials("mailtos://user:${SMTP_PASSWORD:-x}@smtp.example.edu") == "mailtos://REDACTED:${SMTP_PASSWORD}@smtp.example.edu"
    assert redact_url_credentials("json://h/p?pass=x1&token=x2&next_token=c3") == "json://h/p?pass=REDACTED&token=REDACTED&next_token=c3"
    assert redact_url_credentials("archives@example.edu and https://example.edu/a") == "archives@example.edu and https://example.edu/a"
