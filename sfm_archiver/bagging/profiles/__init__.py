"""Bag profiles for preservation services (DESIGN.md 9): none, btr, aptrust, archivematica.

- `get(name) -> Profile`: what a profile changes in a bag and how it checks one
- `NAMES`: the values of `bagging.profile`
- `verify_problems(bag_dir, package) -> list[str]`: violations of every profile a bag claims
  (its BagIt-Profile-Identifier, an aptrust-info.txt, or its package form), for `verify`
- `settings.profile_of(config, collection)`: the profile name a collection uses;
  `settings.config_problems`: what a profile in use needs from the configuration

The profile documents are shipped in `published/` and never fetched (see its README).
"""

from __future__ import annotations

from pathlib import Path

from sfm_archiver.bagging import tagfiles
from sfm_archiver.bagging.profiles.aptrust import INFO_FILE, Aptrust
from sfm_archiver.bagging.profiles.archivematica import ACCEPTED_SUFFIXES, Archivematica
from sfm_archiver.bagging.profiles.base import AptrustSettings, BagFacts, Profile
from sfm_archiver.bagging.profiles.btr import Btr
from sfm_archiver.bagging.profiles.conformance import package_suffix

__all__ = ["NAMES", "AptrustSettings", "BagFacts", "Profile", "get", "verify_problems"]

_PROFILES: dict[str, Profile] = {p.name: p for p in (Profile(), Btr(), Aptrust(), Archivematica())}
NAMES = tuple(_PROFILES)


def get(name: str) -> Profile:
    return _PROFILES[name]


def claimed(bag_dir: Path, package: str | None) -> list[Profile]:
    """The profiles a bag (folder, or the unpacked folder of `package`) says it follows."""
    found = []
    identifier = (tagfiles.read_bag_info(bag_dir).get("BagIt-Profile-Identifier") or [""])[0]
    for profile in (_PROFILES["btr"], _PROFILES["aptrust"]):
        if identifier == profile.identifier:
            found.append(profile)
    if _PROFILES["aptrust"] not in found and (bag_dir / INFO_FILE).is_file():
        found.append(_PROFILES["aptrust"])
    if package_suffix(package) in ACCEPTED_SUFFIXES:
        found.append(_PROFILES["archivematica"])
    return found


def verify_problems(bag_dir: Path, package: str | None = None) -> list[str]:
    """Every violation of the profiles the bag claims; empty for a plain bag."""
    problems = []
    for profile in claimed(bag_dir, package):
        problems.extend(profile.problems(bag_dir, package))
    return problems
