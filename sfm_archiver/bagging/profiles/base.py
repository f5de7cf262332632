"""What a bag profile decides: serialization, manifests, extra tags, the outbox name, its checks.

A profile never touches the commit protocol: `build` asks it for fields and tag files, writes
and validates the bag as always, then asks it for problems before anything is renamed into
the outbox (`recovery` documents the steps).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AptrustSettings:
    """`bagging.aptrust` of the configuration (DESIGN.md 9); values are checked against APTrust's document."""

    institution: str = ""
    access: str = "Institution"
    storage_option: str = "Standard"


@dataclass(frozen=True)
class BagFacts:
    """What a profile may need to know about the bag being built."""

    name: str                  # <collection>_<label>: the bag's name inside sfm-archiver
    collection: str
    label: str                 # the period label, e.g. 2026-11-27
    organization: str
    address: str
    description: str           # Internal-Sender-Description
    aptrust: AptrustSettings = AptrustSettings()


class Profile:
    """The `none` profile: today's bags. Subclasses change only what their target requires."""

    name = "none"
    identifier: str | None = None

    def serialization(self, configured: str) -> str:
        """`none`, `tar` or `tar.gz`; most profiles keep `bagging.serialization`."""
        return configured

    def checksums(self, configured: tuple[str, ...]) -> tuple[str, ...]:
        return configured

    def outbox_stem(self, name: str, aptrust: AptrustSettings) -> str:
        """The bag's name in the outbox (folder name, or the file name without its suffix)."""
        return name

    def bag_info_fields(self, facts: BagFacts) -> list[tuple[str, str]]:
        """bag-info.txt fields added after the ones every bag has."""
        return []

    def write_tag_files(self, bag_dir: Path, facts: BagFacts) -> None:
        """Extra tag files, written before the tag manifests (which then cover them)."""
        return None

    def problems(self, bag_dir: Path, package: str | None) -> list[str]:
        """Violations of the profile by the bag folder, to be serialized as `package` (None: a folder)."""
        return []


def with_algorithms(configured: tuple[str, ...], required: tuple[str, ...]) -> tuple[str, ...]:
    """The required algorithms first, then the configured ones not yet listed."""
    return tuple(dict.fromkeys(required + configured))
