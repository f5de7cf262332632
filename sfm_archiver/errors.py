"""Exception hierarchy and the one place that maps errors to exit codes.

    SfmError                      exit 1 unless a subclass says otherwise
    ├── ConfigError               exit 2: the YAML is invalid (carries every problem found)
    ├── UsageError                exit 2: the command line is wrong
    ├── NotBuiltError             exit 2: a command that does not exist yet
    ├── LockBusyError             exit 2: another process holds the lock (daemon or one-shot)
    ├── StorageError              exit 1: a capture file or folder cannot be used
    ├── LedgerError               exit 1: the ledger cannot be read or appended
    │   └── LedgerChainError      exit 1: the hash chain is broken (tampering or damage)
    ├── PlatformError             exit 1: the platform answered in a way we cannot use
    │   ├── AuthError             exit 1: the token was refused (401/403): never retried
    │   ├── UsageCappedError      exit 1: the monthly usage cap is reached
    │   └── BadResponseError      exit 1: invalid JSON, truncated body, missing fields
    ├── BagError                  exit 1: a bag could not be built or handed off
    └── VerificationError         exit 1: a bag or file failed verification
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


class UsageError(SfmError):
    exit_code = 2


class NotBuiltError(SfmError):
    exit_code = 2


class LockBusyError(SfmError):
    exit_code = 2


class StorageError(SfmError):
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


class BagError(SfmError):
    pass


class VerificationError(SfmError):
    """`problems` lists each finding as text naming the failing file."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def exit_code_for(error: BaseException) -> int:
    """Exit code for an exception reaching the command line."""
    if isinstance(error, SfmError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return 130
    return 1
