"""Named steps of bag building where a test can freeze the process and kill it.

`SFM_ARCHIVER_TEST_PAUSE_AT=<step>` (or `<step>#<n>` for the n-th time a repeated step is
reached, counting from 1) makes the process print `paused at <step>#<n>` to stderr and sleep
until it is killed. Crash-safety tests use it to kill -9 at exact points; unset, it costs one
dictionary lookup per step.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from typing import Mapping

PAUSE_ENV = "SFM_ARCHIVER_TEST_PAUSE_AT"

STEPS = (
    "intent",          # intent recorded, nothing moved yet
    "move",            # after each capture file is moved (or copied) into staging
    "provenance",      # provenance written
    "hash",            # after each payload file is hashed
    "tagfiles",        # manifests, tag manifests and bag-info written
    "validated",       # full validation passed
    "fsynced",         # every staged file and folder fsynced
    "tar",             # tar file written and fsynced (tar serialization only)
    "before_rename",   # handoff recorded, rename not yet done
    "after_rename",    # the bag is in the outbox, not yet recorded as done
    "cleanup",         # archive folders removed, not yet recorded as done
    "done",            # recorded as done, before on_handoff
    "rollback",        # during recovery, after each file returned to the archive
)


class PausePoints:
    """Counts steps reached and freezes at the one named in the environment."""

    def __init__(self, environ: Mapping[str, str] | None = None, sleep=time.sleep):
        value = (os.environ if environ is None else environ).get(PAUSE_ENV, "")
        step, _, nth = value.partition("#")
        self.step = step or None
        self.nth = int(nth) if nth.isdigit() else 1
        self.sleep = sleep
        self.reached: Counter = Counter()

    def __call__(self, step: str) -> None:
        if self.step != step:
            return
        self.reached[step] += 1
        if self.reached[step] != self.nth:
            return
        sys.stderr.write(f"paused at {step}#{self.nth} pid={os.getpid()}\n")
        sys.stderr.flush()
        while True:
            self.sleep(3600)
