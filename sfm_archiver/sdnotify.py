"""systemd's notify protocol by hand: one datagram per message to `$NOTIFY_SOCKET`.

Written here rather than taken as a dependency because the protocol is one `sendto`: a
`KEY=VALUE` datagram to a Unix socket whose path is in the environment (a leading `@` means the
Linux abstract namespace). Without `$NOTIFY_SOCKET` (not under systemd) every call is a no-op.
The socket is non-blocking: a listener that does not read (its queue of datagrams is full) loses
a status line, never stalls the daemon's main loop, which also handles the signals.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends READY=1, STATUS=..., WATCHDOG=1, RELOADING=1, STOPPING=1 to systemd."""

    def __init__(self, environ: dict | None = None):
        environ = os.environ if environ is None else environ
        self.address = _socket_address(environ.get("NOTIFY_SOCKET", ""))
        self.watchdog_interval = watchdog_interval(environ)
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send one datagram of newline-joined `KEY=VALUE` fields; False when it could not go out."""
        if self.address is None:
            return False
        message = "\n".join(field.replace("\n", " ") if field.startswith("STATUS=") else field for field in fields)
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
            self._sock.sendto(message.encode(), self.address)
            return True
        except OSError as error:
            log.debug("sd_notify to %r failed: %s", self.address, error)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self, monotonic_usec: int | None = None) -> bool:
        fields = ["RELOADING=1"]
        if monotonic_usec is not None:
            fields.append(f"MONOTONIC_USEC={monotonic_usec}")
        return self.notify(*fields)

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(value: str) -> str | bytes | None:
    """`/run/systemd/notify` as is; `@name` as the abstract address `\\0name`."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


def watchdog_interval(environ: dict | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WatchdogSec), or None when there is no watchdog.

    `$WATCHDOG_PID`, when set, must be this process: the variable may have been inherited.
    """
    environ = os.environ if environ is None else environ
    try:
        usec = int(environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return usec / 1_000_000 / 2
