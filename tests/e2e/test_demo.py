"""`make demo`'s script, run as the README promises: it must keep working after every change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.sh"


def test_demo_recovers_the_etl_failure_through_the_agent_with_approval(tmp_path):
    """The demo ends with the agent's rerun completed after a human's approval, extract
    skipped, the outcome learned and the audit chain verified."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")},
        "BUNSUI_HOME": str(tmp_path / "home"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", str(DEMO)], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "[agent] needs a human: ticket tkt-" in out
    assert "[human]     step 1: job:update-config transform @ ses-" in out
    assert "PERMISSION_DENIED: ai-agent may not approval:approve" in out
    assert "completed: extract skipped, transform completed, load completed" in out
    assert "increase_memory  1          0         0.88" in out
    assert "ok: True" in out
    assert "Traceback" not in done.stderr
