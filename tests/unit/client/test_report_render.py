"""The HTML report of `segjob results --html`, rendered from jobs in memory: one card per job
with its thumbnail inlined, everything user-given escaped, nothing loaded from elsewhere.
(tests/e2e/test_results_html.py opens a report of real jobs in Chromium.)"""

from __future__ import annotations

import base64
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from segjob.report import THUMBNAIL_SIDE, ReportEntry, render_report, thumbnail_jpeg, write_report
from segjob_core.models import ErrorInfo, Job, JobParams, JobResult, JobStatus, ResultSummary

NOW = "2026-11-22T10:15:30.123Z"


def job(job_id: str, status: JobStatus, **fields: object) -> Job:
    return Job(
        job_id=job_id,
        status=status,
        created_at=NOW,
        updated_at=NOW,
        expires_at=NOW,
        content_type="image/jpeg",
        params=JobParams(),
        **fields,
    )


def jpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, format="JPEG")
    return out.getvalue()


def succeeded(job_id: str = "job_ok", filename: str = "a.jpg") -> Job:
    result = JobResult(
        summary=ResultSummary(count=3, by_class={"circle": 2, "star": 1}),
        timings={"download": 2.0, "decode": 3.0, "inference": 40.0, "encode": 1.0, "total": 50.0},
        result_key=f"results/{job_id}/result.json",
    )
    return job(job_id, JobStatus.SUCCEEDED, filename=filename, result=result)


class Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def parse(page: str) -> Collector:
    collector = Collector()
    collector.feed(page)
    return collector


def test_thumbnail_keeps_the_aspect_and_fits_the_side() -> None:
    data, width, height = thumbnail_jpeg(jpeg(4000, 3000))

    assert (width, height) == (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 3 // 4)
    assert Image.open(io.BytesIO(data)).size == (width, height)


def test_each_job_is_a_card_with_its_status_detections_and_timings() -> None:
    failed = job("job_bad", JobStatus.FAILED, error=ErrorInfo(code="InvalidImage", message="not an image"))
    entries = [ReportEntry(job=succeeded(), annotated=jpeg(960, 640)), ReportEntry(job=failed)]

    page = render_report(entries, title="run 7")
    tags = parse(page).tags

    cards = [attrs["id"] for tag, attrs in tags if tag == "article"]
    assert cards == ["job_ok", "job_bad"]
    assert "<title>run 7</title>" in page
    assert "circle <b>2</b>" in page and "star <b>1</b>" in page and "<b>3</b> detections" in page
    assert re.search(r"inference</td><td class=\"ms\">40\.0</td>", page)
    assert "<b>InvalidImage</b>: not an image" in page
    assert 'class="thumb none">failed<' in page
    # the summary counts both statuses and the classes of all jobs
    assert ">SUCCEEDED</span> 1" in page and ">FAILED</span> 1" in page


def test_thumbnails_are_inlined_and_nothing_is_loaded_from_elsewhere() -> None:
    page = render_report([ReportEntry(job=succeeded(), annotated=jpeg(960, 640))])
    tags = parse(page).tags

    [img] = [attrs for tag, attrs in tags if tag == "img"]
    src = img["src"] or ""
    assert src.startswith("data:image/jpeg;base64,")
    thumb = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
    assert thumb.size == (int(img["width"] or 0), int(img["height"] or 0)) == (320, 213)
    # no script, no stylesheet or font or image from a URL; the CSP refuses any that slipped in
    assert not [tag for tag, _ in tags if tag in ("script", "link", "iframe", "object")]
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "url(" not in page
    [csp] = [
        a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in csp and "img-src data:" in csp


def test_user_given_text_is_escaped() -> None:
    hostile = '<script>alert("x")</script>.jpg'
    entry = ReportEntry(
        job=succeeded(filename=hostile).model_copy(update={"metadata": {"<b>": "</dd><img src=x>"}})
    )

    page = render_report([entry], title="<i>t</i>")

    assert "<script>" not in page and "<img src=x>" not in page and "<i>t</i>" not in page
    assert "&lt;script&gt;" in page and "&lt;/dd&gt;&lt;img src=x&gt;" in page


@pytest.mark.parametrize("data", [b"not a jpeg", jpeg(64, 48)[:40]], ids=["not a jpeg", "truncated"])
def test_an_unreadable_annotated_image_does_not_break_the_report(data: bytes) -> None:
    import ultralytics  # noqa: F401 - patches Image.open as it does in a process that also segments

    page = render_report([ReportEntry(job=succeeded(), annotated=data)])

    assert "annotated.jpg unreadable" in page


def test_links_to_downloaded_files_are_relative_to_the_report(tmp_path: Path) -> None:
    files = {"result.json": tmp_path / "out" / "job_ok" / "result.json"}

    written = write_report(tmp_path / "reports" / "r.html", [ReportEntry(job=succeeded(), files=files)])

    hrefs = [a["href"] for t, a in parse(written.read_text()).tags if t == "a"]
    assert hrefs == ["../out/job_ok/result.json"]


@pytest.mark.parametrize("status", list(JobStatus))
def test_every_status_renders(status: JobStatus) -> None:
    page = render_report([ReportEntry(job=job("job_x", status))])

    assert f">{status.value}</span>" in page
