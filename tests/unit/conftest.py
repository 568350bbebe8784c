"""Unit tests run without AWS: fake credentials, a region, no X-Ray daemon, and the
Powertools settings that template.yaml's Globals give every function. Set before any
test module imports a handler (handlers create their clients and Powertools objects at
import, as in Lambda)."""

from __future__ import annotations

import os

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "segjob-tests",
}.items():
    os.environ.setdefault(_name, _value)
