"""Configuration: typed loading, file:line problems, secrets, ${VAR}, resolution order, check-config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from sfm_archiver.config import (
    _SECTION_KEYS,
    DEFAULT_CONFIG_PATH,
    load_config,
    parse_schedule,
    public_dict,
    resolve_config_path,
)
from sfm_archiver.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config.example.yaml"
TOKEN = "tok-AAAA1234secret"


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real entry point in a child process, with an environment free of our variables."""
    clean = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "CREDENTIALS_DIRECTORY", "SFM_X_BEARER_TOKEN")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sfm_archiver", *args], capture_output=True, text=True, env=clean, cwd=cwd, timeout=60
    )


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def base_config(tmp_path: Path, extra: str = "", x: str = f"x: {{bearer_token: {TOKEN}}}\n") -> str:
    return (
        f"paths: {{archive: {tmp_path}/archive, state: {tmp_path}/state, outbox: {tmp_path}/outbox}}\n"
        + x
        + textwrap.dedent(extra).lstrip("\n")
    )


def problems_of(path: Path, environ: dict | None = None, check_paths: bool = True) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ or {}, check_paths=check_paths)
    return caught.value.problems


def lines_of(problems: list[str], path: Path) -> list[int]:
    return [int(re.match(rf"^{re.escape(str(path))}:(\d+): ", p).group(1)) for p in problems]


# -- the must-show: five mistakes, five file:line messages, one run, exit 2 ---------------------


def test_five_mistakes_give_five_file_line_messages_and_exit_2(tmp_path):
    config = write(
        tmp_path / "config.yaml",
        f"""
        paths: {{archive: {tmp_path}/a, state: {tmp_path}/s, outbox: {tmp_path}/o}}
        x:
          bearer_token: {TOKEN}
          workers: many
        collections:
          - name: news
            type: timeline
            schedule: "61 * * * *"
            accounts: [gwtweets, not-a-name]
          - name: news
            type: sample_stream
        bagging:
          perod: day
        """,
    )
    result = run_cli("--config", str(config), "check-config")
    assert result.returncode == 2, result
    reported = [line for line in result.stderr.splitlines() if line.startswith(f"{config}:")]
    assert len(reported) == 5, result.stderr
    assert lines_of(reported, config) == [4, 8, 9, 10, 13]
    expectations = ["'workers'", "invalid crontab", "invalid username 'not-a-name'", "duplicate collection name 'news'", "did you mean 'period'"]
    for line, expected in zip(reported, expectations, strict=True):
        assert expected in line
    assert "5 configuration problem(s)" in result.stderr
    assert result.stdout == ""


# -- YAML syntax ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("paths:\n  archive: /a\n state: /b\n", 3, "expected <block end>"),
        ('paths:\n  archive: "/a\nx: {}\n', 2, "quoted scalar"),
        ("paths:\n\tarchive: /a\n", 2, "'\\t'"),
        ("a: 1\ncollections:\n  - name: x\n    type: [timeline\n", 4, "flow sequence"),
    ],
    ids=["bad-indent", "unclosed-quote", "tab", "unclosed-bracket"],
)
def test_yaml_syntax_errors_name_the_line(tmp_path, text, line, hint):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    problems = problems_of(config)
    assert len(problems) == 1
    assert problems[0].startswith(f"{config}:{line}: YAML syntax error")
    assert hint in problems[0]


def test_yaml_syntax_error_through_cli_exits_2(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("paths: [\n")
    result = run_cli("check-config", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}:1: YAML syntax error" in result.stderr


def test_duplicate_yaml_keys_are_reported(tmp_path):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, "log_level: INFO\nlog_level: DEBUG\n"))
    assert problems_of(config) == [f"{config}:4: duplicate key 'log_level' (first at line 3)"]


def test_document_must_be_a_mapping(tmp_path):
    config = write(tmp_path / "c.yaml", "- just\n- a list\n")
    assert "must be a mapping of sections" in problems_of(config)[0]


# -- unknown keys and types ----------------------------------------------------------------------


