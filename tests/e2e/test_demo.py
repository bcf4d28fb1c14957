"""`make demo`'s script, run as the README promises: it must keep working after every change."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.sh"


def test_demo_recovers_the_etl_failure_through_the_agent_with_approval(tmp_path):
    """The demo's first act ends with the agent's rerun completed after a human's approval,
    extract skipped, the outcome learned and the audit chain verified; its second act with
    the dbt test failure escalated, fixed and retried node by node."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")},
        "BUNSUI_HOME": str(tmp_path / "home"),
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    done = subprocess.run(
        ["bash", str(DEMO)], capture_output=True, text=True, env=env, timeout=900, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "[agent] needs a human: ticket tkt-" in out
    assert "[human]     step 1: job:update-config transform @ ses-" in out
    assert "PERMISSION_DENIED: ai-agent may not approval:approve" in out
    assert "completed: extract skipped, transform completed, load completed" in out
    assert "increase_memory  1          0         0.88" in out
    assert "ok: yes" in out
    # Act two: the dbt project's failed test is triaged, fixed by a person, retried by node.
    assert "[agent] dbt test not_null_stg_orders_customer_id failed on model stg_orders" in out
    assert "[agent] transform's dbt nodes: 1 fail, 3 pass, 3 skipped, 1 success" in out
    assert "[agent]   failing row: {'order_id': '1006', 'customer_id': None," in out
    assert "[agent] escalated to a human" in out
    assert "[human]   failing row: 1006, None, 7.25, 2026-11-29" in out
    listed = {
        line.split(":")[0]: set(line.split(":", 1)[1].replace(" ", "").split(","))
        for line in out.splitlines()
        if line.startswith("dbt nodes to ")
    }
    assert {"not_null_stg_orders_customer_id", "customer_revenue"} <= listed["dbt nodes to run"]
    assert "stg_orders" in listed["dbt nodes to skip"]
    assert "stg_orders" not in listed["dbt nodes to run"]
    assert "completed: transform completed, report completed" in out
    assert "dbt retry ran 4 node(s), all pass/success" in out
    assert "Traceback" not in done.stderr
