"""APTrust BagIt profile 2.2: an uncompressed tar named `<institution>.<bag>` with aptrust-info.txt.

APTrust's rules (its 2.2 profile document, shipped, and its user guide "Bagging (SIP)
Requirements"): serialized as tar, untarring to one folder whose name is the tar's name; an md5
manifest (sha256 accepted, and validated when present: both are written, with tag manifests of
both); no fetch.txt; aptrust-info.txt with Title, Access (Consortia, Institution, Restricted)
and Storage-Option (Standard, Glacier-...), plus Description. Bag names start with the
institution's identifier and a dot (`example.edu.gw_2026-11-27.tar`), so bags of different
depositors never untar onto each other. Multi-part names (`<name>.b001.of002.tar`) are for one
object split over several bags; a period is always one bag, so they are never written (and
Bag-Count, which APTrust reads as the part count, is left out).
"""

from __future__ import annotations

import re
from pathlib import Path

from sfm_archiver.bagging import tagfiles
from sfm_archiver.bagging.profiles import documents
from sfm_archiver.bagging.profiles.base import AptrustSettings, BagFacts, Profile, with_algorithms
from sfm_archiver.bagging.profiles.conformance import (
    document_problems,
    package_stem,
    read_tag_file,
    serialization_problems,
)

INFO_FILE = "aptrust-info.txt"
REQUIRED_ALGORITHMS = ("md5", "sha256")
# preservation-services bagit/util.go MultipartSuffix: what APTrust strips to find the object name.
MULTIPART_SUFFIX = re.compile(r"\.b(\d+)\.of(\d+)$")
INSTITUTION = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def allowed_values(tag: str) -> tuple[str, ...]:
    """The values APTrust's document allows for an aptrust-info.txt tag (Access, Storage-Option)."""
    return documents.tag_rule(documents.aptrust(), INFO_FILE, tag).values


def canonical_value(tag: str, value: str) -> str | None:
    """The document's spelling of an allowed value (APTrust compares case-insensitively), or None."""
    for allowed in allowed_values(tag):
        if allowed.lower() == str(value).lower():
            return allowed
    return None


class Aptrust(Profile):
    name = "aptrust"

    @property
    def identifier(self) -> str:
        return documents.identifier(documents.aptrust())

    def serialization(self, configured: str) -> str:
        return "tar"

    def checksums(self, configured: tuple[str, ...]) -> tuple[str, ...]:
        return with_algorithms(configured, REQUIRED_ALGORITHMS)

    def outbox_stem(self, name: str, aptrust: AptrustSettings) -> str:
        return f"{aptrust.institution}.{name}"

    def bag_info_fields(self, facts: BagFacts) -> list[tuple[str, str]]:
        return [("BagIt-Profile-Identifier", self.identifier), ("Internal-Sender-Identifier", facts.name)]

    def write_tag_files(self, bag_dir: Path, facts: BagFacts) -> None:
        fields = [
            ("Title", f"{facts.collection} {facts.label} (UTC)"),
            ("Access", facts.aptrust.access),
            ("Storage-Option", facts.aptrust.storage_option),
            ("Description", facts.description),
        ]
        tagfiles.write_bag_info(bag_dir, fields, INFO_FILE)

    def problems(self, bag_dir: Path, package: str | None) -> list[str]:
        document = documents.aptrust()
        standard = documents.as_standard(document)
        label = f"APTrust profile {self.identifier}"
        found = document_problems(bag_dir, label, standard)
        found += serialization_problems(str(bag_dir), label, standard, package)
        found += tag_problems(bag_dir, label, document)
        if package is not None:
            found += name_problems(package_stem(package), f"{bag_dir}", label)
        return found


def tag_problems(bag_dir: Path, label: str, document: dict) -> list[str]:
    """Tags of files other than bag-info.txt (bagit_profile's part) against the document."""
    found = []
    parsed: dict[str, dict | None] = {}
    for rule in documents.tag_rules(document):
        if rule.tag_file == "bag-info.txt":
            continue
        if rule.tag_file not in parsed:
            parsed[rule.tag_file] = read_tag_file(bag_dir / rule.tag_file)
        tags = parsed[rule.tag_file]
        where = f"{bag_dir}/{rule.tag_file}"
        values = (tags or {}).get(rule.name, [])
        if not values:
            if rule.required:
                found.append(f"{where}: {label}: required tag {rule.name} is missing")
            continue
        for value in values:
            if not value and rule.required and not rule.empty_ok:
                found.append(f"{where}: {label}: required tag {rule.name} is empty")
            elif value and not rule.allows(value):
                found.append(f"{where}: {label}: {rule.name} {value!r} is not allowed (allowed: {', '.join(rule.values)})")
    return found


def name_problems(stem: str, where: str, label: str) -> list[str]:
    """APTrust bag naming: an institution prefix, and a consistent multi-part suffix if any."""
    found = []
    institution, dot, rest = stem.partition(".")
    if not dot or not institution or not rest:
        found.append(f"{where}: {label}: the bag name {stem!r} lacks the institution prefix (<institution>.<name>)")
    multipart = MULTIPART_SUFFIX.search(stem)
    if multipart and not 1 <= int(multipart.group(1)) <= int(multipart.group(2)):
        found.append(f"{where}: {label}: multi-part suffix {multipart.group(0)!r} does not name a part of the whole")
    return found