def test_unknown_keys_everywhere_with_did_you_mean(tmp_path):
    config = write(
        tmp_path / "c.yaml",
        base_config(
            tmp_path,
            """
            colections: []
            storage: {compresslvl: 6}
            collections:
              - name: c1
                type: timeline
                acounts: [a]
                accounts: [{usrname: b}]
            """,
        ),
    )
    problems = problems_of(config)
    assert lines_of(problems, config) == [3, 4, 8, 9]
    assert "unknown key 'colections' in the top level; did you mean 'collections'?" in problems[0]
    assert "did you mean 'compresslevel'?" in problems[1]
    assert "did you mean 'accounts'?" in problems[2]
    assert "did you mean 'username'?" in problems[3]
    assert "(allowed: " in problems[0]


def test_unknown_key_without_close_match_lists_what_is_allowed(tmp_path):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, "zzzz: 1\n"))
    (problem,) = problems_of(config)
    assert "did you mean" not in problem
    assert "allowed: organization, paths, x, bluesky, collections" in problem


@pytest.mark.parametrize(
    ("snippet", "fragment"),
    [
        ("storage: {compresslevel: high}\n", "'compresslevel': got 'high' (expected a whole number 1-9)"),
        ("storage: {compresslevel: 12}\n", "'compresslevel': 12 is out of range"),
        ("bagging: {ready_marker: 'yes'}\n", "'ready_marker': got 'yes' (expected true or false)"),
        ("bagging: {period: week}\n", "'period': 'week' is not allowed (expected hour, day or month)"),
        ("bagging: {checksums: [sha256, crc32]}\n", "unsupported algorithm(s) ['crc32']"),
        ("bagging: {grace: soon}\n", "not a duration"),
        ("storage: {rotation: 7m}\n", "does not divide an hour"),
        ("disk: {min_free: lots}\n", "not a size"),
        ("disk: {warning_free: 1GB, min_free: 2GB}\n", "min_free must not be larger"),
        ("organization: {contact_email: nobody}\n", "is not an e-mail address"),
        ("bagging: []\n", "'bagging' must be a mapping, not a list"),
        ("log_level: LOUD\n", "expected DEBUG, INFO, WARNING or ERROR"),
        ("collections: {name: x}\n", "'collections' must be a list of collections"),
    ],
)
def test_wrong_types_and_values(tmp_path, snippet, fragment):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, snippet))
    (problem,) = problems_of(config)
    assert problem.startswith(f"{config}:3: ")
    assert fragment in problem


def test_x_settings_types(tmp_path):
    config = write(
        tmp_path / "c.yaml",
        base_config(tmp_path, x=f"x:\n  bearer_token: {TOKEN}\n  workers: 0\n  api_base_url: ftp://example.org\n"),
    )
    problems = problems_of(config)
    assert lines_of(problems, config) == [4, 5]
    assert "'workers': 0 is out of range" in problems[0]
    assert "not an http(s) URL" in problems[1]


def test_defaults_and_types_of_a_minimal_config(tmp_path):
    config = load_config(write(tmp_path / "c.yaml", base_config(tmp_path, "collections:\n  - {name: t, type: timeline, accounts: [a]}\n")), environ={})
    assert config.paths.archive == tmp_path / "archive"
    assert config.storage.rotation == timedelta(hours=1)
    assert config.bagging.period == "day" and config.bagging.checksums == ("sha256", "sha512")
    assert config.bagging.profile_identifier is None
    assert config.jobs.bag.text == "20 * * * *"
    (collection,) = config.collections
    assert collection.schedule.text == "0 */6 * * *" and collection.backfill == 3200 and collection.warc is True
    assert config.x.api_base_url == "https://api.twitter.com"


def test_null_means_the_default(tmp_path):
    config = load_config(write(tmp_path / "c.yaml", base_config(tmp_path, "bagging: {profile_identifier: null, period: null}\n")), environ={})
    assert config.bagging.profile_identifier is None
    assert config.bagging.period == "day"


# -- collections -----------------------------------------------------------------------------------


