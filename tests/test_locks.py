"""Advisory locks: one daemon per state folder, one job family per collection, freed on death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sfm_archiver.errors import LockBusyError
from sfm_archiver.locks import collection_lock, instance_lock

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
