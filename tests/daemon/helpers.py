"""Shared pieces of the daemon tests: configuration files, a fake NOTIFY_SOCKET, polling."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests import operator
from tests.polling import wait_for  # noqa: F401  (re-exported for the tests here)

TOKEN = "test-token-5e1f0a9c"


def write_config(path: Path, root: Path, api: str, collections: list[dict], **sections) -> Path:
    """A configuration under `root` (archive, state, outbox) talking to `api`."""
    return operator.write_config(path, root, api, collections, token=TOKEN, organization="Test Library", **sections)





class NotifySocket:
    """A datagram socket standing in for systemd's: collects every sd_notify message."""

    def __init__(self, folder: Path, abstract: bool = False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"sfm-test-{os.getpid()}-{id(self)}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            path = folder / "notify.sock"
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.settimeout(0.05)
        self.messages: list[str] = []

    def drain(self) -> list[str]:
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return self.messages

    def fields(self) -> list[str]:
        return [field for message in self.drain() for field in message.split("\n")]

    def has(self, field: str) -> bool:
        return field in self.fields()

    def count(self, field: str) -> int:
        return self.fields().count(field)

    def close(self) -> None:
        self.sock.close()


def cli(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `sfm-archiver ARGS` in a subprocess, the way an operator does."""
    return operator.cli(*args, env=env, timeout=timeout)
