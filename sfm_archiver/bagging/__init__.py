"""BagIt packaging of completed periods and their atomic handoff to the outbox (DESIGN.md 9).

Entry points:
- `bag_completed_periods(ctx, collection_names=None, before=None, dry_run=False) -> list[dict]`
- `recover(ctx) -> list[str]`: roll unfinished bags back or forward (daemon start, `bag`)
- `verify_paths(paths) -> list[str]`: every problem found, each naming its file
- `pending_periods(ctx) -> list[dict]`: complete periods not yet bagged (for `status`)

The crash-safety step sequence is documented in `sfm_archiver.bagging.recovery`.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["bag_completed_periods", "pending_periods", "recover", "verify_paths"]
_HOMES = {
    "bag_completed_periods": "sfm_archiver.bagging.job",
    "pending_periods": "sfm_archiver.bagging.job",
    "recover": "sfm_archiver.bagging.job",
    "verify_paths": "sfm_archiver.bagging.verify",
}


def __getattr__(name: str):
    # Imported on first use, so worker processes that only need `hashing` or `verify` start
    # without loading the job machinery (configuration, state store, locks).
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
