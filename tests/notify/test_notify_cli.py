"""`sfm-archiver notify --test` and `--digest` as an operator runs them; target URLs never printed with credentials."""

from __future__ import annotations

from sfm_archiver.notify.settings import redact_url
from tests import operator
from tests.notify.receivers import Blackhole, WebhookReceiver, free_port

SECRET = "pa55-w0rd-9d1c"


def write(tmp_path, targets: list[str]) -> str:
    lines = [f"paths: {{archive: {tmp_path}/a, state: {tmp_path}/s, outbox: {tmp_path}/o}}",
             "notify:", "  targets:"] + [f"    - {url!r}" for url in targets]
    path = tmp_path / "config.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_notify_test_reports_each_target_and_fails_if_one_failed(tmp_path):
    hook, dead = WebhookReceiver(), free_port()
    try:
        config = write(tmp_path, [hook.url, f"json://user:{SECRET}@127.0.0.1:{dead}/x?token={SECRET}"])
        result = operator.cli("--config", config, "notify", "--test")
        assert result.returncode == 1, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 2 and lines[0].endswith(": sent") and "FAILED" in lines[1]
        assert SECRET not in result.stdout + result.stderr
        assert len(hook.bodies) == 1 and "test message" in hook.texts()[0]
    finally:
        hook.stop()


def test_notify_test_with_every_target_up_exits_0(tmp_path):
    hook = WebhookReceiver()
    try:
        result = operator.cli("--config", write(tmp_path, [hook.url]), "notify", "--test")
        assert result.returncode == 0 and result.stdout.strip().endswith("sent"), result.stdout + result.stderr
    finally:
        hook.stop()


def test_notify_without_targets_is_a_usage_error(tmp_path):
    (tmp_path / "config.yaml").write_text(f"paths: {{archive: {tmp_path}/a, state: {tmp_path}/s, outbox: {tmp_path}/o}}\n")
    result = operator.cli("--config", str(tmp_path / "config.yaml"), "notify", "--test")
    assert result.returncode == 2 and "no targets" in result.stderr


def test_notify_digest_prints_the_comparisons(tmp_path):
    result = operator.cli("--config", write(tmp_path, []), "notify", "--digest")
    assert result.returncode == 0, result.stderr
    assert "yesterday / day before" in result.stdout and "7 days / previous 7" in result.stdout


def test_an_invalid_target_is_a_config_error_without_its_secret(tmp_path):
    result = operator.cli("--config", write(tmp_path, [f"not a url {SECRET}@host"]), "check-config")
    assert result.returncode == 2 and "notify" not in result.stdout
    assert SECRET not in result.stderr


def test_redact_url_drops_userinfo_query_and_path():
    assert redact_url(f"mailtos://user:{SECRET}@smtp.example.edu:465/?to=a@b&pass={SECRET}") == "mailtos://smtp.example.edu:465"
    assert redact_url(f"slack://T1/B2/{SECRET}") == "slack://T1/…"
    assert SECRET not in redact_url(f"ntfy://{SECRET}@ntfy.sh/topic")


def test_a_hung_target_does_not_hang_notify_test_forever(tmp_path):
    hole = Blackhole()
    try:
        result = operator.cli("--config", write(tmp_path, [f"json://127.0.0.1:{hole.port}/x"]), "notify", "--test", timeout=120)
        assert result.returncode == 1 and "FAILED" in result.stdout
    finally:
        hole.stop()


def test_check_config_names_the_targets_without_credentials(tmp_path):
    result = operator.cli("--config", write(tmp_path, [f"mailtos://archives:{SECRET}@smtp.example.edu?to=a@example.edu"]), "check-config")
    assert result.returncode == 0, result.stderr
    assert "notify  mailtos://smtp.example.edu; digest weekly at 07:00 UTC" in result.stdout
    assert SECRET not in result.stdout + result.stderr
