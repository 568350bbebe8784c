"""A static HTML report of jobs: each job's annotated thumbnail, status, detections by class
and per-stage timings, in one self-contained file (images inlined as data: URIs, no script,
a Content-Security-Policy that refuses every external load), readable offline.

    entries = [ReportEntry.from_files(job, client.result_files(job)) for job in jobs]
    write_report("report.html", entries, title="run 7")

``render_report`` takes any sequence of entries, so a group of jobs of any origin (the CLI's
job ids, a batch) renders the same way.
"""

from __future__ import annotations

import base64
import html
import io
import os
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from segjob_core.jobs import iso
from segjob_core.models import Job, JobStatus, ResultDocument, Timings

# Longest side of a thumbnail, in pixels; shown at its natural size (no browser scaling).
THUMBNAIL_SIDE = 320
THUMBNAIL_QUALITY = 80
JPEG_MAGIC = b"\xff\xd8\xff"
STAGES = tuple(name for name in Timings.model_fields if name != "total")
STAGE_COLORS = ("#8da0cb", "#66c2a5", "#fc8d62", "#e78ac3", "#a6d854", "#ffd92f", "#b3b3b3")
STATUS_COLORS = {
    JobStatus.SUCCEEDED: "#1a7f37",
    JobStatus.FAILED: "#cf222e",
    JobStatus.RUNNING: "#0969da",
    JobStatus.AWAITING_UPLOAD: "#9a6700",
    JobStatus.CANCELED: "#6e7781",
    JobStatus.EXPIRED: "#6e7781",
}


@dataclass(frozen=True)
class ReportEntry:
    """One job of a report, with what was fetched of its results."""

    job: Job
    document: ResultDocument | None = None
    annotated: bytes | None = None
    files: Mapping[str, Path] = field(default_factory=dict)  # downloaded copies to link to

    @classmethod
    def from_files(
        cls, job: Job, files: Mapping[str, bytes], written: Mapping[str, Path] | None = None
    ) -> ReportEntry:
        """From ``Client.result_files(job)`` (empty for a job without results)."""
        raw = files.get("result.json")
        document = ResultDocument.model_validate_json(raw) if raw else None
        return cls(job=job, document=document, annotated=files.get("annotated.jpg"), files=written or {})


def thumbnail_jpeg(data: bytes, max_side: int = THUMBNAIL_SIDE) -> tuple[bytes, int, int]:
    """A JPEG no larger than ``max_side`` on its longer side, and its width and height."""
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale, much faster
        small = image.convert("RGB")
    small.thumbnail((max_side, max_side))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=THUMBNAIL_QUALITY)
    return out.getvalue(), small.width, small.height


def write_report(path: str | Path, entries: Sequence[ReportEntry], title: str = "segjob results") -> Path:
    """Write the report to ``path``; links to downloaded files are relative to it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(entries, title=title, base_dir=path.parent), encoding="utf-8")
    return path


def render_report(
    entries: Sequence[ReportEntry],
    *,
    title: str = "segjob results",
    base_dir: Path | None = None,
    generated_at: datetime | None = None,
) -> str:
    generated = iso(generated_at or datetime.now(UTC))
    cards = "\n".join(_card(entry, base_dir) for entry in entries)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="segjob">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(title)}</h1>
<p class="meta">generated {_e(generated)}</p>
{_summary(entries)}
</header>
<main>
{cards}
</main>
</body>
</html>
"""


def _summary(entries: Sequence[ReportEntry]) -> str:
    statuses = Counter(entry.job.status for entry in entries)
    classes: Counter[str] = Counter()
    totals = []
    for entry in entries:
        if entry.job.result:
            classes.update(entry.job.result.summary.by_class)
            totals.append(entry.job.result.timings.get("total", 0.0))
    parts = [f"<b>{len(entries)}</b> job{'s' if len(entries) != 1 else ''}"]
    parts += [f"{_badge(status)} {count}" for status, count in sorted(statuses.items())]
    lines = [f'<p class="summary">{" ".join(parts)}</p>']
    if classes:
        chips = "".join(_chip(name, n) for name, n in sorted(classes.items()))
        lines.append(f'<p class="summary">detections: <b>{sum(classes.values())}</b> {chips}</p>')
    if totals:
        lines.append(
            f'<p class="summary">segment function total: median <b>{statistics.median(totals):.1f} ms</b>'
            f", max {max(totals):.1f} ms</p>"
        )
    return "\n".join(lines)


def _card(entry: ReportEntry, base_dir: Path | None) -> str:
    job = entry.job
    rows = [f"<h2><code>{_e(job.job_id)}</code> {_badge(job.status)}</h2>"]
    if job.filename:
        rows.append(f'<p class="file">{_e(job.filename)}</p>')
    if job.result:
        summary = job.result.summary
        chips = "".join(_chip(name, n) for name, n in sorted(summary.by_class.items()))
        rows.append(f'<p class="detections"><b>{summary.count}</b> detections {chips}</p>')
        rows.append(_timings(job.result.timings))
    if job.error:
        rows.append(f'<p class="error"><b>{_e(job.error.code)}</b>: {_e(job.error.message)}</p>')
    rows.append(_facts(entry))
    links = [
        f'<a href="{_e(_relative(path, base_dir))}">{_e(name)}</a>'
        for name, path in sorted(entry.files.items())
    ]
    if links:
        rows.append(f'<p class="links">{" · ".join(links)}</p>')
    return f'<article class="job" id="{_e(job.job_id)}">\n{_picture(entry)}\n<div class="body">\n' + (
        "\n".join(rows) + "\n</div>\n</article>"
    )


