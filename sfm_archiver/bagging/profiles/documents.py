"""The published profile documents shipped in the package, read once, and views of them.

Every rule a profile enforces is read from its document (required and recommended bag-info
fields, allowed manifests, allowed tag values), so the document is the one place it is written.
See `published/README.md` for where each file comes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

BTR_FILE = "btr-bagit-profile.json"
APTRUST_FILE = "aptrust-v2.2.json"
# bagit_profile decides which checks apply from BagIt-Profile-Version; DART's documents leave it
# empty. The converted APTrust rules use the 1.3.0 vocabulary (Manifests-Allowed, Tag-Files-Allowed).
STANDARD_SPEC_VERSION = "1.3.0"


@cache
def load(name: str) -> dict:
    """One shipped document as JSON (a fresh copy per call is not needed: callers never mutate)."""
    text = resources.files(__package__).joinpath("published", name).read_text(encoding="utf-8")
    return json.loads(text)


def identifier(document: dict) -> str:
    """The BagIt-Profile-Identifier of a document in either format."""
    if "BagIt-Profile-Info" in document:
        return document["BagIt-Profile-Info"]["BagIt-Profile-Identifier"]
    return document["bagItProfileInfo"]["bagItProfileIdentifier"]


def btr() -> dict:
    return load(BTR_FILE)


def aptrust() -> dict:
    return load(APTRUST_FILE)


def recommended_fields(document: dict) -> list[str]:
    """bag-info labels a BagIt Profiles document marks `recommended` (bagit_profile ignores them)."""
    return [label for label, rule in document.get("Bag-Info", {}).items() if rule.get("recommended")]


@dataclass(frozen=True)
class TagRule:
    """One tag definition of a DART-format document."""

    tag_file: str
    name: str
    required: bool
    values: tuple[str, ...]
    empty_ok: bool

    def allows(self, value: str) -> bool:
        """APTrust compares allowed values case-insensitively (preservation-services IsLegalValue)."""
        return not self.values or any(value.lower() == allowed.lower() for allowed in self.values)


def tag_rules(document: dict) -> list[TagRule]:
    return [
        TagRule(t["tagFile"], t["tagName"], bool(t.get("required")), tuple(t.get("values") or ()), bool(t.get("emptyOk")))
        for t in document.get("tags", [])
    ]


def tag_rule(document: dict, tag_file: str, name: str) -> TagRule:
    for rule in tag_rules(document):
        if rule.tag_file == tag_file and rule.name == name:
            return rule
    raise KeyError(f"{tag_file}/{name}")


def as_standard(document: dict) -> dict:
    """A DART-format document's bag-level rules in the BagIt Profiles form bagit_profile reads.

    bag-info.txt tags become `Bag-Info` (values only when the document restricts them: an empty
    list would allow nothing there); other files with required tags become `Tag-Files-Required`.
    Tags outside bag-info.txt are checked by `profiles.aptrust` from `tag_rules`.
    """
    info = document["bagItProfileInfo"]
    bag_info = {}
    for rule in tag_rules(document):
        if rule.tag_file == "bag-info.txt":
            bag_info[rule.name] = {"required": rule.required, **({"values": list(rule.values)} if rule.values else {})}
    required_files = sorted({r.tag_file for r in tag_rules(document) if r.required} - {"bagit.txt", "bag-info.txt"})
    return {
        "BagIt-Profile-Info": {
            "BagIt-Profile-Identifier": info["bagItProfileIdentifier"],
            "BagIt-Profile-Version": info.get("bagItProfileVersion") or STANDARD_SPEC_VERSION,
            "Source-Organization": info["sourceOrganization"],
            "External-Description": info["externalDescription"],
            "Contact-Email": info["contactEmail"],
            "Version": info["version"],
        },
        "Bag-Info": bag_info,
        "Manifests-Required": document["manifestsRequired"],
        "Manifests-Allowed": document["manifestsAllowed"],
        "Tag-Manifests-Required": document["tagManifestsRequired"],
        "Tag-Manifests-Allowed": document["tagManifestsAllowed"],
        "Tag-Files-Required": required_files,
        "Tag-Files-Allowed": document["tagFilesAllowed"],
        "Allow-Fetch.txt": document["allowFetchTxt"],
        "Serialization": document["serialization"],
        "Accept-Serialization": document["acceptSerialization"],
        "Accept-BagIt-Version": document["acceptBagItVersion"],
    }
