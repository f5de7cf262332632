"""The intent record of one bag: what is being moved where, kept in the state store.

It is written (durably: SQLite, synchronous=FULL) before the first capture file leaves the
archive, so recovery always knows which files may be in staging and where the bag is going.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

STAGING = ".staging"
INTENT_VERSION = 1

# bags.state values
STAGING_STATE = "staging"          # building in <outbox>/.staging: recovery rolls back
HANDING_OFF_STATE = "handing_off"  # complete, validated, fsynced: recovery rolls forward
DONE_STATE = "done"
UNFINISHED_STATES = (STAGING_STATE, HANDING_OFF_STATE)
# bagging serialization -> file name suffix of the bag (in staging and in the outbox)
SUFFIXES = {"none": "", "tar": ".tar", "tar.gz": ".tar.gz"}


def strip_suffix(name: str) -> str:
    """A staging or outbox entry's name without its package suffix."""
    for suffix in sorted(filter(None, SUFFIXES.values()), key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class Intent:
    name: str
    collection: str
    collection_root: str
    outbox: str
    mode: str                      # "move" (same filesystem, rename) or "copy" (copy, verify, delete)
    serialization: str             # a key of SUFFIXES: "none", "tar" or "tar.gz"
    ready_marker: bool
    files: list[str]               # capture files, relative to the collection root
    folders: list[str]             # archive folders to remove once empty, relative to the collection root
    stats: dict = field(default_factory=dict)
    version: int = INTENT_VERSION
    profile: str = "none"          # sfm_archiver.bagging.profiles name
    outbox_stem: str = ""          # the bag's name in the outbox when the profile renames it (aptrust)

    @classmethod
    def from_dict(cls, data: dict) -> Intent:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def root(self) -> Path:
        return Path(self.collection_root)

    @property
    def staging_root(self) -> Path:
        return Path(self.outbox) / STAGING

    @property
    def bag_dir(self) -> Path:
        return self.staging_root / self.name

    @property
    def serialized(self) -> bool:
        return self.serialization != "none"

    @property
    def staged_tar(self) -> Path:
        """The serialized bag in staging (named by the bag, whatever its outbox name)."""
        return self.staging_root / f"{self.name}{SUFFIXES[self.serialization] or '.tar'}"

    @property
    def staged_packages(self) -> list[Path]:
        """Every package file a bag of this name may have left in staging (any serialization)."""
        return [self.staging_root / f"{self.name}{suffix}" for suffix in SUFFIXES.values() if suffix]

    @property
    def staged_item(self) -> Path:
        return self.staged_tar if self.serialized else self.bag_dir

    @property
    def stem(self) -> str:
        """The bag's name in the outbox: the top folder of its package too."""
        return self.outbox_stem or self.name

    @property
    def final(self) -> Path:
        return Path(self.outbox) / f"{self.stem}{SUFFIXES[self.serialization]}"

    @property
    def ready_path(self) -> Path:
        return Path(self.outbox) / f"{self.stem}.ready"
