"""Building one bag in staging: move (or copy) captures, provenance, fixity, tag files, validation.

Steps 3-8 of the sequence in `recovery`. Everything happens inside `<outbox>/.staging/<name>`;
the caller records the intent before and rolls back on any exception.
"""

from __future__ import annotations

import logging
import os
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from sfm_archiver import SOFTWARE
from sfm_archiver.bagging import tagfiles
from sfm_archiver.bagging.fsops import fsync_dirs, move_file
from sfm_archiver.bagging.hashing import HashPool, HashResult, HashTask, hash_file
from sfm_archiver.bagging.intent import Intent
from sfm_archiver.bagging.periods import PeriodState
from sfm_archiver.bagging.profiles import AptrustSettings, BagFacts, Profile
from sfm_archiver.bagging.profiles import get as get_profile
from sfm_archiver.bagging.profiles.archivematica import GZIP_LEVEL
from sfm_archiver.bagging.profiles.settings import profile_of
from sfm_archiver.bagging.provenance import PROVENANCE_DIR, ProvenanceSources, harvest_runs, write_provenance
from sfm_archiver.bagging.validate import validate_bag_dir
from sfm_archiver.config import Config
from sfm_archiver.config_redact import redact_url_credentials
from sfm_archiver.durable import fsync_dir, fsync_tree, makedirs_durable, sync_file
from sfm_archiver.errors import BagError
from sfm_archiver.timeutil import rfc3339_ms

log = logging.getLogger("sfm_archiver.bagging")
TAR_BUFFER = 1 << 20


@dataclass(frozen=True)
class BagSettings:
    """What a bag of one collection looks like, from `bagging:`, `organization:` and its profile."""

    checksums: tuple[str, ...]
    serialization: str
    ready_marker: bool
    workers: int
    organization: str
    contact_email: str
    profile_identifier: str | None
    profile: Profile = Profile()
    address: str = ""
    aptrust: AptrustSettings = AptrustSettings()

    @classmethod
    def from_config(cls, config: Config, workers: int, collection: str = "") -> BagSettings:
        bagging = config.bagging
        profile = get_profile(profile_of(config, collection))
        return cls(
            checksums=profile.checksums(bagging.checksums),
            serialization=profile.serialization(bagging.serialization),
            ready_marker=bagging.ready_marker,
            workers=workers,
            organization=config.organization.name,
            contact_email=config.organization.contact_email,
            profile_identifier=bagging.profile_identifier,
            profile=profile,
            address=config.organization.address,
            aptrust=bagging.aptrust,
        )


def stage_bag(
    plan: PeriodState,
    intent: Intent,
    settings: BagSettings,
    sources: ProvenanceSources,
    pool: HashPool,
    pause: Callable[[str], None],
    stop: Callable[[], bool],
    now: datetime,
) -> dict:
    """Build, validate and fsync the bag in staging; return its statistics."""
    bag_dir = intent.bag_dir
    data = bag_dir / "data"
    makedirs_durable(data)
    capture_tasks = _place_captures(intent, data, settings.checksums, pause)
    provenance = write_provenance(sources, plan.collection, plan.period, data / PROVENANCE_DIR, len(capture_tasks), intent.name)
    pause("provenance")

    def on_result(result: HashResult) -> None:
        if intent.mode == "copy":
            pause("move")
        pause("hash")

    results = pool.run(capture_tasks, on_result, stop)
    capture_bytes = sum(r.size for r in results)
    results += [hash_file(HashTask(str(p), settings.checksums)) for p in provenance]
    digests = {Path(r.target).relative_to(bag_dir).as_posix(): r.digests for r in results}
    total_bytes = sum(r.size for r in results)
    oxum = tagfiles.payload_oxum(total_bytes, len(results))
    runs = len(harvest_runs(sources.store, plan.collection, plan.period))
    _write_tag_files(bag_dir, plan, settings, digests, total_bytes, oxum, len(capture_tasks), runs, now)
    pause("tagfiles")
    problems = validate_bag_dir(bag_dir, pool, total_bytes, stop)
    problems += settings.profile.problems(bag_dir, intent.final.name if intent.serialized else None)
    if problems:
        raise BagError(f"bag {intent.name} failed validation and was rolled back: " + "; ".join(problems[:5]))
    pause("validated")
    fsync_tree(bag_dir)
    fsync_dir(intent.staging_root)
    pause("fsynced")
    if intent.serialized:
        write_tar(bag_dir, intent.staged_tar, intent.stem, compressed=intent.serialization == "tar.gz")
        fsync_dir(intent.staging_root)
        pause("tar")
    return {
        "files": len(capture_tasks),
        "bytes": capture_bytes,
        "payload_bytes": total_bytes,
        "oxum": oxum,
        "period_end": plan.period.end.isoformat(),
        "empty": not capture_tasks,
    }