def test_duplicate_and_invalid_collection_names(tmp_path):
    config = write(
        tmp_path / "c.yaml",
        base_config(
            tmp_path,
            """
            collections:
              - {name: news, type: sample_stream}
              - {name: news, type: sample_stream}
              - {name: News, type: sample_stream}
              - {name: ../up, type: sample_stream}
              - {name: ok, type: timelime}
              - {type: sample_stream}
            """,
        ),
    )
    problems = problems_of(config)
    assert lines_of(problems, config) == [5, 6, 7, 8, 9]
    assert "duplicate collection name 'news' (first at line 4)" in problems[0]
    assert "collection name 'News' is invalid" in problems[1]
    assert "collection name '../up' is invalid" in problems[2]
    assert "did you mean 'timeline'?" in problems[3]
    assert "collection name None is invalid" in problems[4]


def test_collection_kinds_reject_keys_of_other_kinds(tmp_path):
    config = write(
        tmp_path / "c.yaml",
        base_config(
            tmp_path,
            """
            collections:
              - {name: s, type: sample_stream, schedule: every 1h}
              - {name: f, type: filter_stream}
              - {name: t, type: timeline, rules: [{value: x}]}
            """,
        ),
    )
    problems = problems_of(config)
    assert "streams run continuously and take no schedule" in problems[0]
    assert "a filter_stream needs a list of rules" in problems[1]
    assert "only filter_stream collections have rules" in problems[2]


def test_rules(tmp_path):
    config = write(
        tmp_path / "c.yaml",
        base_config(
            tmp_path,
            """
            collections:
              - name: f
                type: filter_stream
                rules:
                  - {value: "climate lang:en", tag: climate}
                  - "plain rule"
                  - {value: "", tag: empty}
                  - {value: x, tag: "a:b"}
            """,
        ),
    )
    problems = problems_of(config)
    assert lines_of(problems, config) == [9, 10]
    assert "non-empty value" in problems[0] and "may not contain ':'" in problems[1]


@pytest.mark.parametrize(
    ("schedule", "fragment"),
    [
        ('"61 * * * *"', "invalid crontab '61 * * * *'"),
        ('"* * *"', "crontab line of five fields"),
        ('"0 3 * * mon-funday"', "invalid crontab"),
        ('"0 3 * * 8"', "day of week '8' is not one of 0-7 (0 and 7: Sunday) or sun-sat"),
        ('"0 3 * * 5-1"', "day-of-week range '5-1' runs backwards"),
        ('"0 3 * * */0"', "day-of-week step '0' must be a whole number of at least 1"),
        ("every 5x", "write 'every <number><s|m|h|d>'"),
        ("every", "write 'every <number><s|m|h|d>'"),
        ("every 0s", "must be longer than zero"),
        ("every -5m", "write 'every <number><s|m|h|d>'"),
    ],
)
def test_invalid_schedules(tmp_path, schedule, fragment):
    config = write(
        tmp_path / "c.yaml",
        base_config(tmp_path, f"collections:\n  - name: t\n    type: timeline\n    schedule: {schedule}\n    accounts: [a]\n"),
    )
    (problem,) = problems_of(config)
    assert problem.startswith(f"{config}:6: 'schedule': ")
    assert fragment in problem


def test_invalid_job_schedule_and_off(tmp_path):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, 'jobs: {fetch_urls: off, bag: "every 1.5h", update_usernames: "every x"}\n'))
    (problem,) = problems_of(config)
    assert problem.startswith(f"{config}:3: 'update_usernames': invalid schedule")
    config = write(tmp_path / "c.yaml", base_config(tmp_path, 'jobs: {fetch_urls: off, bag: "every 1.5h"}\n'))
    jobs = load_config(config, environ={}).jobs
    assert jobs.fetch_urls is None
    assert jobs.bag.interval == timedelta(minutes=90)


def test_valid_schedules_build_triggers():
    assert parse_schedule("every 30s").interval == timedelta(seconds=30)
    assert parse_schedule("every 6h").trigger().interval == timedelta(hours=6)
    cron = parse_schedule("*/5 * * * *")
    assert not cron.is_interval
    assert "*/5" in str(cron.trigger())


