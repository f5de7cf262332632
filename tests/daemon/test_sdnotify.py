"""sd_notify over a real datagram socket, as systemd receives it."""

from __future__ import annotations

import os
import threading

import pytest

from sfm_archiver.sdnotify import Notifier, watchdog_interval
from tests.daemon.helpers import NotifySocket


@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_messages_reach_the_socket(tmp_path, abstract):
    receiver = NotifySocket(tmp_path, abstract=abstract)
    notifier = Notifier({"NOTIFY_SOCKET": receiver.address})
    try:
        assert notifier.enabled
        assert notifier.ready("3 collections\nsecond line")
        assert notifier.watchdog()
        assert notifier.reloading(123)
        assert notifier.stopping()
        messages = receiver.drain()
    finally:
        notifier.close()
        receiver.close()
    assert messages[0] == "READY=1\nSTATUS=3 collections second line"
    assert messages[1] == "WATCHDOG=1"
    assert messages[2] == "RELOADING=1\nMONOTONIC_USEC=123"
    assert messages[3] == "STOPPING=1"


def test_a_listener_that_never_reads_loses_messages_but_never_blocks_the_sender(tmp_path):
    """A datagram queue holds a few messages; a blocking send would then stall the daemon's main
    loop (and with it SIGTERM) for as long as the listener does not read."""
    receiver = NotifySocket(tmp_path, abstract=True)
    notifier = Notifier({"NOTIFY_SOCKET": receiver.address})
    results: list[bool] = []
    sender = threading.Thread(target=lambda: results.extend(notifier.status(f"line {n}") for n in range(5000)), daemon=True)
    try:
        sender.start()
        sender.join(60)
        assert not sender.is_alive(), "a send blocked on the full queue"
        assert results[0] is True and False in results  # the first went out; once the queue was full, some did not
    finally:
        notifier.close()
        receiver.close()


def test_without_notify_socket_nothing_is_sent():
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False


def test_a_vanished_socket_does_not_raise(tmp_path):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.watchdog() is False


def test_watchdog_interval_is_half_of_watchdog_usec():
    assert watchdog_interval({"WATCHDOG_USEC": "120000000"}) == 60.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}) == 2.0
    assert watchdog_interval({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
