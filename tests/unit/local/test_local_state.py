"""The state directory of a local-mode instance: one owner at a time, endpoints.json written
only by the owner and never left naming a stopped instance."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from local.state import StateDir, StateDirInUse

ROOT = Path(__file__).resolve().parents[3]


def test_one_owner_at_a_time(tmp_path: Path) -> None:
    first = StateDir(tmp_path).acquire()

    with pytest.raises(StateDirInUse) as refused:
        StateDir(tmp_path).acquire()  # another open of the lock: refused even in this process

    assert refused.value.pid == os.getpid()
    assert "--state-dir" in str(refused.value) and "make local-down" in str(refused.value)
    first.release()
    StateDir(tmp_path).acquire().release()  # free again


def test_endpoints_only_while_the_owner_runs(tmp_path: Path) -> None:
    owner = StateDir(tmp_path).acquire()
    reader = StateDir(tmp_path)
    assert reader.read_endpoints() is None  # not written until the instance is up

    owner.write_endpoints({"api_url": "http://127.0.0.1:1234", "pid": os.getpid()})
    assert reader.read_endpoints() == {"api_url": "http://127.0.0.1:1234", "pid": os.getpid()}
    assert reader.owner_pid() == os.getpid()

    owner.release()
    assert not owner.endpoints_path.exists()
    assert reader.read_endpoints() is None and reader.owner_pid() is None


def test_only_the_owner_writes_endpoints(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="not owned"):
        StateDir(tmp_path).write_endpoints({"api_url": "http://dead"})


def test_a_killed_owner_frees_the_dir_and_its_endpoints_are_ignored(tmp_path: Path) -> None:
    # GIVEN an owner process that wrote its endpoints and was then killed with SIGKILL
    script = (
        "import os, sys, time; from local.state import StateDir; "
        "s = StateDir(sys.argv[1]).acquire(); "
        "s.write_endpoints({'api_url': 'http://127.0.0.1:9', 'pid': os.getpid()}); "
        "print('ready', flush=True); time.sleep(60)"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout and owner.stdout.readline().strip() == "ready"
        assert StateDir(tmp_path).owner_pid() == owner.pid
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
    state = StateDir(tmp_path)
    assert state.endpoints_path.exists()  # nothing could remove it

    # THEN readers ignore the dead URL, and the next owner clears it
    assert state.owner_pid() is None and state.read_endpoints() is None
    state.acquire()
    assert not state.endpoints_path.exists()
    state.release()


def test_endpoints_are_replaced_whole(tmp_path: Path) -> None:
    owner = StateDir(tmp_path).acquire()
    owner.write_endpoints({"api_url": "http://127.0.0.1:1", "pid": os.getpid()})
    owner.write_endpoints({"api_url": "http://127.0.0.1:2", "pid": os.getpid()})

    assert json.loads(owner.endpoints_path.read_text())["api_url"] == "http://127.0.0.1:2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endpoints.json", "lock"]  # no partial left
    owner.release()
