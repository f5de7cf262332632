"""No secret reaches any byte the archiver writes, whatever YAML form the configuration gives it.

One daemon run goes through every form of the bearer token: it starts on the first and is
reloaded (SIGHUP) onto each of the others, each with a token of its own that the simulator
accepts, so every stored copy of the configuration text is tested. Other secrets stay in the
file throughout: one in a comment, URL credentials in the bag profile identifier and in the
hand-off command, the token of the environment. The run logs at DEBUG, captures timelines,
streams and links, bags (folder or tar); then `bag`, `status`, `status --json`, `check-config` and
`backup` run. Every file of the archive, outbox, state and backup folders (gzip members
decompressed, tar members read) and every output is searched for every secret.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import tarfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sfm_archiver.simulator import Scenario, Simulator
from tests.chaos.helpers import cli, daemon_process, old_capture, wait_for, wait_for_every_kind

# How the x: section gives the token: {url} is the simulator, {t} a token without spaces, {a} {b}
# the two words of a token with a space (plain and quoted values folded over two lines).
FORMS = {
    "plain": "x:\n  api_base_url: {url}\n  bearer_token: {t}\n",
    "single-quoted": "x:\n  api_base_url: {url}\n  bearer_token: '{t}'\n",
    "double-quoted": 'x:\n  api_base_url: {url}\n  bearer_token: "{t}"\n',
    "block scalar >-": "x:\n  api_base_url: {url}\n  bearer_token: >-\n    {t}\n",
    "block scalar |-": "x:\n  api_base_url: {url}\n  bearer_token: |-\n    {t}\n",
    "quoted key": 'x:\n  api_base_url: {url}\n  "bearer_token": {t}\n',
    "flow mapping": "x: {{api_base_url: '{url}', bearer_token: {t}, workers: 2}}\n",
    "multi-line plain": "x:\n  api_base_url: {url}\n  bearer_token: {a}\n    {b}\n  workers: 2\n",
    "multi-line double-quoted": 'x:\n  api_base_url: {url}\n  bearer_token: "{a}\n    {b}"\n',
    "environment default": "x:\n  api_base_url: {url}\n  bearer_token: ${{SFM_TEST_UNSET_TOKEN:-{t}}}\n",
    "anchored": "x:\n  api_base_url: {url}\n  bearer_token: &tok {t}\n",
    "comment after": "x:\n  api_base_url: {url}\n  bearer_token: {t}   # the app token\n",
    "environment": "x:\n  api_base_url: {url}\n  bearer_token: ${{SFM_X_BEARER_TOKEN}}\n",
}
SPACED = ("multi-line plain", "multi-line double-quoted")

word = st.text("abcdefghjkmnpqrstuvwxyz23456789", min_size=12, max_size=16).map(lambda s: "Zk" + s)


def config_text(root: Path, form: str, url: str, token: str, others: dict, serialization: str) -> str:
    a, _, b = token.partition(" ")
    return (
        f"# previous token: {others['comment']}\n"
        "organization: {name: Secret Forms Library, contact_email: archives@example.edu}\n"
        f"paths: {{archive: {root}/archive, state: {root}/state, outbox: {root}/outbox}}\n"
        + FORMS[form].format(url=url, t=token, a=a, b=b)
        + "collections:\n"
        "  - {name: tl, type: timeline, schedule: every 1s, backfill: 50, accounts: [sfm_alpha, sfm_beta]}\n"
        "  - {name: climate, type: filter_stream, rules: [{value: climate, tag: cc}]}\n"
        "jobs: {update_usernames: every 2s, fetch_urls: every 2s, bag: every 2s}\n"
        "bagging:\n"
        "  period: hour\n  grace: 0s\n  checksums: [sha256]\n"
        f"  serialization: {serialization}\n"
        f'  profile_identifier: "https://archivist:{others["profile"]}@profiles.example.edu/sfm.json?token={others["query"]}"\n'
        f'  on_handoff: ["true", "https://ingest:{others["handoff"]}@ingest.example.edu/"]\n'
        "disk: {warning_free: 10MB, min_free: 5MB}\n"
        "log_level: DEBUG\n"
    )


def contents(path: Path) -> list[bytes]:
    """The file's bytes, and those of its gzip members and tar members (and theirs)."""
    data = path.read_bytes()
    return [data, *_inner(path.name, data)]


