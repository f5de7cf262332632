"""Crash safety of bagging: the step sequence, and rolling an unfinished bag back or forward.

Building the bag of period P of collection C (name N, staging S = <outbox>/.staging/N):

 1. Take C's "bag" lock; refuse when <outbox>/N (or N.tar, N.tar.gz, or the profile's outbox
    name such as <institution>.N.tar) exists or N is recorded as done.
 2. Record the intent (state `staging`: files, folders, mode, serialization, outbox) in the
    state store. From here on, recovery knows where every capture file can be.
 3. Move each capture file from <archive>/C/YYYY/MM/DD/HH/ into S/data/YYYY/MM/DD/HH/ (one
    rename each: a file is always in exactly one of the two places), then fsync both folders.
    Copy mode (outbox on another filesystem, `copy: true`): copy while hashing instead (step 5);
    the originals stay in the archive until step 9.
 4. Write S/data/provenance/.
 5. Hash every payload file once for all algorithms (worker processes).
 6. Write bagit.txt, bag-info.txt, manifests, tag manifests.
 7. Validate fully (bagit-python + our structural checks + the bag's profile, with the name it
    will have in the outbox); any problem rolls back.
 8. fsync every file and folder of S; tar serialization writes and fsyncs <staging>/N.tar
    (N.tar.gz for `archivematica`; the top folder inside is the outbox name), then reads it back.
 9. Record state `handing_off` (with the bag's statistics). This is the commit point.
10. Rename S (or N.tar[.gz]) to its outbox name with RENAME_NOREPLACE; fsync the outbox.
11. Remove what is left: the staging folder behind a tar, the originals in copy mode; write
    <outbox>/N.ready when configured; remove the period's archive folders if empty.
12. Record state `done` with files, bytes, oxum, duration; then run `on_handoff`.

Recovery (on daemon start and before every `bag` run, under the same lock):
- state `staging` (crash in steps 2-9): roll back: every payload file found in S/data goes
  back to its archive folder (copy mode: the staged copies are deleted, the originals never
  left), S and N.tar[.gz] are removed, the record is deleted. The period is bagged again later.
- state `handing_off` (crash in steps 9-12): roll forward: if the staged item still exists,
  rename it (10); then 11 and 12. When the name was taken meanwhile, roll back instead.
- entries in .staging with no unfinished record (a lost state store) are rolled back the
  same way, so no capture file is ever stranded in staging.
So after a kill -9 at any point and recovery, each capture file is in the archive or in exactly
one bag in the outbox, no partial bag is visible (staging is a hidden folder), and .staging
is empty.
"""

from __future__ import annotations

import filecmp
import logging
import os
import shutil
from pathlib import Path
from typing import Callable

from sfm_archiver.bagging.fsops import fsync_dirs, move_file, same_filesystem
from sfm_archiver.bagging.handoff import (
    finish_after_rename,
    payload_elsewhere,
    record_done,
    rename_into_outbox,
)
from sfm_archiver.bagging.intent import HANDING_OFF_STATE, STAGING, STAGING_STATE, UNFINISHED_STATES, Intent, strip_suffix
from sfm_archiver.bagging.periods import split_bag_name
from sfm_archiver.bagging.provenance import PROVENANCE_DIR
from sfm_archiver.durable import fsync_dir, sync_path
from sfm_archiver.errors import FinalNameTaken, LockBusyError
from sfm_archiver.locks import collection_lock
from sfm_archiver.state import StateStore

log = logging.getLogger("sfm_archiver.bagging")
Pause = Callable[[str], None]


def _no_pause(step: str) -> None:
    return None


def roll_back(store: StateStore, intent: Intent, pause: Pause = _no_pause, forget: bool = True) -> int:
    """Return every staged capture file to the archive, remove staging, forget the bag.

    Returns the number of files moved back. Idempotent: safe to repeat after a crash in it.
    """
    returned = 0
    touched: set[Path] = set()
    data = intent.bag_dir / "data"
    if data.is_dir():
        for staged in sorted(p for p in data.rglob("*") if p.is_file() or p.is_symlink()):
            rel = staged.relative_to(data)
            if rel.parts[0] == PROVENANCE_DIR:
                continue
            if _return_file(staged, intent.root / rel, intent.mode):
                returned += 1
                pause("rollback")
            touched.update({staged.parent, (intent.root / rel).parent})
    fsync_dirs(touched)
    for package in intent.staged_packages:
        if os.path.lexists(package):
            package.unlink()
    if intent.bag_dir.exists():
        shutil.rmtree(intent.bag_dir)
    if intent.staging_root.is_dir():
        fsync_dir(intent.staging_root)
    if forget:
        store.delete_bag(intent.name)
    return returned


