"""The committed OpenAPI document is the one the routes and models generate."""

from __future__ import annotations

import json
from pathlib import Path

from job_api.openapi import document
from local.template import Stack

ROOT = Path(__file__).resolve().parents[3]


def test_committed_spec_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == document(), "docs/openapi.json is stale: run `make openapi`"


def test_spec_routes_are_the_template_routes() -> None:
    spec_routes = {f"{method.upper()} {path}" for path, ops in document()["paths"].items() for method in ops}
    template_routes = {route.route_key for route in Stack(ROOT / "template.yaml").http_routes()}
    assert spec_routes == template_routes
