"""Peak memory is the job's own, however large the process that started it."""

from __future__ import annotations

import json
import subprocess
import sys

from bunsui_core.engine._process import _peak_rss_mb

PARENT = """
import json, os, sys, tempfile
from pathlib import Path
from bunsui_core.engine._process import LiveProcessGroups, ProcessSpec, run_process
ballast = bytearray(400 * 2**20)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
work = Path(tempfile.mkdtemp())
def peak(code):
    spec = ProcessSpec([sys.executable, "-c", code], dict(os.environ), work, work / "o", work / "e")
    return run_process(spec, LiveProcessGroups()).peak_rss_mb
big = (
    "b = bytearray(200 * 2**20)\\nfor i in range(0, len(b), 4096): b[i] = 1\\n"
    "import time; time.sleep(0.2)"
)
print(json.dumps({"small": peak("import time; time.sleep(0.2)"), "big": peak(big)}))
"""


def test_a_small_job_started_by_a_large_process_reports_its_own_peak():
    """wait4 counts what the fork shared with a 400 MiB parent; the reported peak must not
    (an MCP server or a test run starting a job would otherwise size memory from itself)."""
    done = subprocess.run(
        [sys.executable, "-c", PARENT], capture_output=True, text=True, check=True, timeout=120
    )
    peaks = json.loads(done.stdout)
    assert 0 < peaks["small"] < 100
    assert 200 <= peaks["big"] < 300


def test_a_job_quicker_than_the_sampler_still_has_a_peak():
    """A job that ends before the first sample, no bigger than its shim, reports wait4's
    figure (an upper bound of its own peak) rather than nothing: insights and memory plans
    need a figure for every run, and CI machines are slow enough to miss the sample."""
    assert _peak_rss_mb(maxrss_kb=12_000, shim_rss_kb=11_000, sampled_kb=0) == 11.7
    assert _peak_rss_mb(maxrss_kb=12_000, shim_rss_kb=11_000, sampled_kb=9_216) == 9.0
    assert _peak_rss_mb(maxrss_kb=300_000, shim_rss_kb=11_000, sampled_kb=9_216) == 293.0
    assert _peak_rss_mb(maxrss_kb=0, shim_rss_kb=11_000, sampled_kb=0) is None