def _return_file(staged: Path, original: Path, mode: str) -> bool:
    """Put one staged file back; True when it moved. Never leaves a file in two places or none."""
    if os.path.lexists(original):
        if mode == "copy" or filecmp.cmp(staged, original, shallow=False):
            staged.unlink()
            return False
        original = _free_name(original)
        log.warning("recovery: %s differs from the staged file of the same name; returning it as %s", original, original.name)
    if mode == "copy":
        original.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(staged, original)
        sync_path(original)
        staged.unlink()
        return True
    move_file(staged, original)
    return True


def _free_name(path: Path) -> Path:
    n = 1
    while True:
        candidate = path.with_name(f"{path.name}.recovered-{n}")
        if not os.path.lexists(candidate):
            return candidate
        n += 1


def roll_forward(store: StateStore, intent: Intent, has_command: bool, now, pause: Pause = _no_pause) -> bool:
    """Finish a bag recorded as `handing_off`; True when it ends in the outbox, False if rolled back."""
    try:
        renamed = rename_into_outbox(intent)
    except FinalNameTaken:
        store.update_bag(intent.name, state=STAGING_STATE)
        roll_back(store, intent, pause)
        raise
    if renamed:
        pause("after_rename")
    if not os.path.lexists(intent.final) and payload_elsewhere(intent):
        # Taken from the outbox before we finished, while the payload is still here: build it again
        # rather than delete the only other copy.
        store.update_bag(intent.name, state=STAGING_STATE)
        roll_back(store, intent, pause)
        return False
    finish_after_rename(intent, pause)
    record_done(store, intent, has_command, now())
    return True


def recover_collection(store: StateStore, outbox: Path, archive: Path, collection: str, has_command: bool, now, pause: Pause = _no_pause) -> list[str]:
    """Finish or undo every unfinished bag of one collection (the caller holds its bag lock)."""
    messages = []
    staging_root = Path(outbox) / STAGING
    listed = sorted(os.listdir(staging_root)) if staging_root.is_dir() else []
    records = {r["name"]: r for r in store.bags(collection=collection)}
    for name, record in records.items():
        if record["state"] not in UNFINISHED_STATES:
            continue
        intent = Intent.from_dict(record["intent"])
        if record["state"] == HANDING_OFF_STATE:
            try:
                finished = roll_forward(store, intent, has_command, now, pause)
            except FinalNameTaken as error:
                messages.append(f"{name}: rolled back: {error}")
                continue
            messages.append(f"{name}: handoff completed" if finished else f"{name}: rolled back (bag left the outbox early)")
        else:
            returned = roll_back(store, intent, pause)
            messages.append(f"{name}: unfinished bag rolled back, {returned} capture files returned to the archive")
    unfinished = {n for n, r in records.items() if r["state"] in UNFINISHED_STATES}
    for entry in listed:
        stem = strip_suffix(entry)
        parsed = split_bag_name(entry)
        if parsed is None or parsed[0] != collection or stem in unfinished:
            continue
        if not os.path.lexists(staging_root / entry):
            continue
        intent = _stray_intent(stem, collection, archive, outbox)
        returned = roll_back(store, intent, pause, forget=stem not in records)
        messages.append(f"{stem}: leftover staging without an unfinished record removed, {returned} capture files returned to the archive")
    return messages


def _stray_intent(name: str, collection: str, archive: Path, outbox: Path) -> Intent:
    mode = "move" if same_filesystem(archive, outbox) else "copy"
    return Intent(
        name=name, collection=collection, collection_root=str(Path(archive) / collection), outbox=str(outbox),
        mode=mode, serialization="none", ready_marker=False, files=[], folders=[],
    )


def collections_needing_recovery(store: StateStore, outbox: Path) -> set[str]:
    names = {r["collection"] for r in store.bags() if r["state"] in UNFINISHED_STATES}
    staging_root = Path(outbox) / STAGING
    if staging_root.is_dir():
        for entry in os.listdir(staging_root):
            parsed = split_bag_name(entry)
            if parsed:
                names.add(parsed[0])
    return names


def recover_all(store: StateStore, state_dir: Path, outbox: Path, archive: Path, has_command: bool, now, pause: Pause = _no_pause) -> list[str]:
    """Recovery for every collection that needs it; a collection whose lock is busy is left alone."""
    messages = []
    for collection in sorted(collections_needing_recovery(store, outbox)):
        try:
            with collection_lock(state_dir, collection, "bag"):
                messages.extend(recover_collection(store, outbox, archive, collection, has_command, now, pause))
        except LockBusyError as error:
            messages.append(f"{collection}: recovery deferred: {error}")
    return messages
