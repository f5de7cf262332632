"""Archivematica's "Zipped bag" transfer type: a `.tar.gz` holding one folder named like the file.

Archivematica (MCPClient `extract_zipped_transfer.py`) runs `tar zxvf <file> --directory=<parent>`
for `.tgz`/`.gz` files and then expects the transfer in `<parent>/<stem>`, where the stem is the
file name without `.gz`/`.tgz` and then `.tar` (`fileOperations.get_extract_dir_name`): so the
tar's single top folder must be exactly that stem, which `build.write_tar` guarantees. The
bag-info.txt fields are copied into the AIP's METS (`create_mets_v2.create_object_metadata`,
`<sourceMD>` of OTHERMDTYPE BagIt), one XML element per label; labels that are not XML names
are skipped there, so each label must be one.

The payload is gzip already (capture files), which does not compress again, and deflate even
at level 1 runs at about 65 MB/s on such data (over ten times slower than a sha256 + sha512 pass
on the same machine); so the gzip stream uses stored blocks (level 0): a valid `.tar.gz` that
every unpacker reads, written at close to the speed of a tar.
"""

from __future__ import annotations

import re
from pathlib import Path

from sfm_archiver.bagging import tagfiles
from sfm_archiver.bagging.profiles.base import Profile
from sfm_archiver.bagging.profiles.conformance import package_suffix

ACCEPTED_SUFFIXES = (".tar.gz", ".tgz", ".zip")
GZIP_LEVEL = 0
XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*$")


class Archivematica(Profile):
    name = "archivematica"

    def serialization(self, configured: str) -> str:
        return "tar.gz"

    def problems(self, bag_dir: Path, package: str | None) -> list[str]:
        label = "Archivematica zipped bag"
        found = []
        if package_suffix(package) not in ACCEPTED_SUFFIXES:
            found.append(f"{bag_dir}: {label}: must be a {', '.join(ACCEPTED_SUFFIXES)} file, not {package or 'a folder'}")
        for field in tagfiles.read_bag_info(bag_dir):
            if not XML_NAME.match(field):
                found.append(f"{bag_dir}/bag-info.txt: {label}: label {field!r} is not an XML name (Archivematica drops it from the METS)")
        return found
