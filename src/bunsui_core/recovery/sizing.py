"""New limits from evidence, rounded to what each target accepts. Pure functions.

A memory suggestion is derived from what the failure shows (the limit that was hit, the
peak, the size the message says was requested). When the failure does not say how much was
wanted (a bare MemoryError, an OOM kill), the first step must be big enough to be likely to
succeed: at least double what was hit, no less than what the job used when it last succeeded,
rounded up to the next standard size; each further memory failure in a row doubles again, so
reruns converge instead of creeping up in small steps. When no value that the target accepts
can fit, the answer is None and the plan escalates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

HEADROOM = 1.3
LOCAL_STEP_MB = 64
LOCAL_HOST_SHARE = 0.8
LAMBDA_RANGE_MB = (128, 10240)
STANDARD_SIZES_MB = (
    128,
    256,
    384,
    512,
    768,
    1024,
    1536,
    2048,
    3072,
    4096,
    6144,
    8192,
    12288,
    16384,
    24576,
    32768,
    49152,
    65536,
    98304,
    131072,
)
"""Container-style sizes (powers of two and the 1.5x steps between): an unsized failure's
limit is rounded up to one of them."""
FARGATE_MEMORY_BY_CPU: dict[int, list[int]] = {
    256: [512, 1024, 2048],
    512: list(range(1024, 4097, 1024)),
    1024: list(range(2048, 8193, 1024)),
    2048: list(range(4096, 16385, 1024)),
    4096: list(range(8192, 30721, 1024)),
    8192: list(range(16384, 61441, 4096)),
    16384: list(range(32768, 122881, 8192)),
}


@dataclass(frozen=True)
class Sizing:
    """A suggested value and the arithmetic behind it, in words."""

    value: int
    reason: str


@dataclass(frozen=True)
class MemoryHistory:
    """What earlier runs say: memory failures of this job in a row (this one included) and
    the most it used when it succeeded (this pipeline's other runs)."""

    failures_in_a_row: int = 1
    succeeded_peak_mb: float | None = None


def needed_memory_mb(
    limit_mb: float | None,
    peak_mb: float | None,
    required_mb: float | None,
    history: MemoryHistory | None = None,
) -> tuple[float, str] | None:
    """Memory the evidence says is needed (before rounding), and how it was worked out."""
    history = history or MemoryHistory()
    observed = max(limit_mb or 0, peak_mb or 0)
    escalation = 2**history.failures_in_a_row
    if required_mb:
        base = ((peak_mb or 0) + required_mb) * HEADROOM
        how = (
            f"peak {peak_mb or 0:g} MiB + {required_mb:g} MiB the failed allocation asked "
            f"for, +{round((HEADROOM - 1) * 100)}% headroom"
        )
        if history.failures_in_a_row > 1 and observed * escalation / 2 > base:
            base = observed * escalation / 2
            how += (
                f"; raised to {base:g} MiB because this is memory failure "
                f"{history.failures_in_a_row} in a row"
            )
        return base, how
    if not observed:
        return None
    target = observed * escalation
    how = f"the message gave no allocation size: {escalation}x the {observed:g} MiB it hit" + (
        f" (memory failure {history.failures_in_a_row} in a row)"
        if history.failures_in_a_row > 1
        else ""
    )
    if history.succeeded_peak_mb and history.succeeded_peak_mb * HEADROOM > target:
        target = history.succeeded_peak_mb * HEADROOM
        how = (
            f"the message gave no allocation size; it peaked at {history.succeeded_peak_mb:g} "
            f"MiB when it succeeded, +{round((HEADROOM - 1) * 100)}% headroom"
        )
    return target, how


def standard_size(target_mb: float) -> int | None:
    """The smallest standard size at or above the target (None beyond the largest)."""
    return next((size for size in STANDARD_SIZES_MB if size >= target_mb), None)


def host_memory_mb() -> int:
    """Physical memory of this host, the ceiling for the local engine."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)


def local_memory(
    limit_mb: float | None,
    peak_mb: float | None,
    required_mb: float | None,
    *,
    host_mb: int | None = None,
    history: MemoryHistory | None = None,
) -> Sizing | None:
    """A local-engine limit above the old one, within the host: a multiple of 64 MiB when
    the failure said how much it wanted, the next standard size when it did not."""
    need = needed_memory_mb(limit_mb, peak_mb, required_mb, history)
    if need is None:
        return None
    target, how = need
    floor = max(target, (limit_mb or 0) + 1)
    value = math.ceil(floor / LOCAL_STEP_MB) * LOCAL_STEP_MB
    if not required_mb:
        value = standard_size(floor) or value
    ceiling = int((host_mb or host_memory_mb()) * LOCAL_HOST_SHARE)
    if value > ceiling:
        return None
    return Sizing(
        value,
        f"{how} = {target:.0f} MiB, rounded up to {value} MiB (host allows up to {ceiling} MiB)",
    )


def lambda_memory(
    limit_mb: float | None,
    peak_mb: float | None,
    required_mb: float | None,
    history: MemoryHistory | None = None,
) -> Sizing | None:
    """A Lambda memory size: whole MB within 128-10240."""
    need = needed_memory_mb(limit_mb, peak_mb, required_mb, history)
    if need is None:
        return None
    target, how = need
    value = max(LAMBDA_RANGE_MB[0], math.ceil(max(target, (limit_mb or 0) + 1)))
    if value > LAMBDA_RANGE_MB[1]:
        return None
    return Sizing(value, f"{how} = {value} MB (Lambda accepts 128-10240 MB)")


def fargate_memory(
    limit_mb: float | None,
    peak_mb: float | None,
    required_mb: float | None,
    *,
    cpu: int = 256,
    history: MemoryHistory | None = None,
) -> tuple[int, Sizing] | None:
    """The smallest valid Fargate (cpu, memory) pair with enough memory and at least `cpu`."""
    need = needed_memory_mb(limit_mb, peak_mb, required_mb, history)
    if need is None:
        return None
    target, how = need
    for units, sizes in sorted(FARGATE_MEMORY_BY_CPU.items()):
        if units < cpu:
            continue
        fitting = [m for m in sizes if m >= target and m > (limit_mb or 0)]
        if fitting:
            return units, Sizing(
                fitting[0],
                f"{how} = {target:.0f} MiB -> Fargate {units} CPU units / {fitting[0]} MiB",
            )
    return None


def smaller_batch(
    batch_size: int, *, limit_mb: float | None, peak_mb: float | None, required_mb: float | None
) -> Sizing | None:
    """A batch that fits the memory that was available, from the same evidence."""
    if batch_size <= 1:
        return None
    if required_mb and limit_mb and limit_mb > (peak_mb or 0):
        share = (limit_mb - (peak_mb or 0)) / required_mb / HEADROOM
        if share < 1:
            value = max(1, math.floor(batch_size * share))
            return Sizing(
                value,
                f"{batch_size} rows needed {required_mb:g} MiB with "
                f"{limit_mb - (peak_mb or 0):g} MiB free: {value} rows fit "
                "with headroom",
            )
    value = max(1, batch_size // 2)
    return Sizing(value, f"halved from {batch_size} (no allocation size to scale by)")


def longer_timeout(timeout_seconds: float | None, elapsed_seconds: float | None) -> Sizing | None:
    """A timeout 50% above what was allowed (or used), in whole tens of seconds."""
    base = max(timeout_seconds or 0, elapsed_seconds or 0)
    if not base:
        return None
    value = math.ceil(base * 1.5 / 10) * 10
    return Sizing(value, f"{base:g} s was not enough: +50% = {value} s")
