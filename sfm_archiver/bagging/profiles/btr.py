"""Beyond the Repository BagIt Profile 1.0: a folder or tar bag with every recommended field.

BTR requires only what every bag has (Source-Organization, Bagging-Date, Payload-Oxum) and
recommends more; APTrust, DSpace, Fedora and LOCKSS read the recommended fields, so all of them
are filled: Organization-Address (configuration), Contact-Email, Bag-Group-Identifier (the
collection), Bag-Count (`1 of 1`: a period is one bag), Internal-Sender-Identifier (the bag
name), Internal-Sender-Description and Bag-Producing-Organization. Manifests are whatever
`bagging.checksums` lists (all four of ours are in Manifests-Allowed); no fetch.txt.
"""

from __future__ import annotations

from pathlib import Path

from sfm_archiver.bagging import tagfiles
from sfm_archiver.bagging.profiles import documents
from sfm_archiver.bagging.profiles.base import BagFacts, Profile
from sfm_archiver.bagging.profiles.conformance import document_problems, serialization_problems

SINGLE_BAG_COUNT = "1 of 1"


class Btr(Profile):
    name = "btr"

    @property
    def identifier(self) -> str:
        return documents.identifier(documents.btr())

    def bag_info_fields(self, facts: BagFacts) -> list[tuple[str, str]]:
        return [
            ("BagIt-Profile-Identifier", self.identifier),
            ("Organization-Address", facts.address),
            ("Bag-Count", SINGLE_BAG_COUNT),
            ("Internal-Sender-Identifier", facts.name),
            ("Bag-Producing-Organization", facts.organization),
        ]

    def problems(self, bag_dir: Path, package: str | None) -> list[str]:
        document = documents.btr()
        label = f"BTR profile {self.identifier}"
        found = document_problems(bag_dir, label, document)
        found += serialization_problems(str(bag_dir), label, document, package)
        info = tagfiles.read_bag_info(bag_dir)
        for field in documents.recommended_fields(document):
            if not (info.get(field) and info[field][0]):
                found.append(f"{bag_dir}/bag-info.txt: {label}: recommended field {field} is missing or empty")
        return found