def test_usernames_and_ids(tmp_path):
    config = write(
        tmp_path / "c.yaml",
        base_config(
            tmp_path,
            """
            collections:
              - name: t
                type: timeline
                accounts:
                  - "@gwtweets"
                  - bad-name
                  - averyveryverylongname
                  - {username: "has space"}
                  - {id: "12ab"}
                  - {id: 14615871}
                  - {active: false}
                  - GWTweets
                  - [nested]
            """,
        ),
    )
    problems = problems_of(config)
    assert lines_of(problems, config) == [8, 9, 10, 11, 13, 14, 15]
    assert "invalid username 'bad-name' (1-15 of A-Z, a-z, 0-9 and _)" in problems[0]
    assert "invalid username 'averyveryverylongname'" in problems[1]
    assert "invalid username 'has space'" in problems[2]
    assert "invalid account id '12ab'" in problems[3]
    assert "needs a username or an id" in problems[4]
    assert "account username:gwtweets is listed twice (first at line 7)" in problems[5]
    assert "an account is a username or" in problems[6]


def test_accounts_are_typed(tmp_path):
    config = load_config(
        write(
            tmp_path / "c.yaml",
            base_config(tmp_path, 'collections:\n  - {name: t, type: timeline, accounts: ["@gw_1", {username: b, active: false}, {id: "42"}]}\n'),
        ),
        environ={},
    )
    accounts = config.collection("t").accounts
    assert [(a.username, a.id, a.active) for a in accounts] == [("gw_1", None, True), ("b", None, False), (None, "42", True)]
    assert [a.key for a in accounts] == ["username:gw_1", "username:b", "id:42"]


# -- credentials -------------------------------------------------------------------------------------

TIMELINE = "collections:\n  - {name: t, type: timeline, accounts: [a]}\n"


def test_missing_credentials_without_x_section(tmp_path):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x=""))
    (problem,) = problems_of(config)
    assert "missing credentials: set x.bearer_token (e.g. ${SFM_X_BEARER_TOKEN}) or x.bearer_token_file" in problem


def test_missing_credentials_with_empty_token(tmp_path):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x='x:\n  bearer_token: ""\n'))
    assert problems_of(config) == [f"{config}:3: missing credentials: set x.bearer_token (e.g. ${{SFM_X_BEARER_TOKEN}}) or x.bearer_token_file"]


def test_no_credentials_needed_without_collections(tmp_path):
    config = load_config(write(tmp_path / "c.yaml", base_config(tmp_path, x="")), environ={})
    assert config.x.bearer_token == ""


def test_unset_variable_is_one_problem_at_its_line(tmp_path):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x="x:\n  bearer_token: ${SFM_X_BEARER_TOKEN}\n"))
    assert problems_of(config) == [f"{config}:3: environment variable SFM_X_BEARER_TOKEN is not set (referenced as ${{SFM_X_BEARER_TOKEN}})"]


def test_token_file_and_token_together_is_an_error(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    secret.chmod(0o600)
    config = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x=f"x:\n  bearer_token: {TOKEN}\n  bearer_token_file: {secret}\n"))
    assert "give either bearer_token or bearer_token_file, not both" in problems_of(config)[0]


def test_unreadable_and_empty_token_files(tmp_path):
    config = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x="x:\n  bearer_token_file: nowhere/token\n"))
    (problem,) = problems_of(config)
    assert problem.startswith(f"{config}:3: x.bearer_token_file: cannot read {tmp_path}/nowhere/token")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    empty.chmod(0o600)
    config = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x=f"x:\n  bearer_token_file: {empty}\n"))
    assert problems_of(config) == [f"{config}:3: x.bearer_token_file: {empty} is empty"]


def test_token_file_relative_to_the_config_folder(tmp_path):
    (tmp_path / "token").write_text(f"  {TOKEN}\n")
    (tmp_path / "token").chmod(0o600)
    config = load_config(write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x="x: {bearer_token_file: token}\n")), environ={})
    assert config.x.bearer_token == TOKEN
    assert config.x.bearer_token_file == tmp_path.resolve() / "token"
    assert config.warnings == ()


