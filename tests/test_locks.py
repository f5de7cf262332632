"""Advisory locks: one daemon per state folder, one job family per collection, freed on death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sfm_archiver.errors import LockBusyError, StopRequested
from sfm_archiver.locks import LockWait, collection_lock, instance_lock
from tests.polling import wait_for

REPO = Path(__file__).resolve().parents[1]

HOLDER = textwrap.dedent(
    """
    import sys
    from sfm_archiver.locks import collection_lock
    lock = collection_lock(sys.argv[1], "news", "harvest").acquire()
    print("held", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with collection_lock(tmp_path, "news", "harvest") as lock:
        assert lock.held
        with pytest.raises(LockBusyError) as caught:
            collection_lock(tmp_path, "news", "harvest").acquire()
        assert f"held by process {os.getpid()}" in str(caught.value)
        assert "collection 'news' (harvest)" in str(caught.value)
        with collection_lock(tmp_path, "news", "stream"), collection_lock(tmp_path, "other", "harvest"):
            pass  # other families and collections are independent
    assert not lock.held
    with collection_lock(tmp_path, "news", "harvest"):
        pass


def test_the_instance_lock(tmp_path):
    with instance_lock(tmp_path):
        with pytest.raises(LockBusyError, match="daemon for this state directory is busy"):
            instance_lock(tmp_path).acquire()


def test_a_lock_is_freed_when_its_process_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
    try:
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(LockBusyError, match=f"held by process {holder.pid}"):
            collection_lock(tmp_path, "news", "harvest").acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with collection_lock(tmp_path, "news", "harvest"):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdin.close()
        holder.stdout.close()


def test_lock_names_cannot_escape(tmp_path):
    with pytest.raises(ValueError):
        collection_lock(tmp_path, "../etc", "harvest")


def _holder(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO)
    assert holder.stdout.readline() == b"held\n"
    return holder


def _end(holder) -> None:
    if holder.poll() is None:
        holder.kill()
        holder.wait()
    holder.stdin.close()
    holder.stdout.close()


def test_a_waiting_lock_is_taken_as_soon_as_another_process_frees_it(tmp_path):
    holder = _holder(tmp_path)
    waits, taken = [], []
    wait = LockWait(stop=threading.Event(), acquired=lambda lock, waited: taken.append(waited),
                    on_wait=lambda lock, pid: waits.append(pid), poll_seconds=0.02)
    result: dict = {}
    waiter = threading.Thread(target=lambda: result.setdefault("lock", collection_lock(tmp_path, "news", "harvest", wait).acquire()))
    try:
        waiter.start()
        wait_for(lambda: waits, 10, "the waiter to find the lock busy")
        assert waits == [str(holder.pid)] and waiter.is_alive() and not taken
        holder.stdin.close()  # the one-shot ends
        holder.wait(30)
        waiter.join(30)
        assert result["lock"].held and len(taken) == 1 and taken[0] > 0
        with pytest.raises(LockBusyError):
            collection_lock(tmp_path, "news", "harvest").acquire()  # a one-shot still refuses at once
        result["lock"].release()
    finally:
        _end(holder)


def test_a_stop_ends_the_wait_without_taking_the_lock(tmp_path):
    holder = _holder(tmp_path)
    stop, waits, outcome = threading.Event(), [], []
    wait = LockWait(stop=stop, on_wait=lambda lock, pid: waits.append(pid), poll_seconds=0.02)

    def take() -> None:
        try:
            collection_lock(tmp_path, "news", "harvest", wait).acquire()
            outcome.append("taken")
        except StopRequested as stopped:
            outcome.append(str(stopped))

    waiter = threading.Thread(target=take)
    try:
        waiter.start()
        wait_for(lambda: waits, 10, "the waiter to find the lock busy")
        stop.set()
        waiter.join(10)
        assert not waiter.is_alive() and outcome and "stopped while waiting" in outcome[0]
        holder.stdin.close()
        holder.wait(30)
        with collection_lock(tmp_path, "news", "harvest"):
            pass  # the stopped waiter left nothing open
    finally:
        _end(holder)
