"""Small statistics insights rest on: percentiles, a least-squares trend, rounding of sizes."""

from __future__ import annotations

import math
from dataclasses import dataclass


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear-interpolated percentile (`fraction` 0.5 = median); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Trend:
    """`value = intercept + slope * run_index`, fitted over runs 0..n-1."""

    slope: float
    intercept: float
    r_squared: float
    runs: int

    def at(self, run_index: float) -> float:
        """The fitted value at a run (n, n+1, ... are future runs)."""
        return self.intercept + self.slope * run_index

    def runs_until(self, level: float) -> int | None:
        """How many runs after the last one the fitted line reaches `level` (None: never)."""
        if self.slope <= 0:
            return None
        index = (level - self.intercept) / self.slope
        return max(1, math.ceil(index - (self.runs - 1)))


def fit_trend(values: list[float]) -> Trend | None:
    """Least-squares line through the values in run order; None below three runs."""
    n = len(values)
    if n < 3:
        return None
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    total = sum((y - mean_y) ** 2 for y in values)
    residual = sum((y - (intercept + slope * x)) ** 2 for x, y in enumerate(values))
    r_squared = 1.0 - residual / total if total > 0 else 0.0
    return Trend(slope=slope, intercept=intercept, r_squared=max(0.0, r_squared), runs=n)


def round_up(value: float, step: int) -> int:
    """The next multiple of `step` at or above `value` (memory in 64 MiB, timeouts in 10 s)."""
    return max(step, math.ceil(value / step) * step)


def sample_weight(runs: int) -> float:
    """How much n runs can carry: 1 run 0.33, 3 runs 0.6, 10 runs 0.83."""
    return runs / (runs + 2)


def spread(values: list[float]) -> float:
    """Coefficient of variation (stdev / mean); 0 for fewer than two values or a zero mean."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    if mean == 0:
        return 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return math.sqrt(variance) / mean
