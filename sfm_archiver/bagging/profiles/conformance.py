"""Checks shared by the profiles: bagit_profile against a shipped document, serialization, tags.

`bagit_profile` fetches a profile over the network unless given one, logs each finding at ERROR
on the root logger, and calls `sys.exit` when a fetch fails: here it always gets the shipped
document, and its findings are collected as data (a subclass that raises without logging).
Every problem is one line naming the bag and the profile.
"""

from __future__ import annotations

from pathlib import Path

from sfm_archiver.bagging import tagfiles

# The names under which each package form appears in profiles' Accept-Serialization lists.
PACKAGE_TYPES = {
    ".tar": ("application/tar", "application/x-tar"),
    ".tar.gz": ("application/gzip", "application/x-gzip", "application/tar+gzip"),
    ".tgz": ("application/gzip", "application/x-gzip", "application/tar+gzip"),
    ".zip": ("application/zip",),
}


def package_suffix(package: str | None) -> str | None:
    """The package form of a serialized bag's file name (`.tar`, `.tar.gz`, ...), or None."""
    if not package:
        return None
    for suffix in sorted(PACKAGE_TYPES, key=len, reverse=True):
        if package.endswith(suffix):
            return suffix
    return None


def package_stem(package: str) -> str:
    suffix = package_suffix(package)
    return package[: -len(suffix)] if suffix else package


def _quiet_profile_class():
    import bagit_profile

    class QuietProfile(bagit_profile.Profile):
        """bagit_profile.Profile whose findings are raised only (never logged to the root logger)."""

        def _fail(self, msg):
            raise bagit_profile.ProfileValidationError(msg)

        def _warn(self, msg):
            return None

    return QuietProfile


def document_problems(bag_dir: Path, label: str, document: dict) -> list[str]:
    """bagit_profile's full validation of a bag folder against a BagIt Profiles document."""
    import bagit

    identifier = document["BagIt-Profile-Info"]["BagIt-Profile-Identifier"]
    try:
        bag = bagit.Bag(str(bag_dir))
    except (bagit.BagError, ValueError, OSError) as error:  # ValueError: a tag file not UTF-8 (damage)
        return [f"{bag_dir}: {label}: not readable as a bag: {error}"]
    profile = _quiet_profile_class()(identifier, profile=dict(document))
    profile.validate(bag)
    return [f"{bag_dir}: {label}: {_without_bag_prefix(str(error.value), bag)}" for error in profile.report.errors]


def _without_bag_prefix(message: str, bag) -> str:
    prefix = f"{bag}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def serialization_problems(where: str, label: str, document: dict, package: str | None) -> list[str]:
    """`Serialization` and `Accept-Serialization` of a document for a folder (None) or a package name."""
    rule = document.get("Serialization", "optional")
    if package is None:
        if rule == "required":
            accepted = ", ".join(document.get("Accept-Serialization", []))
            return [f"{where}: {label}: the bag must be serialized ({accepted}), not a folder"]
        return []
    if rule == "forbidden":
        return [f"{where}: {label}: the bag must be a folder, not a serialized file"]
    suffix = package_suffix(package)
    accepted = set(document.get("Accept-Serialization", []))
    if suffix is None or not accepted & set(PACKAGE_TYPES[suffix]):
        return [f"{where}: {label}: {package} is not in an accepted serialization ({', '.join(sorted(accepted))})"]
    return []


def read_tag_file(path: Path) -> dict[str, list[str]] | None:
    """`Label: value` lines of any tag file (bag-info.txt rules), or None when it is missing."""
    if not path.is_file():
        return None
    return tagfiles.read_bag_info(path.parent, path.name)
