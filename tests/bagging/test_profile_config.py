"""Profile keys of the configuration: each mistake is one `file:line` error naming what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sfm_archiver.config import load_config
from sfm_archiver.errors import ConfigError

BASE = """\
organization:
  name: Test University Libraries
  contact_email: archives@example.edu
  address: 1 Library Way
paths: {{archive: {root}/archive, state: {root}/state, outbox: {root}/outbox}}
x: {{bearer_token: t}}
collections:
  - name: gw
    type: timeline
    accounts: [gwtweets]
{collection_extra}bagging:
  period: day
{bagging_extra}"""


def problems_of(tmp_path: Path, bagging_extra: str = "", collection_extra: str = "", drop: str = "") -> list[str]:
    text = BASE.format(root=tmp_path, bagging_extra=bagging_extra, collection_extra=collection_extra)
    if drop:
        text = "".join(line for line in text.splitlines(True) if not line.strip().startswith(drop))
    path = tmp_path / "c.yaml"
    path.write_text(text)
    try:
        load_config(path, environ={})
    except ConfigError as error:
        return error.problems
    return []


def line_of(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "c.yaml").read_text().splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


def test_valid_profile_settings_load(tmp_path):
    assert problems_of(tmp_path, "  profile: aptrust\n  aptrust: {institution: example.edu, access: consortia}\n") == []
    config = load_config(tmp_path / "c.yaml", environ={})
    assert config.bagging.profile == "aptrust"
    assert config.bagging.aptrust.access == "Consortia"  # APTrust's own spelling
    assert config.bagging.aptrust.storage_option == "Standard"
    assert problems_of(tmp_path, collection_extra="    bagging: {profile: btr}\n") == []
    assert load_config(tmp_path / "c.yaml", environ={}).collections[0].bagging_profile == "btr"


def test_default_is_today_s_bags(tmp_path):
    assert problems_of(tmp_path) == []
    config = load_config(tmp_path / "c.yaml", environ={})
    assert config.bagging.profile == "none" and config.collections[0].bagging_profile is None


@pytest.mark.parametrize(
    ("bagging_extra", "collection_extra", "needle", "words"),
    [
        ("  profile: lockss\n", "", "profile: lockss", ["'lockss'", "none | btr | aptrust | archivematica"]),
        ("", "    bagging: {profile: dspace}\n", "profile: dspace", ["'dspace'", "archivematica"]),
        ("", "    bagging: {profil: btr}\n", "profil: btr", ["unknown key 'profil'"]),
        ("  profile: aptrust\n", "", "profile: aptrust", ["bagging.aptrust.institution is required"]),
        ("  profile: aptrust\n  aptrust: {institution: Example EDU}\n", "", "institution: Example", ["institution identifier"]),
        ("  profile: aptrust\n  aptrust: {institution: example.edu, access: Public}\n", "", "access: Public",
         ["'Public'", "Consortia, Institution, Restricted"]),
        ("  aptrust: {institution: example.edu, storage_option: Cold}\n", "", "storage_option: Cold", ["'Cold'", "Glacier-Deep-OR"]),
        ("  aptrust: {institute: example.edu}\n", "", "institute:", ["unknown key 'institute'"]),
        ("  profile: btr\n  profile_identifier: https://example.edu/p.json\n", "", "profile_identifier:", ["cannot be combined"]),
    ],
)
def test_each_mistake_is_reported_at_its_line(tmp_path, bagging_extra, collection_extra, needle, words):
    problems = problems_of(tmp_path, bagging_extra, collection_extra)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{tmp_path / 'c.yaml'}:{line_of(tmp_path, needle)}: "), problems
    assert all(word in problems[0] for word in words), problems


def test_btr_needs_the_organization_address(tmp_path):
    [problem] = problems_of(tmp_path, "", "    bagging: {profile: btr}\n", drop="address:")
    assert problem.startswith(f"{tmp_path / 'c.yaml'}:{line_of(tmp_path, 'organization:')}: ")
    assert "organization.address is required by the btr profile" in problem
