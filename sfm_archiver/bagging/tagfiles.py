"""The BagIt tag files (RFC 8493): bagit.txt, bag-info.txt, manifests and tag manifests.

Written directly rather than by bagit-python's `make_bag`, which changes the working directory
of the whole process and bags in place. bagit-python still validates every bag we write.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from sfm_archiver.durable import write_all

BAGIT_VERSION = "1.0"
BAGIT_TXT = f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n"
REQUIRED_INFO = (
    "Source-Organization", "Bagging-Date", "Payload-Oxum", "Bag-Size", "External-Identifier",
    "Bag-Group-Identifier", "Bag-Software-Agent", "Internal-Sender-Description", "SFM-Period-Start",
    "SFM-Period-End",
)


def encode_path(path: str) -> str:
    """Manifest form of a path: `%`, CR and LF percent-encoded (RFC 8493 section 2.1.3)."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_path(path: str) -> str:
    return path.replace("%0A", "\n").replace("%0a", "\n").replace("%0D", "\r").replace("%0d", "\r").replace("%25", "%")


def payload_oxum(total_bytes: int, files: int) -> str:
    return f"{total_bytes}.{files}"


def human_size(total_bytes: int) -> str:
    """Bag-Size in decimal units, e.g. `1.07 GB`."""
    value = float(total_bytes)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def write_text(path: Path, text: str) -> None:
    """Create a tag file (UTF-8, LF line ends); staging is fsynced as a whole later."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def write_bagit_txt(bag_dir: Path) -> None:
    write_text(bag_dir / "bagit.txt", BAGIT_TXT)


def write_bag_info(bag_dir: Path, fields: list[tuple[str, str]], name: str = "bag-info.txt") -> None:
    """bag-info.txt (or another tag file of that form): one `Label: value` per line, in the order
    given; newlines in values folded, empty values left out."""
    lines = [f"{label}: {' '.join(str(value).split())}" for label, value in fields if value not in (None, "")]
    write_text(bag_dir / name, "\n".join(lines) + "\n")


def write_manifests(bag_dir: Path, digests: dict[str, dict[str, str]], algorithms: tuple[str, ...], prefix: str = "manifest") -> list[Path]:
    """One `<prefix>-<alg>.txt` per algorithm from {relative path: {alg: hex}}, sorted by path."""
    written = []
    for algorithm in algorithms:
        lines = [f"{digests[path][algorithm]}  {encode_path(path)}\n" for path in sorted(digests)]
        target = bag_dir / f"{prefix}-{algorithm}.txt"
        write_text(target, "".join(lines))
        written.append(target)
    return written


def write_tag_manifests(bag_dir: Path, algorithms: tuple[str, ...]) -> None:
    """Tag manifests over every tag file at the top of the bag (not over tag manifests)."""
    tag_files = sorted(
        entry.name
        for entry in os.scandir(bag_dir)
        if entry.is_file(follow_symlinks=False) and not entry.name.startswith("tagmanifest-")
    )
    digests: dict[str, dict[str, str]] = {}
    for name in tag_files:
        data = (bag_dir / name).read_bytes()
        digests[name] = {algorithm: hashlib.new(algorithm, data).hexdigest() for algorithm in algorithms}
    write_manifests(bag_dir, digests, algorithms, prefix="tagmanifest")


def read_bag_info(bag_dir: Path, name: str = "bag-info.txt") -> dict[str, list[str]]:
    """bag-info.txt (or another tag file of that form) labels with their values (continuation lines joined)."""
    info: dict[str, list[str]] = {}
    path = bag_dir / name
    if not path.exists():
        return info
    last = None
    # errors="replace": a damaged byte must become a reported mismatch, not a UnicodeDecodeError
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and last is not None:
            info[last][-1] += " " + line.strip()
            continue
        label, sep, value = line.partition(":")
        if not sep:
            continue
        last = label.strip()
        info.setdefault(last, []).append(value.strip())
    return info


def read_manifest(path: Path) -> dict[str, str]:
    """{relative path: digest} of one manifest or tag manifest."""
    entries = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, _, name = line.partition(" ")
        entries[decode_path(name.strip().lstrip("*"))] = digest.lower()
    return entries
