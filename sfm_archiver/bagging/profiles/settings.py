"""Profile settings of the configuration: which profile a collection uses, and what it requires.

Called by `config` (the checks that span sections, reported at the line of the key to fix) and
by the bag job (`profile_of`). Kept here so config.py holds only the key parsing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sfm_archiver.bagging.profiles.aptrust import INSTITUTION, allowed_values, canonical_value
from sfm_archiver.yamlsource import LocatedDict

if TYPE_CHECKING:
    from sfm_archiver.config import Config


def profile_of(config: Config, collection: str) -> str:
    """`collections[].bagging.profile`, else `bagging.profile` (also for collections since removed)."""
    for configured in config.collections:
        if configured.name == collection and configured.bagging_profile:
            return configured.bagging_profile
    return config.bagging.profile


def profiles_in_use(config: Config) -> set[str]:
    return {config.bagging.profile} | {c.bagging_profile for c in config.collections if c.bagging_profile}


def institution(value) -> str:
    """An APTrust institution identifier (its domain, e.g. example.edu): the bag name prefix."""
    text = str(value).strip()
    if not INSTITUTION.match(text):
        raise ValueError(f"{text!r} is not an institution identifier like example.edu (lower case letters, digits, '-' and '.')")
    return text


def aptrust_choice(tag: str):
    """A converter to the APTrust document's spelling of an allowed aptrust-info.txt value."""

    def convert(value) -> str:
        found = canonical_value(tag, value)
        if found is None:
            raise ValueError(f"{value!r} is not an APTrust {tag} (allowed: {', '.join(allowed_values(tag))})")
        return found

    return convert


def config_problems(config: Config, document: LocatedDict) -> list[tuple[int, str]]:
    """Settings a profile in use needs but the configuration lacks, as (line, message)."""
    used = profiles_in_use(config)
    bagging, organization = document.get("bagging"), document.get("organization")
    aptrust = bagging.get("aptrust") if isinstance(bagging, LocatedDict) else None
    found = []
    if "aptrust" in used and not config.bagging.aptrust.institution:
        found.append((_line((aptrust, "institution"), (bagging, "aptrust"), (bagging, "profile"), (document, "bagging")), (
            "bagging.aptrust.institution is required by the aptrust profile: your APTrust institution "
            "identifier (e.g. example.edu), which starts every bag name"
        )))
    if "btr" in used:
        for key, why in (("address", "Organization-Address"), ("contact_email", "Contact-Email")):
            if not getattr(config.organization, key):
                found.append((_line((organization, key), (document, "organization")), (
                    f"organization.{key} is required by the btr profile (it fills BTR's recommended {why})"
                )))
    if config.bagging.profile_identifier and used & {"btr", "aptrust"}:
        found.append((_line((bagging, "profile_identifier")), (
            "bagging.profile_identifier cannot be combined with the btr or aptrust profile, which write "
            "their own BagIt-Profile-Identifier; remove it"
        )))
    return found


def _line(*places) -> int:
    """The line of the first (mapping, key) present: where to fix it, else 1."""
    for mapping, key in places:
        if isinstance(mapping, LocatedDict) and key in mapping:
            return mapping.line_of(key)
    return 1