def _inner(name: str, data: bytes) -> list[bytes]:
    if name.endswith(".gz"):
        try:
            return [gzip.decompress(data)]
        except (OSError, EOFError):
            return []
    if name.endswith(".tar"):
        found = []
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                handle = archive.extractfile(member)
                if handle is not None:
                    content = handle.read()
                    found.extend([content, *_inner(member.name, content)])
        return found
    return []


def leaks(roots: list[Path], texts: list[str], secrets: list[str]) -> list[str]:
    found = []
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                if not path.is_symlink():
                    found.extend(f"{path}: {s}" for blob in contents(path) for s in secrets if s.encode() in blob)
    found.extend(f"output {i}: {s}" for i, text in enumerate(texts) for s in secrets if s in text)
    return found


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate])  # no shrinking: a run is seconds
@given(
    order=st.permutations(list(FORMS)),
    words=st.lists(word, min_size=2 * len(FORMS) + 6, max_size=2 * len(FORMS) + 6, unique=True),
    serialization=st.sampled_from(["none", "tar"]),
)
def test_no_secret_in_any_form_reaches_any_byte(tmp_path_factory, order, words, serialization):
    root = tmp_path_factory.mktemp("forms")
    tokens = {form: (f"{words[2 * i]} {words[2 * i + 1]}" if form in SPACED else words[2 * i]) for i, form in enumerate(FORMS)}
    others = dict(zip(["comment", "profile", "query", "handoff"], words[2 * len(FORMS):], strict=False))
    secrets = words  # the words no form uses never appear either
    scenario = Scenario.from_dict({"tokens": list(tokens.values()), "streams": {"messages_per_second": 20},
                                   "links": {"probability": 0.5}})
    env = {k: v for k, v in os.environ.items() if k not in ("SFM_ARCHIVER_CONFIG", "NOTIFY_SOCKET", "SFM_TEST_UNSET_TOKEN")}
    env["SFM_X_BEARER_TOKEN"] = tokens["environment"]
    config = root / "config.yaml"
    outputs: list[str] = []
    with Simulator(scenario) as sim:
        config.write_text(config_text(root, order[0], sim.base_url, tokens[order[0]], others, serialization))
        old = old_capture(root / "archive", "tl", 3)
        log_path = root / "daemon.log"
        with open(log_path, "wb") as log, daemon_process(config, log, env) as daemon:
            wait_for(lambda: b" ready: " in log_path.read_bytes(), 60, "the daemon ready (signal handlers installed)")
            # each form's copy of the text is checked while it is the stored one (the next overwrites it)
            assert leaks([root / "state"], [], tokens[order[0]].split()) == [], order[0]
            for count, form in enumerate(order[1:], start=1):
                config.write_text(config_text(root, form, sim.base_url, tokens[form], others, serialization))
                daemon.send_signal(signal.SIGHUP)
                wait_for(lambda count=count: log_path.read_bytes().count(b"configuration reloaded") >= count, 60,
                         f"reload {count} ({form})")
                assert leaks([root / "state"], [], tokens[form].split()) == [], form
            wait_for_every_kind(root, old, 60)
            outputs += [run.stdout + run.stderr for run in (
                cli("--config", str(config), "status", env=env), cli("--config", str(config), "status", "--json", env=env))]
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(60) == 0
        assert sim.counters()["unauthorized"] == 0 and sim.counters()["calls_total"] > 0  # every token was used
    for args in (["bag"], ["status"], ["status", "--json"], ["check-config"], ["backup", str(root / "backups")]):
        run = cli("--config", str(config), *args, env=env)
        assert run.returncode == 0 or args[0] == "status", (args, run.stdout, run.stderr)  # status: 2, stopped
        outputs.append(run.stdout + run.stderr)
    outputs.append(log_path.read_text(errors="replace"))
    assert (root / "backups").is_dir() and list((root / "outbox").iterdir())
    assert leaks([root / "archive", root / "outbox", root / "state", root / "backups"], outputs, secrets) == []
    yaml.safe_load(next((root / "backups").iterdir()).joinpath("config.yaml").read_text())  # still valid YAML
