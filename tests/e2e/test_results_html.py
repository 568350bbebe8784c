"""`segjob results --html`: a report of real jobs (local mode, the CLI as a subprocess),
opened offline in headless Chromium (Debian's, installed by `make browser`) and screenshotted:
each job's thumbnail must be on the screen, found pixel for pixel."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.e2e.test_cli import SAMPLES, clean_env, segjob

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The machine's network is closed: without these, Chromium keeps trying to reach Google.
# The proxy that does not exist makes any fetch the page might attempt fail: what renders
# came from the file itself.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--proxy-server=127.0.0.1:9",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    if CHROMIUM:
        return CHROMIUM
    if os.environ.get("CI"):
        pytest.fail("chromium is missing: `make test` installs it (make browser)")
    pytest.skip("chromium is not installed: run `make browser`")


@pytest.fixture(scope="module")
def env(runtime) -> dict[str, str]:
    return clean_env(SEGJOB_API_URL=runtime.api_url)


@pytest.fixture(scope="module")
def job_ids(env, tmp_path_factory) -> dict[str, str]:
    """Two succeeded jobs and a failed one, made with the CLI."""
    corrupt = tmp_path_factory.mktemp("corrupt") / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" * 10)
    done = segjob("submit", *SAMPLES[:2], corrupt, "--wait", "--json", env=env)
    assert done.returncode == 1, done.stderr  # the corrupt one fails
    ids = {}
    for line in done.stdout.splitlines():
        job = json.loads(line)
        ids[job["filename"]] = job["jobId"]
    return ids


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.sources.append(values["src"] or "")
        if tag == "a":
            self.links.append(values["href"] or "")


def screenshot(chromium: str, page: Path, out: Path, height: int) -> np.ndarray:
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={out.parent / 'chromium-profile'}",
            f"--window-size=1200,{height}",
            f"--screenshot={out}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    image = cv2.imread(str(out))
    assert image is not None and image.shape[:2] == (height, 1200)
    return image


def test_report_of_jobs_renders_offline_with_every_thumbnail(chromium, env, job_ids, tmp_path) -> None:
    report = tmp_path / "report.html"

    done = segjob("results", *job_ids.values(), "--html", report, "--title", "e2e report", env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(report)]
    page = report.read_text()
    for filename, job_id in job_ids.items():
        assert f'id="{job_id}"' in page and filename in page
    assert "InvalidImage" in page and page.count(">SUCCEEDED</span>") == 3  # 2 cards + the summary
    parser = Images()
    parser.feed(page)
    assert len(parser.sources) == 2 and all(
        src.startswith("data:image/jpeg;base64,") for src in parser.sources
    )

    shot = screenshot(chromium, report, tmp_path / "report.png", height=1400)

    # THEN each thumbnail is on the screen as it is in the file (Chromium decoded and drew it)
    for src in parser.sources:
        thumbnail = cv2.imdecode(np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8), 1)
        match = cv2.matchTemplate(shot, thumbnail, cv2.TM_CCOEFF_NORMED)
        assert match.max() > 0.95, f"thumbnail not found on the screenshot (best {match.max():.2f})"
    # and the page is a page: header text and cards drew something besides the thumbnails
    assert (shot < 250).any(axis=2).mean() > 0.05


def test_report_of_recent_jobs_links_the_downloaded_files(env, job_ids, tmp_path) -> None:
    out = tmp_path / "out"
    report = out / "report.html"

    done = segjob(
        "results", "--recent", "2", "--status", "SUCCEEDED", "--out", out, "--html", report, env=env
    )

    assert done.returncode == 0, done.stderr
    parser = Images()
    parser.feed(report.read_text())
    assert len(parser.links) == 4  # result.json and annotated.jpg of two jobs
    for link in parser.links:
        assert not re.match(r"^[a-z]+:", link) and (report.parent / link).is_file()
    job_dirs = {Path(link).parent.name for link in parser.links}
    assert len(job_dirs) == 2 and job_dirs == {p.name for p in out.iterdir() if p.is_dir()}
    assert set(re.findall(r'class="badge"[^>]*>(\w+)<', report.read_text())) == {"SUCCEEDED"}
