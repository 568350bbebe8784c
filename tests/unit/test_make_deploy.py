"""`make deploy` from a fresh clone: sam comes from .tools (installed by `make tools`), and
what only the user can provide (AWS credentials, a Docker engine, python3.12) is checked
first and named, instead of a failure deep inside sam build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tools_installed() -> None:
    if not (ROOT / ".tools" / ".installed").exists():
        if os.environ.get("CI"):
            pytest.fail("`make test` installs .tools before the tests")
        pytest.skip("run `make tools` first (this test must not install them)")


def make(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base.update(HOME=env.pop("HOME"), AWS_EC2_METADATA_DISABLED="true")  # no credentials anywhere
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deploy_names_everything_it_still_needs(tools_installed, tmp_path) -> None:
    done = make("deploy", "DOCKER=false", "PYTHON312=", HOME=str(tmp_path))

    assert done.returncode == 2
    needs = done.stderr.split("make deploy needs:", 1)[1].splitlines()
    assert [line.split("(")[0].strip() for line in needs if line.strip().startswith("-")] == [
        "- AWS credentials",
        "- a running Docker engine",
        "- python3.12",
    ]
    assert "sam build" not in done.stdout  # stopped before sam


def test_deploy_check_passes_with_all_three_and_sam_comes_from_tools(tools_installed, tmp_path) -> None:
    ready = {
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example",
    }
    python = f"PYTHON312={sys.executable}"  # any interpreter that runs stands in for python3.12

    checked = make("deploy-check", "DOCKER=true", python, **ready)
    planned = make("-n", "deploy", "DOCKER=true", python, **ready)

    assert checked.returncode == 0, checked.stderr
    commands = [line for line in planned.stdout.splitlines() if ".tools/bin/sam " in line]
    assert f'PATH="{Path(sys.executable).parent}/:$PATH"' in commands[0]
    assert ".tools/bin/sam build --parallel" in commands[0]
    assert ".tools/bin/sam deploy --guided" in commands[1]
    # the linters' default region is not forced on a deploy: the caller's profile decides
    assert all("env -u AWS_REGION" in command for command in commands)
