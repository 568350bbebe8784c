"""`python -m local up --detach | status | env | down` (the Makefile's local-up, local-env,
local-down) as a user runs them, and local-mode commands side by side: a second `up` of the
same state dir is refused, `make demo` runs its own instance while one is up, and neither
touches the other's endpoints.json."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from local.__main__ import process_alive

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def local(*args: str, timeout: float = 360) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "local", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict]]:
    """A detached instance (lazy workers: only what a request needs starts), stopped at the end."""
    state_dir = tmp_path_factory.mktemp("local-up")
    started = local("up", "--detach", "--lazy", "--api-port", "0", "--state-dir", str(state_dir))
    assert started.returncode == 0, started.stdout + started.stderr + (state_dir / "local.log").read_text()
    endpoints = json.loads((state_dir / "endpoints.json").read_text())
    try:
        yield state_dir, endpoints
    finally:
        local("down", "--state-dir", str(state_dir), timeout=90)


def test_up_detach_prints_how_to_use_and_stop_it(instance) -> None:
    state_dir, endpoints = instance

    status = local("status", "--state-dir", str(state_dir))

    assert status.returncode == 0 and endpoints["api_url"] in status.stdout
    assert requests.get(f"{endpoints['api_url']}/jobs", timeout=30).status_code == 200
    assert (state_dir / "local.log").exists() and (state_dir / "logs").is_dir()


def test_env_puts_segjob_on_path_and_points_it_at_the_instance(instance) -> None:
    state_dir, endpoints = instance
    env_lines = local("env", "--state-dir", str(state_dir)).stdout
    assert f"export SEGJOB_API_URL={endpoints['api_url']}" in env_lines.splitlines()

    # GIVEN a shell whose PATH has no virtualenv in it and no SEGJOB_* variable
    bare = {k: v for k, v in os.environ.items() if not k.startswith("SEGJOB_") and k != "VIRTUAL_ENV"}
    bare["PATH"] = "/usr/bin:/bin"
    listed = subprocess.run(
        [
            "bash",
            "-c",
            f'eval "$({sys.executable} -m local env --state-dir {state_dir})"; segjob list --json',
        ],
        cwd=ROOT,
        env=bare,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert listed.returncode == 0, listed.stderr


def test_a_second_up_of_the_same_state_dir_is_refused_and_changes_nothing(instance) -> None:
    state_dir, endpoints = instance
    before = (state_dir / "endpoints.json").read_bytes()

    detached = local("up", "--detach", "--api-port", "0", "--state-dir", str(state_dir), timeout=60)
    foreground = local("up", "--api-port", "0", "--state-dir", str(state_dir), timeout=60)

    for refused in (detached, foreground):
        assert refused.returncode == 2
        assert f"local mode already runs with state dir {state_dir} (pid {endpoints['pid']}" in refused.stderr
    assert (state_dir / "endpoints.json").read_bytes() == before
    assert requests.get(f"{endpoints['api_url']}/jobs", timeout=30).status_code == 200


def test_up_on_a_port_in_use_says_so(tmp_path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        refused = local("up", "--api-port", str(port), "--state-dir", str(tmp_path), timeout=60)

    assert refused.returncode == 2
    assert f"port {port} is in use: pass --api-port N (0: any free port)" in refused.stderr
    assert not (tmp_path / "endpoints.json").exists()


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    """`make demo`'s command: local.demo in a new interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "local.demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
def test_demo_runs_beside_an_instance_without_touching_it(instance, tmp_path) -> None:
    state_dir, endpoints = instance
    before = (state_dir / "endpoints.json").read_bytes()

    demo = run_demo("--out", str(tmp_path / "out"))

    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert demo.stdout.count("SUCCEEDED") == len(list((ROOT / "samples").glob("*.jpg")))
    assert (state_dir / "endpoints.json").read_bytes() == before
    assert requests.get(f"{endpoints['api_url']}/jobs", timeout=30).status_code == 200


def test_down_stops_it_and_leaves_no_endpoints(tmp_path) -> None:
    started = local("up", "--detach", "--lazy", "--api-port", "0", "--state-dir", str(tmp_path))
    assert started.returncode == 0, started.stderr
    endpoints = json.loads((tmp_path / "endpoints.json").read_text())
    assert f"API URL         {endpoints['api_url']}" in started.stdout

    stopped = local("down", "--state-dir", str(tmp_path), timeout=90)

    assert stopped.returncode == 0 and f"local mode stopped (pid {endpoints['pid']})" in stopped.stdout
    assert not process_alive(endpoints["pid"])
    assert not (tmp_path / "endpoints.json").exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(endpoints["api_url"], timeout=5)
    for command in ("status", "env"):
        gone = local(command, "--state-dir", str(tmp_path))
        assert gone.returncode == 1 and gone.stdout == "" and "not running" in gone.stderr
    again = local("down", "--state-dir", str(tmp_path))
    assert again.returncode == 0 and "not running" in again.stdout


@pytest.mark.slow
def test_demo_on_photos_without_shapes_finds_at_most_one_each(tmp_path) -> None:
    """The demo model on real photos it never saw (Ultralytics' sample photos, no shapes in
    them): jobs succeed with at most one (false) detection each, and the demo exits 0, since
    an image of the user's own may rightly hold none."""
    assets = Path(importlib.util.find_spec("ultralytics").origin).parent / "assets"  # type: ignore[union-attr,arg-type]
    photos = [assets / "bus.jpg", assets / "zidane.jpg"]

    demo = run_demo(*map(str, photos), "--out", str(tmp_path / "out"))

    assert demo.returncode == 0, demo.stdout + demo.stderr
    counts = [json.loads(p.read_text())["summary"]["count"] for p in (tmp_path / "out").glob("*/result.json")]
    assert len(counts) == 2 and max(counts) <= 1, counts
