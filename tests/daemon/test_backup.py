"""`backup DEST`: a consistent snapshot while another process writes, and the documented restore."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading

import pytest
import yaml

from sfm_archiver.backup import list_backups
from sfm_archiver.config import load_config
from sfm_archiver.ledger import Ledger
from sfm_archiver.state import StateStore
from tests.daemon.helpers import TOKEN, cli, write_config


def _populated(tmp_path):
    config_path = write_config(tmp_path / "config.yaml", tmp_path, "http://127.0.0.1:9", [
        {"name": "news", "type": "timeline", "schedule": "every 1h", "accounts": ["sfm_alpha"]},
    ])
    config = load_config(config_path)
    store = StateStore(config.paths.state)
    ledger = Ledger(config.paths.state)
    store.upsert_account("100001", username="sfm_alpha")
    for n in range(5):
        ledger.append(account_id="100001", event="renamed", observed_by={"job": "test", "run": str(n)},
                      from_=f"old{n}", to=f"new{n}")
    return config_path, config, store, ledger


def test_backup_while_writing_then_restore(tmp_path):
    config_path, config, store, ledger = _populated(tmp_path)
    stop = threading.Event()
    written = []

    def keep_writing():
        writer = StateStore(config.paths.state)
        while not stop.is_set():
            written.append(writer.record_skipped_run("user_timeline", "news", "busy"))
            ledger.append(account_id="100001", event="renamed", observed_by="writer", from_="a", to="b")
        writer.close()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        result = cli("--config", str(config_path), "backup", str(tmp_path / "backups"))
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    folder = list_backups(tmp_path / "backups")[0]
    assert result.stdout.strip() == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        "backup.json", "config.public.json", "config.yaml", "ledger.head", "ledger.jsonl", "state.sqlite3",
    ]
    assert TOKEN not in (folder / "config.yaml").read_text()
    assert "${SFM_X_BEARER_TOKEN}" in (folder / "config.yaml").read_text()
    manifest = json.loads((folder / "backup.json").read_text())
    assert manifest["schema_version"] == store.schema_version()
    snapshot = sqlite3.connect(folder / "state.sqlite3")
    assert snapshot.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    backed_up_runs = snapshot.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    snapshot.close()
    assert 0 < backed_up_runs <= len(written)

    # Restore as docs/operators-guide.md says: stop the daemon, copy the three files into the state folder.
    restored_state = tmp_path / "restored-state"
    restored_state.mkdir()
    for name in ("state.sqlite3", "ledger.jsonl", "ledger.head"):
        shutil.copy2(folder / name, restored_state / name)
    report = Ledger(restored_state).verify()
    assert report.ok, report.problems
    assert report.lines == manifest["ledger"]["lines"] >= 5
    restored = StateStore(restored_state)
    assert restored.account("100001")["username"] == "sfm_alpha"
    assert len(restored.runs(collection="news")) == backed_up_runs
    # the restored ledger keeps growing on a valid chain
    Ledger(restored_state).append(account_id="100001", event="suspended", observed_by="test")
    assert Ledger(restored_state).verify().ok


def test_backup_without_state_fails_clearly(tmp_path):
    config_path = write_config(tmp_path / "config.yaml", tmp_path, "http://127.0.0.1:9", [])
    result = cli("--config", str(config_path), "backup", str(tmp_path / "backups"))
    assert result.returncode == 1
    assert "no state database" in result.stderr


LEAKED_ON_MAIN = {  # the three forms the regular expression of old missed (issue 12, finding 3)
    "block scalar": "x:\n  api_base_url: http://127.0.0.1:9\n  bearer_token: >-\n    {token}\n",
    "quoted key": 'x:\n  api_base_url: http://127.0.0.1:9\n  "bearer_token": {token}\n',
    "flow mapping": "x: {{api_base_url: 'http://127.0.0.1:9', bearer_token: {token}}}\n",
}


@pytest.mark.parametrize("form", LEAKED_ON_MAIN)
def test_backup_redacts_the_token_in_every_form(tmp_path, form):
    token = "AAAA" + "f1e2d3c4b5a6978" * 3
    config_path = tmp_path / "config.yaml"
    config_path.write_text(
        f"paths: {{archive: {tmp_path}/archive, state: {tmp_path}/state, outbox: {tmp_path}/outbox}}\n"
        + LEAKED_ON_MAIN[form].format(token=token)
        + "collections: [{name: news, type: timeline, accounts: [sfm_alpha]}]\n"
    )
    StateStore(tmp_path / "state").close()
    result = cli("--config", str(config_path), "backup", str(tmp_path / "backups"))
    assert result.returncode == 0, result.stderr
    folder = list_backups(tmp_path / "backups")[0]
    for path in folder.iterdir():
        assert token.encode() not in path.read_bytes(), path.name
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    assert saved["x"]["bearer_token"] == "${SFM_X_BEARER_TOKEN}"  # the documented restore: set the variable
