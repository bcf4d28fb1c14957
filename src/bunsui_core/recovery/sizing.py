"""New limits from evidence, rounded to what each target accepts. Pure functions.

A memory suggestion is derived from what the failure shows (the limit that was hit, the
peak, the size the message says was requested), never a blind doubling; when no value that
the target accepts can fit, the answer is None and the plan escalates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

HEADROOM = 1.3
LOCAL_STEP_MB = 64
LOCAL_HOST_SHARE = 0.8
LAMBDA_RANGE_MB = (128, 10240)
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


def needed_memory_mb(
    limit_mb: float | None, peak_mb: float | None, required_mb: float | None
) -> tuple[float, str] | None:
    """Memory the evidence says is needed (before rounding), and how it was worked out."""
    if required_mb:
        base = (peak_mb or 0) + required_mb
        how = (
            f"peak {peak_mb or 0:g} MiB + {required_mb:g} MiB the failed allocation asked "
            f"for, +{round((HEADROOM - 1) * 100)}% headroom"
        )
        return base * HEADROOM, how
    observed = max(limit_mb or 0, peak_mb or 0)
    if not observed:
        return None
    return observed * HEADROOM, (
        f"the {observed:g} MiB it hit, +{round((HEADROOM - 1) * 100)}% "
        "headroom (the message gave no allocation size)"
    )


def host_memory_mb() -> int:
    """Physical memory of this host, the ceiling for the local engine."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)


def local_memory(
    limit_mb: float | None,
    peak_mb: float | None,
    required_mb: float | None,
    *,
    host_mb: int | None = None,
) -> Sizing | None:
    """A local-engine limit: a multiple of 64 MiB above the old limit, within the host."""
    need = needed_memory_mb(limit_mb, peak_mb, required_mb)
    if need is None:
        return None
    target, how = need
    value = math.ceil(max(target, (limit_mb or 0) + 1) / LOCAL_STEP_MB) * LOCAL_STEP_MB
    ceiling = int((host_mb or host_memory_mb()) * LOCAL_HOST_SHARE)
    if value > ceiling:
        return None
    return Sizing(
        value,
        f"{how} = {target:.0f} MiB, rounded up to {value} MiB (host allows up to {ceiling} MiB)",
    )


def lambda_memory(
    limit_mb: float | None, peak_mb: float | None, required_mb: float | None
) -> Sizing | None:
    """A Lambda memory size: whole MB within 128-10240."""
    need = needed_memory_mb(limit_mb, peak_mb, required_mb)
    if need is None:
        return None
    target, how = need
    value = max(LAMBDA_RANGE_MB[0], math.ceil(max(target, (limit_mb or 0) + 1)))
    if value > LAMBDA_RANGE_MB[1]:
        return None
    return Sizing(value, f"{how} = {value} MB (Lambda accepts 128-10240 MB)")


def fargate_memory(
    limit_mb: float | None, peak_mb: float | None, required_mb: float | None, *, cpu: int = 256
) -> tuple[int, Sizing] | None:
    """The smallest valid Fargate (cpu, memory) pair with enough memory and at least `cpu`."""
    need = needed_memory_mb(limit_mb, peak_mb, required_mb)
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
