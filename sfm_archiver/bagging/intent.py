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


@dataclass
class Intent:
    name: str
    collection: str
    collection_root: str
    outbox: str
    mode: str                      # "move" (same filesystem, rename) or "copy" (copy, verify, delete)
    serialization: str             # "none" or "tar"
    ready_marker: bool
    files: list[str]               # capture files, relative to the collection root
    folders: list[str]             # archive folders to remove once empty, relative to the collection root
    stats: dict = field(default_factory=dict)
    version: int = INTENT_VERSION

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
    def staged_tar(self) -> Path:
        return self.staging_root / f"{self.name}.tar"

    @property
    def staged_item(self) -> Path:
        return self.staged_tar if self.serialization == "tar" else self.bag_dir

    @property
    def final(self) -> Path:
        suffix = ".tar" if self.serialization == "tar" else ""
        return Path(self.outbox) / f"{self.name}{suffix}"

    @property
    def ready_path(self) -> Path:
        return Path(self.outbox) / f"{self.name}.ready"
