"""The README's "Defaults and limits" table is what docs/limits.py generates from the code,
and the generator reads the values where they are defined (a change there changes the row)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docs import limits
from segjob_core.models import JobParams

ROOT = Path(__file__).resolve().parents[2]


def rows(table: str) -> dict[str, list[str]]:
    out = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| what"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            out[cells[0]] = cells[1:]
    return out


def test_readme_table_is_the_generated_one() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    generated = limits.render()

    assert generated in readme, "README's Defaults and limits table is stale: run `make docs`"


def test_rows_carry_the_values_of_the_code() -> None:
    table = rows(limits.render())
    defaults = JobParams()

    assert table["`params.conf`"][0] == str(defaults.conf) == "0.25"
    assert table["`params.iou`"][0] == str(defaults.iou) == "0.7"
    assert table["`params.maxDetections`"][0] == str(defaults.max_detections) == "100"
    assert table["`MaxUploadBytes`"][0] == "50 MiB"
    assert table["`MaxImagePixels`"][0] == "50 MP"
    assert table["`UploadWindowSeconds`"][0] == "15 min"
    assert "at most 400 tiles" in table["`params.tileSize`"][1]
    assert table["webhook attempt timeout"][0] == "10 s"


def test_a_changed_default_changes_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    spec["components"]["schemas"]["JobParams"]["properties"]["conf"]["default"] = 0.5
    monkeypatch.setattr(limits, "_openapi", lambda: spec)

    assert rows(limits.render())["`params.conf`"][0] == "0.5"


def test_replace_in_keeps_the_text_around_the_markers() -> None:
    text = f"before\n{limits.BEGIN}\nold\n{limits.END}\nafter\n"

    assert limits.replace_in(text, f"{limits.BEGIN}\nnew\n{limits.END}") == (
        f"before\n{limits.BEGIN}\nnew\n{limits.END}\nafter\n"
    )
    with pytest.raises(LookupError):
        limits.replace_in("no markers", "x")