def _picture(entry: ReportEntry) -> str:
    if entry.annotated:
        try:
            if not entry.annotated.startswith(JPEG_MAGIC):
                # never asks Image.open to guess (Ultralytics patches it to import a HEIF plugin)
                raise ValueError("annotated.jpg is not a JPEG")
            data, width, height = thumbnail_jpeg(entry.annotated)
        except (OSError, ValueError):  # not an image after all: say so instead of failing the report
            return '<div class="thumb none">annotated.jpg unreadable</div>'
        src = "data:image/jpeg;base64," + base64.b64encode(data).decode()
        alt = f"annotated {entry.job.filename or entry.job.job_id}"
        return f'<img class="thumb" src="{src}" width="{width}" height="{height}" alt="{_e(alt)}">'
    reason = {
        JobStatus.SUCCEEDED: "no annotated image (annotate: false)",
        JobStatus.FAILED: "failed",
        JobStatus.RUNNING: "running",
        JobStatus.AWAITING_UPLOAD: "awaiting upload",
    }.get(entry.job.status, entry.job.status.value.lower())
    return f'<div class="thumb none">{_e(reason)}</div>'


def _timings(timings: Mapping[str, float]) -> str:
    total = timings.get("total") or sum(timings.get(stage, 0.0) for stage in STAGES)
    spans, cells = [], []
    for stage, color in zip(STAGES, STAGE_COLORS, strict=True):
        ms = timings.get(stage, 0.0)
        share = 100.0 * ms / total if total else 0.0
        spans.append(
            f'<span style="width:{share:.2f}%;background:{color}" title="{stage} {ms:.1f} ms"></span>'
        )
        cells.append(f'<td><i style="background:{color}"></i>{stage}</td><td class="ms">{ms:.1f}</td>')
    table_rows = "".join(f"<tr>{cell}</tr>" for cell in cells)
    return (
        f'<div class="timings"><div class="bar">{"".join(spans)}</div>'
        f'<table><tbody>{table_rows}<tr class="total"><td>total</td><td class="ms">{total:.1f}</td></tr>'
        '</tbody></table><p class="unit">ms per stage of the segment function</p></div>'
    )


def _facts(entry: ReportEntry) -> str:
    job, document = entry.job, entry.document
    facts: list[tuple[str, str]] = []
    if document:
        facts.append(("image", f"{document.image.width}x{document.image.height} {document.image.format}"))
        facts.append(
            ("model", f"{document.model.name} ({document.model.backend}, imgsz {document.params.imgsz})")
        )
    if job.result and job.result.tiles:
        facts.append(("tiles", str(job.result.tiles)))
    facts.append(("created", job.created_at))
    if job.started_at:
        facts.append(("started", job.started_at))
    if job.finished_at:
        facts.append(("finished", job.finished_at))
    if job.webhook:
        facts.append(
            ("webhook", job.webhook.status.value + (f" ({job.webhook.error})" if job.webhook.error else ""))
        )
    for key, value in sorted((job.metadata or {}).items()):
        facts.append((f"metadata.{key}", str(value)))
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(value)}</dd>" for name, value in facts)
    return f"<dl>{items}</dl>"


def _badge(status: JobStatus) -> str:
    return f'<span class="badge" style="background:{STATUS_COLORS[status]}">{status.value}</span>'


def _chip(name: str, count: int) -> str:
    return f'<span class="chip">{_e(name)} <b>{count}</b></span>'


def _relative(path: Path, base_dir: Path | None) -> str:
    if base_dir is None:
        return path.resolve().as_uri()
    return Path(os.path.relpath(path.resolve(), base_dir.resolve())).as_posix()


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f8fa;color:#1f2328}
header{padding:16px 24px;background:#fff;border-bottom:1px solid #d0d7de}
h1{font-size:20px;margin:0 0 4px}
.meta,.file,.unit{color:#59636e;margin:2px 0}
.summary{margin:4px 0}
main{display:flex;flex-direction:column;gap:12px;padding:16px 24px}
.job{display:flex;gap:16px;background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:12px}
.thumb{flex:none;border-radius:4px;border:1px solid #d0d7de}
.thumb.none{width:320px;height:180px;display:flex;align-items:center;justify-content:center;color:#59636e;background:#eaeef2}
.body{flex:1;min-width:0}
h2{font-size:15px;margin:0 0 4px;display:flex;gap:8px;align-items:center;flex-wrap:wrap}
.badge{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;font-weight:600}
.chip{display:inline-block;background:#ddf4ff;border-radius:10px;padding:0 8px;margin:0 4px 2px 0}
.error{color:#cf222e}
.timings{max-width:420px;margin:6px 0}
.bar{display:flex;height:10px;border-radius:3px;overflow:hidden;background:#eaeef2}
.bar span{display:block;height:100%}
table{border-collapse:collapse;margin-top:4px}
td{padding:0 12px 0 0}
td i{display:inline-block;width:9px;height:9px;margin-right:5px;border-radius:2px}
td.ms{text-align:right;font-variant-numeric:tabular-nums}
tr.total td{font-weight:600;border-top:1px solid #d0d7de}
dl{display:grid;grid-template-columns:max-content 1fr;gap:0 12px;margin:6px 0;color:#59636e}
dd{margin:0;overflow-wrap:anywhere;color:#1f2328}
"""