def test_token_file_relative_to_credentials_directory(tmp_path):
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "x-bearer-token").write_text(TOKEN)
    (credentials / "x-bearer-token").chmod(0o400)
    (tmp_path / "x-bearer-token").write_text("the-wrong-one")
    environ = {"CREDENTIALS_DIRECTORY": str(credentials)}
    relative = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x="x: {bearer_token_file: x-bearer-token}\n"))
    assert load_config(relative, environ=environ).x.bearer_token == TOKEN
    # An absolute path that does not exist on disk is looked up by name among the credentials.
    absolute = write(tmp_path / "d.yaml", base_config(tmp_path, TIMELINE, x="x: {bearer_token_file: /etc/sfm-archiver/x-bearer-token}\n"))
    loaded = load_config(absolute, environ=environ)
    assert loaded.x.bearer_token == TOKEN
    assert loaded.x.bearer_token_file == credentials / "x-bearer-token"


def test_group_readable_secret_file_is_a_warning(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN)
    secret.chmod(0o640)
    config_path = write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE, x=f"x:\n  bearer_token_file: {secret}\n"))
    config = load_config(config_path, environ={})
    assert config.warnings == (f"{config_path}:3: warning: secret file {secret} is readable by group or others (chmod 600 it)",)
    result = run_cli("check-config", "--config", str(config_path))
    assert result.returncode == 0, result.stderr
    assert f"{config_path}:3: warning: secret file {secret} is readable by group or others" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    secret.chmod(0o600)
    assert load_config(config_path, environ={}).warnings == ()


def test_secrets_stay_out_of_repr_and_public_dict(tmp_path):
    config = load_config(write(tmp_path / "c.yaml", base_config(tmp_path, TIMELINE)), environ={})
    assert config.x.bearer_token == TOKEN
    assert TOKEN not in repr(config)
    assert TOKEN not in str(public_dict(config))
    assert public_dict(config)["x"]["bearer_token"] == "(set)"


# -- ${VAR} --------------------------------------------------------------------------------------------


def test_environment_expansion(tmp_path):
    config = write(
        tmp_path / "c.yaml",
        """
        paths:
          archive: ${ROOT}/archive
          state: ${STATE_DIR:-/unused/default}
          outbox: ${OUTBOX:-OUTBOX_DEFAULT}
        x: {bearer_token: "${TOKEN_A}-${TOKEN_B}"}
        organization: {name: "${ORG:-Example Archive}"}
        """,
    )
    root = tmp_path / "root"
    loaded = load_config(config, environ={"ROOT": str(root), "STATE_DIR": str(tmp_path / "st"), "TOKEN_A": "a1", "TOKEN_B": "b2"}, check_paths=False)
    assert loaded.paths.archive == root / "archive"
    assert loaded.paths.state == tmp_path / "st"
    assert loaded.paths.outbox == tmp_path / "OUTBOX_DEFAULT"
    assert loaded.x.bearer_token == "a1-b2"
    assert loaded.organization.name == "Example Archive"
    problems = problems_of(config, environ={"STATE_DIR": "/s"}, check_paths=False)
    assert lines_of(problems, config) == [2, 5, 5]
    assert "environment variable ROOT is not set" in problems[0]


def test_environment_is_read_from_the_process_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("SFM_TEST_ARCHIVE", str(tmp_path / "from-env"))
    config = write(tmp_path / "c.yaml", base_config(tmp_path).replace(f"{tmp_path}/archive", '"${SFM_TEST_ARCHIVE}"'))
    assert load_config(config).paths.archive == tmp_path / "from-env"


# -- paths -----------------------------------------------------------------------------------------------