def _place_captures(intent: Intent, data: Path, algorithms: tuple[str, ...], pause) -> list[HashTask]:
    """Move the captures into staging (or plan their copy); the hashing tasks for them."""
    tasks, touched = [], set()
    for rel in intent.files:
        source, target = intent.root / rel, data / rel
        if intent.mode == "copy":
            if not source.exists():
                log.warning("bag %s: %s disappeared before bagging; left out", intent.name, source)
                continue
            makedirs_durable(target.parent)
            tasks.append(HashTask(str(target), algorithms, source=str(source), size=source.stat().st_size))
            continue
        try:
            move_file(source, target)
        except FileNotFoundError:
            log.warning("bag %s: %s disappeared before bagging; left out", intent.name, source)
            continue
        touched.update({source.parent, target.parent})
        tasks.append(HashTask(str(target), algorithms, size=target.stat().st_size))
        pause("move")
    fsync_dirs(touched)
    return tasks


def _write_tag_files(bag_dir, plan: PeriodState, settings: BagSettings, digests, total_bytes, oxum, captures, runs, now) -> None:
    tagfiles.write_bagit_txt(bag_dir)
    period = plan.period
    if captures:
        description = (
            f"X API v2 captures of collection {plan.collection} for {period.label} (UTC): "
            f"{captures} capture files, with provenance"
        )
    else:
        description = (
            f"Collection {plan.collection} ran {runs} times during {period.label} (UTC) and captured nothing; "
            "this bag holds only provenance"
        )
    facts = BagFacts(
        name=plan.name, collection=plan.collection, label=period.label, organization=settings.organization,
        address=settings.address, description=description, aptrust=settings.aptrust,
    )
    fields = [
        ("Source-Organization", settings.organization),
        ("Contact-Email", settings.contact_email),
        ("Bagging-Date", now.date().isoformat()),
        ("Payload-Oxum", oxum),
        ("Bag-Size", tagfiles.human_size(total_bytes)),
        ("External-Identifier", plan.name),
        ("Bag-Group-Identifier", plan.collection),
        ("Bag-Software-Agent", SOFTWARE),
        ("Internal-Sender-Description", description),
        ("SFM-Period-Start", rfc3339_ms(period.start)),
        ("SFM-Period-End", rfc3339_ms(period.end)),
        ("BagIt-Profile-Identifier", settings.profile_identifier and redact_url_credentials(settings.profile_identifier)),
    ]
    tagfiles.write_bag_info(bag_dir, fields + settings.profile.bag_info_fields(facts))
    settings.profile.write_tag_files(bag_dir, facts)
    tagfiles.write_manifests(bag_dir, digests, settings.checksums)
    tagfiles.write_tag_manifests(bag_dir, settings.checksums)


def write_tar(bag_dir: Path, tar_path: Path, arcname: str, compressed: bool = False) -> None:
    """Serialize the bag as one tar (top folder = `arcname`), fsynced, then check its members.

    `compressed`: a gzip stream around the tar (`.tar.gz`), at `GZIP_LEVEL` (see profiles.archivematica).
    """
    options = {"mode": "w:gz", "compresslevel": GZIP_LEVEL} if compressed else {"mode": "w"}
    with open(tar_path, "xb") as raw:
        with tarfile.open(fileobj=raw, format=tarfile.PAX_FORMAT, copybufsize=TAR_BUFFER, **options) as tar:
            tar.add(bag_dir, arcname=arcname, filter=_anonymous)
        raw.flush()
        sync_file(raw.fileno())
    _check_tar(tar_path, bag_dir, arcname)


def _anonymous(member: tarfile.TarInfo) -> tarfile.TarInfo:
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _check_tar(tar_path: Path, bag_dir: Path, arcname: str) -> None:
    expected = {}
    for folder, _dirs, files in os.walk(bag_dir):
        for name in files:
            path = Path(folder) / name
            expected[f"{arcname}/{path.relative_to(bag_dir).as_posix()}"] = path.stat().st_size
    with tarfile.open(tar_path, "r:*") as tar:
        found = {m.name: m.size for m in tar.getmembers() if m.isfile()}
    if found != expected:
        missing = sorted(set(expected) - set(found))[:3]
        raise BagError(f"{tar_path}: the tar does not hold the staged bag exactly (e.g. {missing})")
