"""The benchmarks' one way to summarize samples: median and p90, as a table."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The value at quantile ``q`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def print_table(rows: Mapping[str, Sequence[float]], *, width: int = 12, digits: int = 1) -> None:
    """One line per row name: the median and p90 of its samples (ms)."""
    print(f"  {'stage':<{width}}{'median ms':>11}{'p90 ms':>9}")
    for name, values in rows.items():
        print(
            f"  {name:<{width}}{statistics.median(values):>11.{digits}f}{percentile(values, 0.9):>9.{digits}f}"
        )
