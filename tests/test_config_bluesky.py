"""Bluesky collections in the configuration: platform, the bluesky: section, handles and DIDs,
jetstream collections, and each mistake as one `file:line` message.

The configurations are written line by line, so each planted mistake's line is known from the text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sfm_archiver.config import load_config_text, public_dict
from sfm_archiver.config_redact import WITHHELD, redact_text
from sfm_archiver.errors import ConfigError, NotBuiltError
from sfm_archiver.platforms import platform_of
from sfm_archiver.platforms.x_platform import X
from tests.test_config import EXAMPLE, run_cli, write
from tests.test_config_redact import FORMS, TOKEN

SOURCE = Path("/etc/sfm-archiver/config.yaml")
PATHS = "paths: {archive: /tmp/a, state: /tmp/s, outbox: /tmp/o}"
PLC = "did:plc:abcdefghijklmnopqrstuvwx"
PASSWORD = "abcd-efgh-ijkl-mnop"


def load(*lines: str, environ: dict | None = None):
    return load_config_text("\n".join(lines) + "\n", SOURCE, environ=environ or {}, check_paths=False)


def problems(*lines: str, environ: dict | None = None) -> list[tuple[int, str]]:
    """(line, message) of each problem; every message is one `file:line: ...` line."""
    with pytest.raises(ConfigError) as raised:
        load(*lines, environ=environ)
    found = []
    for problem in raised.value.problems:
        match = re.fullmatch(re.escape(str(SOURCE)) + r":(\d+): (.+)", problem)
        assert match, f"not one file:line line: {problem!r}"
        found.append((int(match.group(1)), match.group(2)))
    return found


MIXED = (
    PATHS,                                            # 1
    "x: {bearer_token: t}",                           # 2
    "bluesky:",                                       # 3
    "  appview_url: http://127.0.0.1:8000/",          # 4
    "  jetstream_url: ws://127.0.0.1:8001/subscribe",  # 5
    "collections:",                                   # 6
    "  - {name: news, type: timeline, accounts: [gwtweets]}",  # 7
    "  - name: bsky-officials",                       # 8
    "    platform: bluesky",                          # 9
    "    type: timeline",                             # 10
    "    accounts:",                                  # 11
    "      - Alice.bsky.social",                      # 12
    "      - '@bob.example.edu'",                     # 13
    f"      - {PLC}",                                 # 14
    "      - {did: 'did:web:example.com', active: false}",  # 15
    "      - {handle: carol.bsky.social, did: 'did:web:carol.example'}",  # 16
    "  - name: bsky-live",                            # 17
    "    platform: bluesky",                          # 18
    "    type: jetstream",                            # 19
    "    from_collections: [bsky-officials]",         # 20
    "    keywords: ['#climate', flood]",              # 21
    "  - {name: climate, type: filter_stream, rules: [{value: climate}]}",  # 22
)


def test_a_mixed_configuration_is_typed():
    config = load(*MIXED)
    assert [(c.name, c.platform, c.type) for c in config.collections] == [
        ("news", "x", "timeline"), ("bsky-officials", "bluesky", "timeline"), ("bsky-live", "bluesky", "jetstream"),
        ("climate", "x", "filter_stream")]
    assert [(a.username, a.id, a.active) for a in config.collection("bsky-officials").accounts] == [
        ("alice.bsky.social", None, True), ("bob.example.edu", None, True), (None, PLC, True),
        (None, "did:web:example.com", False), ("carol.bsky.social", "did:web:carol.example", True)]
    live = config.collection("bsky-live")
    assert (live.from_collections, live.keywords, live.schedule, live.accounts) == (("bsky-officials",), ("#climate", "flood"), None, ())
    assert config.bluesky.appview_url == "http://127.0.0.1:8000"
    assert config.bluesky.jetstream_url == "ws://127.0.0.1:8001/subscribe"
    assert (config.bluesky.identifier, config.bluesky.app_password) == ("", "")
    # Call sites that know only X keep seeing only X collections; others ask for every platform.
    assert [c.name for c in config.collections_of_type("timeline")] == ["news"]
    assert [c.name for c in config.collections_of_type("timeline", platform=None)] == ["news", "bsky-officials"]
    assert [c.name for c in config.collections_of_type("jetstream", platform="bluesky")] == ["bsky-live"]


def test_defaults_of_the_bluesky_section():
    config = load(PATHS, "collections:", "  - {name: b, platform: bluesky, type: timeline, accounts: [a.bsky.social]}")
    assert config.bluesky.appview_url == "https://public.api.bsky.app"
    assert config.bluesky.jetstream_url == "wss://jetstream2.us-east.bsky.network/subscribe"
    assert config.collection("b").schedule.text == "0 */6 * * *"


def test_only_bluesky_collections_need_no_x_token():
    config = load(PATHS, "collections:", "  - {name: b, platform: bluesky, type: jetstream, keywords: [flood]}")
    assert config.x.bearer_token == "" and config.collection("b").platform == "bluesky"
    # one X collection, and the token is required again
    found = problems(PATHS, "collections:", "  - {name: b, platform: bluesky, type: jetstream, keywords: [flood]}",
                     "  - {name: s, type: sample_stream}")
    assert found == [(1, "missing credentials: set x.bearer_token (e.g. ${SFM_X_BEARER_TOKEN}) or x.bearer_token_file")]


@pytest.mark.parametrize("lines, expected", [
    ((PATHS, "collections:", "  - {name: b, platform: mastodon, type: timeline, accounts: [a]}"),
     [(3, "collection 'b': platform 'mastodon' is invalid (allowed: x, bluesky)")]),
    ((PATHS, "collections:", "  - name: b", "    platform: bluesky", "    type: filter_stream"),
     [(5, "collection 'b': type 'filter_stream' is a type of x collections, not of bluesky collections "
          "(allowed with platform: bluesky: timeline, jetstream)")]),
    ((PATHS, "collections:", "  - name: b", "    platform: bluesky", "    type: sample_stream"),
     [(5, "collection 'b': type 'sample_stream' is a type of x collections, not of bluesky collections "
          "(allowed with platform: bluesky: timeline, jetstream)")]),
    ((PATHS, "x: {bearer_token: t}", "collections:", "  - name: j", "    type: jetstream", "    keywords: [a]"),
     [(5, "collection 'j': type 'jetstream' is a type of bluesky collections, not of x collections "
          "(allowed with platform: x: timeline, filter_stream, sample_stream)")]),
    ((PATHS, "collections:", "  - name: b", "    platform: bluesky", "    type: timline"),
     [(5, "collection 'b': type 'timline' is invalid; did you mean 'timeline'? (allowed: timeline, jetstream)")]),
    ((PATHS, "collections:", "  - name: j", "    platform: bluesky", "    type: jetstream"),
     [(3, "collection 'j': a jetstream collection needs from_collections, keywords or both")]),
    ((PATHS, "collections:", "  - name: j", "    platform: bluesky", "    type: jetstream", "    keywords: flood"),
     [(6, "collection 'j': keywords must be a list of words or hashtags")]),
    ((PATHS, "collections:", "  - name: j", "    platform: bluesky", "    type: jetstream", "    keywords: [flood, '']"),
     [(6, "collection 'j': keywords must be a list of words or hashtags")]),
    ((PATHS, "x: {bearer_token: t}", "collections:", "  - {name: news, type: timeline, accounts: [a]}",
      "  - {name: b, platform: bluesky, type: timeline, accounts: [a.bsky.social]}",
      "  - name: j", "    platform: bluesky", "    type: jetstream", "    from_collections:",
      "      - news", "      - b", "      - nowhere", "      - j"),
     [(10, "collection 'j': from_collections names 'news', a x timeline collection; it takes bluesky timeline collections"),
      (12, "collection 'j': from_collections names 'nowhere', no collection of this file; it takes bluesky timeline collections"),
      (13, "collection 'j': from_collections names 'j', a bluesky jetstream collection; it takes bluesky timeline collections")]),
    ((PATHS, "x: {bearer_token: t}", "collections:", "  - name: n", "    type: timeline", "    accounts: [a]",
      "    keywords: [flood]", "    from_collections: [n]"),
     [(7, "collection 'n': only bluesky jetstream collections have keywords"),
      (8, "collection 'n': only bluesky jetstream collections have from_collections")]),
    ((PATHS, "collections:", "  - name: j", "    platform: bluesky", "    type: jetstream", "    keywords: [a]",
      "    accounts: [a.bsky.social]", "    schedule: every 1h", "    rules: [{value: x}]"),
     [(7, "collection 'j': only timeline collections have accounts"),
      (8, "collection 'j': streams run continuously and take no schedule"),
      (9, "collection 'j': only filter_stream collections have rules")]),
])
def test_platform_and_type_mistakes(lines, expected):
    assert problems(*lines) == expected


HANDLE_RULE = ("(a domain name like alice.bsky.social: dot-separated labels of a-z, 0-9 and '-', "
               "the last not a number, 253 characters at most)")
DID_RULE = "(did:plc: and 24 of a-z, 2-7, or did:web: and a host name)"


@pytest.mark.parametrize("entry, message", [
    ("alice", f"invalid handle 'alice' {HANDLE_RULE}"),
    ("alice.bsky.123", f"invalid handle 'alice.bsky.123' {HANDLE_RULE}"),
    ("-alice.bsky.social", f"invalid handle '-alice.bsky.social' {HANDLE_RULE}"),
    ("alice-.bsky.social", f"invalid handle 'alice-.bsky.social' {HANDLE_RULE}"),
    ("al_ice.bsky.social", f"invalid handle 'al_ice.bsky.social' {HANDLE_RULE}"),
    ("alice..social", f"invalid handle 'alice..social' {HANDLE_RULE}"),
    ("a" * 64 + ".social", f"invalid handle '{'a' * 64}.social' {HANDLE_RULE}"),
    (".".join(["a" * 63] * 4) + ".social", None),  # 263 characters, each label fine: too long
    ("did:plc:abcdefghijklmnopqrstuvw", f"invalid DID 'did:plc:abcdefghijklmnopqrstuvw' {DID_RULE}"),
    ("did:plc:abcdefghijklmnopqrstuvw1", f"invalid DID 'did:plc:abcdefghijklmnopqrstuvw1' {DID_RULE}"),
    ("did:plc:ABCDEFGHIJKLMNOPQRSTUVWX", f"invalid DID 'did:plc:ABCDEFGHIJKLMNOPQRSTUVWX' {DID_RULE}"),
    ("'did:web:'", f"invalid DID 'did:web:' {DID_RULE}"),
    ("did:key:z6Mkabc", f"invalid DID 'did:key:z6Mkabc' {DID_RULE}"),
    ("{handle: alice}", f"invalid handle 'alice' {HANDLE_RULE}"),
    ("{did: 'did:plc:x'}", f"invalid DID 'did:plc:x' {DID_RULE}"),
    ("{username: alice.bsky.social}",
     "unknown key 'username' in an account of 'b' (allowed: handle, did, active)"),
    ("{handle: a.bsky.social, active: maybe}", "'active': got 'maybe' (expected true or false)"),
    ("[a.bsky.social]", "an account is a handle, a DID or {handle: ..., did: ..., active: ...}"),
])
def test_handle_and_did_mistakes(entry, message):
    found = problems(PATHS, "collections:", "  - name: b", "    platform: bluesky", "    type: timeline", "    accounts:",
                     "      - ok.bsky.social", f"      - {entry}")
    assert [line for line, _ in found] == [8]
    text = found[0][1]
    if message is None:
        assert text.startswith("collection 'b': invalid handle") and text.endswith(HANDLE_RULE)
    else:
        assert text in (f"collection 'b': {message}", message), text


def test_valid_handles_and_dids():
    longest = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    entries = ["a.co", "xn--bcher-kva.example", "1password.com", "a-b.c-d.museum", longest, "did:web:localhost%3A8080",
               "did:web:sub.example.co.uk", "did:plc:" + "234567" * 4]
    config = load(PATHS, "collections:", "  - name: b", "    platform: bluesky", "    type: timeline", "    accounts:",
                  *[f"      - '{entry}'" for entry in entries])
    assert len(config.collection("b").accounts) == len(entries)
    # X usernames keep X's rule, and X collections do not take handles
    assert problems(PATHS, "x: {bearer_token: t}", "collections:", "  - {name: n, type: timeline, accounts: [alice.bsky.social]}") == [
        (4, "collection 'n': invalid username 'alice.bsky.social' (1-15 of A-Z, a-z, 0-9 and _)")]


def test_a_handle_listed_twice_is_reported():
    found = problems(PATHS, "collections:", "  - name: b", "    platform: bluesky", "    type: timeline",
                     "    accounts:", "      - alice.bsky.social", "      - Alice.Bsky.Social")
    assert found == [(8, "collection 'b': account username:alice.bsky.social is listed twice (first at line 7)")]


# -- the login ---------------------------------------------------------------------------------

BSKY = ("collections:", "  - {name: b, platform: bluesky, type: timeline, accounts: [a.bsky.social]}")


def test_app_password_from_the_environment_and_from_a_file(tmp_path):
    config = load(PATHS, "bluesky:", "  identifier: archive.example.edu", "  app_password: ${SFM_BLUESKY_APP_PASSWORD}", *BSKY,
                  environ={"SFM_BLUESKY_APP_PASSWORD": PASSWORD})
    assert (config.bluesky.identifier, config.bluesky.app_password) == ("archive.example.edu", PASSWORD)
    assert PASSWORD in config.secrets  # masked in log lines
    assert PASSWORD not in repr(config) and PASSWORD not in str(public_dict(config))
    assert public_dict(config)["bluesky"]["app_password"] == "(set)"
    secret = tmp_path / "bsky-app-password"
    secret.write_text(f"  {PASSWORD}\n")
    secret.chmod(0o600)
    from_file = load(PATHS, "bluesky:", "  identifier: archive.example.edu", f"  app_password_file: {secret}", *BSKY)
    assert from_file.bluesky.app_password == PASSWORD and from_file.bluesky.app_password_file == secret
    assert PASSWORD in from_file.secrets  # read from a file: in no YAML value, masked all the same
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "bsky-app-password").write_text("from-credentials")
    (credentials / "bsky-app-password").chmod(0o400)
    systemd = load(PATHS, "bluesky: {identifier: a.bsky.social, app_password_file: bsky-app-password}", *BSKY,
                   environ={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert systemd.bluesky.app_password == "from-credentials"


def test_login_mistakes(tmp_path):
    assert problems(PATHS, "bluesky:", "  identifier: a.bsky.social", *BSKY) == [
        (3, "bluesky.identifier needs bluesky.app_password or bluesky.app_password_file")]
    assert problems(PATHS, "bluesky:", f"  app_password: {PASSWORD}", *BSKY) == [
        (3, "a bluesky app password needs bluesky.identifier (the handle or DID that logs in)")]
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    assert problems(PATHS, "bluesky:", "  identifier: a.bsky.social", f"  app_password: {PASSWORD}",
                    f"  app_password_file: {secret}", *BSKY) == [(4, "give either app_password or app_password_file, not both")]
    assert problems(PATHS, "bluesky:", "  identifier: a.bsky.social", "  app_password_file: nowhere/pw", *BSKY) == [
        (4, f"bluesky.app_password_file: cannot read {SOURCE.parent}/nowhere/pw: No such file or directory")]
    assert problems(PATHS, "bluesky:", "  identifier: a.bsky.social", "  app_password: ${SFM_BSKY_PW}", *BSKY) == [
        (4, "environment variable SFM_BSKY_PW is not set (referenced as ${SFM_BSKY_PW})")]
    assert problems(PATHS, "bluesky:", "  appview_url: public.api.bsky.app", "  jetstream_url: https://jetstream.example/subscribe",
                    "  app_pasword: x", *BSKY) == [
        (3, "'appview_url': 'public.api.bsky.app' is not an http(s) URL (expected an http(s) URL)"),
        (4, "'jetstream_url': 'https://jetstream.example/subscribe' is not a ws(s) URL (expected a ws(s) URL)"),
        (5, "unknown key 'app_pasword' in bluesky; did you mean 'app_password'? "
            "(allowed: appview_url, jetstream_url, service_url, identifier, app_password, app_password_file)")]


def test_a_wrong_app_password_value_is_not_shown():
    found = problems(PATHS, "bluesky:", "  identifier: a.bsky.social", "  app_password: [secret-in-a-list]", *BSKY)
    assert found == [(4, "'app_password': not valid (the value is a secret: not shown) (expected text)")]


# -- redaction: the app password in every form the bearer token is tested in -----------------------


@pytest.mark.parametrize("form", [form for form in FORMS if "bearer_token:" in FORMS[form] or "bearer_token\"" in FORMS[form]
                                  or "'bearer_token'" in FORMS[form]])
def test_the_app_password_is_redacted_in_each_form(form):
    text = FORMS[form].replace("bearer_token", "app_password").replace("x:", "bluesky:").replace("x: {", "bluesky: {")
    assert "app_password" in text and TOKEN[:10] in text
    redacted = redact_text(text)
    assert redacted != WITHHELD
    assert TOKEN[:10] not in redacted and TOKEN[10:] not in redacted, redacted
    yaml.safe_load(redacted)
    assert len(redacted.splitlines()) == len(text.splitlines())


def test_the_app_password_becomes_its_variable_and_the_file_path_stays():
    text = f"bluesky:\n  identifier: a.bsky.social\n  app_password: {TOKEN}\n  app_password_file: /etc/sfm-archiver/bsky\n"
    assert yaml.safe_load(redact_text(text)) == {"bluesky": {
        "identifier": "a.bsky.social", "app_password": "${SFM_BLUESKY_APP_PASSWORD}", "app_password_file": "/etc/sfm-archiver/bsky"}}


# -- platform_of ---------------------------------------------------------------------------------


def test_platform_of_a_collection_a_name_and_a_name_in_a_configuration():
    config = load(*MIXED)
    assert platform_of("news") is X and platform_of("bsky-officials") is X  # a bare name: X, as before
    assert platform_of(config.collection("news")) is X and platform_of("news", config) is X
    assert platform_of("not-configured", config) is X
    for target in (config.collection("bsky-live"), "bsky-live"):
        try:
            platform = platform_of(target, config)
        except NotBuiltError as error:  # until the Bluesky platform is registered
            assert "platform 'bluesky' is not available" in str(error)
        else:
            assert platform.name == "bluesky"


# -- what operators see ----------------------------------------------------------------------------


def test_check_config_status_data_and_public_dict_show_the_platform(tmp_path):
    text = "\n".join(MIXED).replace("/tmp/a", str(tmp_path / "a")).replace("/tmp/s", str(tmp_path / "s")).replace("/tmp/o", str(tmp_path / "o"))
    path = write(tmp_path / "config.yaml", text + "\n")
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode == 0, result.stderr
    assert "collection news [timeline, x]: 1 accounts (1 active)" in result.stdout
    assert "collection bsky-officials [timeline, bluesky]: 5 accounts (4 active)" in result.stdout
    assert "collection bsky-live [jetstream, bluesky]: accounts of bsky-officials; keywords #climate, flood" in result.stdout
    assert "bluesky http://127.0.0.1:8000, jetstream ws://127.0.0.1:8001/subscribe (login none: public AppView)" in result.stdout
    config = load(*MIXED)
    public = public_dict(config)
    assert [(c["name"], c["platform"]) for c in public["collections"]] == [
        ("news", "x"), ("bsky-officials", "bluesky"), ("bsky-live", "bluesky"), ("climate", "x")]
    assert public["collections"][1]["accounts"][4] == {"handle": "carol.bsky.social", "did": "did:web:carol.example", "active": True}
    assert public["collections"][2]["from_collections"] == ["bsky-officials"]
    from sfm_archiver.status import view_from_record, view_of, view_record

    record = view_record(config, path.stat())
    assert [c["platform"] for c in record["collections"]] == ["x", "bluesky", "bluesky", "x"]
    assert [c.platform for c in view_from_record(record).collections] == ["x", "bluesky", "bluesky", "x"]
    for old in record["collections"]:
        del old["platform"]  # stored by a daemon of an earlier version: its collections are X's
    assert {c.platform for c in view_from_record(record).collections} == {"x"}
    assert view_of(config).collections[2].type == "jetstream"


def test_the_example_bluesky_collections_are_valid_once_uncommented(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8")
    start = text.index("  # - name: bsky-officials")
    end = text.index("\n\n", start)
    block = "\n".join(re.sub(r"^  # ", "  ", line) for line in text[start:end].splitlines())
    config = load_config_text(text[:start] + block + text[end:], SOURCE, environ={"SFM_X_BEARER_TOKEN": "t"}, check_paths=False)
    assert [(c.name, c.platform, c.type) for c in config.collections][-2:] == [
        ("bsky-officials", "bluesky", "timeline"), ("bsky-live", "bluesky", "jetstream")]
    assert config.collection("bsky-live").from_collections == ("bsky-officials",)
