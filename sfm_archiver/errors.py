"""Exception hierarchy and the one place that maps errors to exit codes.

    SfmError                      exit 1 unless a subclass says otherwise
    ├── ConfigError               exit 2: the YAML is invalid (carries every problem found)
    │   └── ScenarioError         exit 2: a simulator scenario is invalid
    ├── UsageError                exit 2: the command line is wrong
    ├── NotBuiltError             exit 2: a command that does not exist yet
    ├── LockBusyError             exit 2: another process holds the lock (daemon or one-shot)
    ├── StorageError              exit 1: a capture file or folder cannot be used
    ├── StateError                exit 1: the state store cannot be opened or migrated
    ├── LedgerError               exit 1: the ledger cannot be read or appended
    │   └── LedgerChainError      exit 1: the hash chain is broken (tampering or damage)
    ├── PlatformError             exit 1: the platform answered in a way we cannot use
    │   ├── AuthError             exit 1: the token was refused (401/403): never retried
    │   ├── UsageCappedError      exit 1: the monthly usage cap is reached
    │   ├── BadResponseError      exit 1: invalid JSON, truncated body, missing fields
    │   ├── TransientError        exit 1: 5xx, network errors or damaged bodies beyond every retry
    │   └── RequestRefused        exit 1: the API refused the request itself (400, 404)
    ├── BagError                  exit 1: a bag could not be built or handed off
    │   ├── FinalNameTaken        exit 1: the bag's name is taken in the outbox (never overwritten)
    │   └── OutboxFilesystemError exit 2: outbox on another filesystem and copying not allowed
    ├── VerificationError         exit 1: a bag or file failed verification
    ├── BackupError               exit 1: a backup could not be written
    ├── DeliveryError             exit 1: a notification target refused or could not be reached
    └── DemoError                 exit 1: the demo did not reach its end

    StopRequested                 not an error: the process was asked to stop while work
                                  waited (rate limit, backoff, a lock, hashing, validation)
"""

from __future__ import annotations


class SfmError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = 1


class ConfigError(SfmError):
    """The configuration is invalid; `problems` holds every `file:line: message` found."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ScenarioError(ConfigError):
    """The scenario is invalid; `problems` lists each finding (with `file:line` for YAML)."""


class UsageError(SfmError):
    exit_code = 2


class NotBuiltError(SfmError):
    exit_code = 2


class LockBusyError(SfmError):
    exit_code = 2


class StorageError(SfmError):
    pass


class StateError(SfmError):
    pass


class LedgerError(SfmError):
    pass


class LedgerChainError(LedgerError):
    """The chain breaks at `seq` (the first line that does not follow from its predecessor)."""

    def __init__(self, message: str, seq: int | None = None, line: int | None = None):
        self.seq = seq
        self.line = line
        super().__init__(message)


class PlatformError(SfmError):
    pass


class AuthError(PlatformError):
    pass


class UsageCappedError(PlatformError):
    def __init__(self, message: str, resume_at: float | None = None):
        self.resume_at = resume_at
        super().__init__(message)


class BadResponseError(PlatformError):
    pass


class TransientError(PlatformError):
    """5xx answers, network errors or damaged bodies that outlasted every retry."""


class RequestRefused(PlatformError):
    """The API refused the request itself (400, 404): a bug or an invalid value, not retried."""


class BagError(SfmError):
    pass


class FinalNameTaken(BagError):
    """Something else already has the bag's name in the outbox; it is never overwritten."""


class OutboxFilesystemError(BagError):
    """The outbox is on another filesystem and copying is not allowed: a configuration problem."""

    exit_code = 2


class VerificationError(SfmError):
    """`problems` lists each finding as text naming the failing file."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StopRequested(Exception):
    """The process is stopping: the work in hand was rolled back or is left to resume next run.

    One exception for every place that waits (a rate-limit window, a backoff, a lock, a hash
    or validation pool), so a job's caller needs one `except` to record the run as interrupted.
    """


class BackupError(SfmError):
    pass


class DeliveryError(SfmError):
    pass


class DemoError(SfmError):
    pass


def exit_code_for(error: BaseException) -> int:
    """Exit code for an exception reaching the command line."""
    if isinstance(error, SfmError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return 130
    return 1
