"""README's cost figures are what `make cost` (bench/cost.py) computes from the template, the
measured segment times and the dated prices: a change to any of them shows up here."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import cost  # noqa: E402 - bench/cost.py


def generated() -> str:
    stack = cost.Stack(ROOT / "template.yaml", {})
    return cost.report(stack, cost.load_json(cost.PRICES), cost.load_json(cost.MEASURED), 10_000)


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("## Cost", 1)[1].split("\n## ", 1)[0]


def test_total_and_orchestration_share_are_the_scripts() -> None:
    report = generated()
    total = re.search(r"\| \*\*total\*\* \| \| \*\*(\$[\d.]+)\*\* \|", report)
    share = re.search(r"\| orchestration \| .* \| (\$[\d.]+) \((\d+%) of the total\) \|", report)
    assert total and share
    section = readme_section()
    assert f"| **total** | **{total.group(1)}** |" in section
    assert f"is {share.group(1)}, **{share.group(2)} of the total**" in section


def test_memory_rows_are_the_scripts() -> None:
    script_rows = {}
    for line in generated().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split(" | ")]
        if cells and cells[0].split(" ")[0].isdigit():
            script_rows[cells[0]] = (cells[1], cells[3], cells[5])  # ms, total Express, total Standard
    readme_rows = [
        [cell.strip() for cell in line.strip("|").split(" | ")]
        for line in readme_section().splitlines()
        if re.match(r"\| \d+( \(default\))? \| ", line)
    ]
    assert readme_rows, "README has no table by SegmentMemorySize"
    for label, ms, express, standard in readme_rows:
        assert script_rows[label] == (ms, express, standard), f"README row {label} is stale: run make cost"


def test_sagemaker_comparison_is_the_scripts() -> None:
    full_use = re.search(r"(\$[\d.]+) per 1,000 images at full use", generated())
    assert full_use
    assert f"costs {full_use.group(1)} per 1,000 images" in readme_section()