def test_paths_that_cannot_be_used(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = write(
        tmp_path / "c.yaml",
        f"""
        paths:
          archive: {blocker}
          state: {blocker}/state
          outbox: {tmp_path}/does/not/exist/yet
        """,
    )
    problems = problems_of(config)
    assert problems == [
        f"{config}:2: paths.archive: {blocker} is not a folder",
        f"{config}:3: paths.state: {blocker}/state does not exist and cannot be created ({blocker} is not writable)",
    ]


def test_missing_paths(tmp_path):
    config = write(tmp_path / "c.yaml", "organization: {name: x}\n")
    assert problems_of(config) == [f"{config}:1: missing section 'paths:'"]
    config = write(tmp_path / "c.yaml", f"paths:\n  archive: {tmp_path}/a\n")
    assert problems_of(config) == [f"{config}:2: missing 'paths.state' (a folder path)", f"{config}:2: missing 'paths.outbox' (a folder path)"]


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    write(tmp_path / "c.yaml", "paths: {archive: data/archive, state: data/state, outbox: data/outbox}\n")
    config = load_config(tmp_path / "c.yaml", environ={})
    assert config.paths.archive == tmp_path.resolve() / "data" / "archive"


def test_unreadable_config_file(tmp_path):
    (problem,) = problems_of(tmp_path / "missing.yaml")
    assert "cannot read the configuration: No such file or directory" in problem
    assert "--config" in problem


# -- resolution order and the command line -----------------------------------------------------------------


def test_resolution_order():
    assert resolve_config_path("/x.yaml", {"SFM_ARCHIVER_CONFIG": "/env.yaml"}) == Path("/x.yaml")
    assert resolve_config_path(None, {"SFM_ARCHIVER_CONFIG": "/env.yaml"}) == Path("/env.yaml")
    assert resolve_config_path(None, {}) == DEFAULT_CONFIG_PATH == Path("/etc/sfm-archiver/config.yaml")


def test_resolution_order_through_the_cli(tmp_path):
    good = write(tmp_path / "good.yaml", base_config(tmp_path))
    bad = write(tmp_path / "bad.yaml", "log_level: LOUD\n")
    from_env = run_cli("check-config", env={"SFM_ARCHIVER_CONFIG": str(good)})
    assert from_env.returncode == 0, from_env.stderr
    assert f"configuration {good}: valid" in from_env.stdout
    explicit = run_cli("check-config", "--config", str(bad), env={"SFM_ARCHIVER_CONFIG": str(good)})
    assert explicit.returncode == 2
    assert str(bad) in explicit.stderr
    default = run_cli("check-config")
    assert str(DEFAULT_CONFIG_PATH) in default.stdout + default.stderr
    if not DEFAULT_CONFIG_PATH.exists():
        assert default.returncode == 2
        assert f"{DEFAULT_CONFIG_PATH}: cannot read the configuration" in default.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_config_option_before_and_after_the_command(tmp_path, where):
    config = write(tmp_path / "c.yaml", base_config(tmp_path))
    args = ["--config", str(config), "check-config"] if where == "before" else ["check-config", "--config", str(config)]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"configuration {config}: valid" in result.stdout


def test_config_after_the_command_wins(tmp_path):
    good = write(tmp_path / "good.yaml", base_config(tmp_path))
    bad = write(tmp_path / "bad.yaml", "log_level: LOUD\n")
    result = run_cli("--config", str(bad), "check-config", "--config", str(good))
    assert result.returncode == 0, result.stderr


# -- the example configuration ------------------------------------------------------------------------------


def example_in(tmp_path: Path) -> Path:
    """config.example.yaml with its /var/lib paths moved under tmp_path."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("/var/lib/sfm-archiver", str(tmp_path / "var"))
    return write(tmp_path / "config.yaml", text)


def test_check_config_accepts_the_example(tmp_path):
    config = example_in(tmp_path)
    result = run_cli("check-config", "--config", str(config), env={"SFM_X_BEARER_TOKEN": TOKEN})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert TOKEN not in result.stdout
    assert f"configuration {config}: valid" in result.stdout
    assert "token set" in result.stdout
    assert "collection gw-official [timeline, x]: 3 accounts (2 active), schedule 0 */6 * * *" in result.stdout
    assert "collection climate [filter_stream, x]: 2 rules" in result.stdout
    assert "collection sample [sample_stream, x]" in result.stdout
    assert not (tmp_path / "var").exists(), "check-config must not create folders"


def test_the_example_as_shipped(tmp_path):
    """Unmodified: valid where /var/lib is writable (root, the service's usual installer)."""
    result = run_cli("check-config", "--config", str(EXAMPLE), env={"SFM_X_BEARER_TOKEN": TOKEN})
    if os.access("/var/lib", os.W_OK):
        assert result.returncode == 0, result.stderr
        assert "/var/lib/sfm-archiver/archive" in result.stdout
    else:  # pragma: no cover - non-root
        assert result.returncode == 2 and "paths.archive" in result.stderr
    loaded = load_config(EXAMPLE, environ={"SFM_X_BEARER_TOKEN": TOKEN}, check_paths=False)
    assert [c.name for c in loaded.collections] == ["gw-official", "climate", "sample"]
    timeline = loaded.collection("gw-official")
    assert [(a.username, a.id, a.active) for a in timeline.accounts] == [
        ("gwtweets", None, True),
        ("gwtoday", None, False),
        (None, "14615871", True),
    ]
    assert loaded.collection("climate").rules[0].value == "climate change lang:en"
    assert loaded.paths.state == Path("/var/lib/sfm-archiver/state")


def test_the_example_without_a_token_names_the_variable(tmp_path):
    result = run_cli("check-config", "--config", str(example_in(tmp_path)))
    assert result.returncode == 2
    assert "environment variable SFM_X_BEARER_TOKEN is not set" in result.stderr


def test_the_example_documents_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    missing = [
        f"{section}.{key}"
        for section, keys in _SECTION_KEYS.items()
        for key in keys
        if not re.search(rf"^\s*(#\s*)?(- )?\{{?{re.escape(key)}:|[{{,]\s*{re.escape(key)}:", text, re.MULTILINE)
    ]
    assert missing == []
    assert "bearer_token: ${SFM_X_BEARER_TOKEN}" in text
    assert "CREDENTIALS_DIRECTORY" in text and "LoadCredential" in text


def test_catch_up_globally_per_job_and_per_collection(tmp_path):
    def catch_ups(jobs: str, collection: str = "") -> tuple:
        path = write(tmp_path / "config.yaml", base_config(tmp_path, f"""
            collections:
              - {{name: news, type: timeline, accounts: [a]{collection}}}
              - {{name: other, type: timeline, accounts: [b]}}
            {jobs}
            """))
        config = load_config(path, environ={})
        jobs_ = config.jobs
        return (jobs_.catch_up_of("timeline", config.collection("news")), jobs_.catch_up_of("timeline", config.collection("other")),
                jobs_.catch_up_of("update_usernames"), jobs_.catch_up_of("bag"))

    assert catch_ups("") == (True, True, True, True)  # default: a missed time runs once at start
    assert catch_ups("jobs: {catch_up: false}") == (False, False, False, False)
    assert catch_ups("jobs: {catch_up: {default: false, bag: true}}") == (False, False, False, True)
    assert catch_ups("jobs: {catch_up: {update_usernames: false}}", ", catch_up: false") == (False, True, False, True)
    assert catch_ups("jobs: {catch_up: false}", ", catch_up: true") == (True, False, False, False)


def test_catch_up_mistakes_name_their_line(tmp_path):
    path = write(tmp_path / "config.yaml", base_config(tmp_path, """
        collections:
          - {name: news, type: timeline, accounts: [a], catch_up: sometimes}
          - {name: live, type: sample_stream, catch_up: true}
        jobs:
          catch_up:
            bags: false
            fetch_urls: "no"
        """))
    problems = problems_of(path)
    assert lines_of(problems, path) == [4, 5, 8, 9]
    assert "'catch_up'" in problems[0] and "true or false" in problems[0]
    assert "only timeline collections" in problems[1]
    assert "unknown job 'bags' in jobs.catch_up" in problems[2] and "bag" in problems[2]
    assert "jobs.catch_up.fetch_urls: expected true or false" in problems[3]
    path = write(tmp_path / "config.yaml", base_config(tmp_path, "jobs: {catch_up: [bag]}\n"))
    assert lines_of(problems_of(path), path) == [3] and "jobs.catch_up must be true, false or a mapping" in problems_of(path)[0]
