"""Evidence-based sizing: new limits come from what the failure shows, within what fits."""

from __future__ import annotations

import pytest

from bunsui_core.recovery import sizing


class TestLocalMemory:
    def test_uses_requested_allocation_and_peak(self):
        """Peak + requested size + headroom, rounded up to 64 MiB: not a blind doubling."""
        sized = sizing.local_memory(128, 26.6, 195, host_mb=16384)
        assert sized is not None
        assert sized.value == 320
        assert "195" in sized.reason
        assert "26.6" in sized.reason

    def test_without_a_size_the_first_step_at_least_doubles(self):
        """A bare MemoryError or OOM kill says nothing about the need: the first step is at
        least double the limit hit, rounded up to the next standard size (issue 12; this
        replaced +30%, which took several failed reruns to converge)."""
        sized = sizing.local_memory(1000, 990, None, host_mb=16384)
        assert sized is not None
        assert sized.value == 2048
        assert "no allocation size" in sized.reason

    def test_consecutive_unsized_failures_escalate(self):
        """A second memory failure in a row quadruples instead of repeating a small step."""
        first = sizing.local_memory(128, 120, None, host_mb=16384)
        second = sizing.local_memory(
            256, 250, None, host_mb=16384, history=sizing.MemoryHistory(failures_in_a_row=2)
        )
        assert (first and first.value, second and second.value) == (256, 1024)
        assert second is not None
        assert "2 in a row" in second.reason

    def test_what_it_used_when_it_succeeded_is_a_floor(self):
        """A job that once peaked at 900 MiB is not offered less than that plus headroom."""
        sized = sizing.local_memory(
            128, 127, None, host_mb=16384, history=sizing.MemoryHistory(succeeded_peak_mb=900)
        )
        assert sized is not None
        assert sized.value == 1536
        assert "900" in sized.reason

    def test_sized_failure_repeated_escalates_too(self):
        """Even with an allocation size, a repeated failure does not offer a small step again."""
        sized = sizing.local_memory(
            320, 300, 10, host_mb=16384, history=sizing.MemoryHistory(failures_in_a_row=2)
        )
        assert sized is not None
        assert sized.value >= 640

    def test_always_above_the_old_limit(self):
        """A tiny need never suggests a value at or below the limit that failed."""
        sized = sizing.local_memory(512, 10, 1, host_mb=16384)
        assert sized is not None
        assert sized.value > 512

    def test_cannot_fit_the_host(self):
        """More than the host can give is None, so the plan escalates instead."""
        assert sizing.local_memory(4096, 4000, 50_000, host_mb=8192) is None

    def test_no_evidence_no_value(self):
        """Without a limit, a peak or a size there is nothing to size from."""
        assert sizing.local_memory(None, None, None, host_mb=8192) is None


class TestCloudTargets:
    def test_lambda_range(self):
        """Lambda sizes stay within 128-10240 MB and above the old size."""
        sized = sizing.lambda_memory(128, 128, None)
        assert sized is not None
        assert 128 < sized.value <= 10240
        assert sizing.lambda_memory(10240, 10240, None) is None

    @pytest.mark.parametrize(
        ("limit", "need_units", "expected"),
        [
            # An unsized failure at least doubles (issue 12), then the smallest valid pair.
            (512, 256, (256, 1024)),
            (2048, 256, (512, 4096)),
            (8192, 1024, (2048, 16384)),
        ],
    )
    def test_fargate_pairs_are_valid(self, limit, need_units, expected):
        """Fargate suggestions are a valid (cpu, memory) pair with enough memory."""
        pair = sizing.fargate_memory(limit, limit, None, cpu=need_units)
        assert pair is not None
        units, sized = pair
        assert (units, sized.value) == expected
        assert sized.value in sizing.FARGATE_MEMORY_BY_CPU[units]

    def test_fargate_cannot_exceed_largest_task(self):
        """Beyond 120 GiB no Fargate task fits: None."""
        assert sizing.fargate_memory(122880, 122880, None) is None


class TestBatchAndTimeout:
    def test_batch_scaled_to_free_memory(self):
        """The batch shrinks in proportion to the memory that was free for it."""
        sized = sizing.smaller_batch(50000, limit_mb=128, peak_mb=26.6, required_mb=195)
        assert sized is not None
        assert sized.value == 20000

    def test_batch_halved_without_sizes(self):
        """Without sizes the batch is halved, and the reason says so."""
        sized = sizing.smaller_batch(1000, limit_mb=None, peak_mb=None, required_mb=None)
        assert sized is not None
        assert sized.value == 500
        assert "halved" in sized.reason

    def test_timeout_grows_from_what_was_allowed(self):
        """A timeout 50% above the one that was hit, in tens of seconds."""
        sized = sizing.longer_timeout(120, 120.3)
        assert sized is not None
        assert sized.value == 190
