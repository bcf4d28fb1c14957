"""Stopping `bunsui pipeline run --wait` from the terminal: Ctrl-C or SIGTERM cancels the run
and no process of any job outlives it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import command_job, pipeline_data
from tests.e2e.test_cli import BUNSUI, process_alive, wait_for

# The job starts a grandchild in its own session (as daemons do), then both sleep 600 s.
LONG_JOB = """
import os, subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
)
with open(os.environ["PIDS_FILE"] + ".tmp", "w") as out:
    out.write(f"{os.getpid()} {child.pid}")
os.rename(os.environ["PIDS_FILE"] + ".tmp", os.environ["PIDS_FILE"])
time.sleep(600)
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_first_signal_cancels_the_run_and_kills_every_job_process(tmp_path: Path, signum):
    """One Ctrl-C (SIGTERM, or a hangup: the terminal closed) during `--wait`: within ~2 s
    the session and its job are `cancelled`, the command exits 12, and neither the job nor
    its grandchild is left."""
    pids_file = tmp_path / "pids"
    pipeline = tmp_path / "long.yaml"
    job = command_job("sleeper", LONG_JOB, parameters={"env": {"PIDS_FILE": str(pids_file)}})
    pipeline.write_text(yaml.safe_dump(pipeline_data(job, name="long")))
    env = {**os.environ, "BUNSUI_HOME": str(tmp_path / "home")}
    run = subprocess.Popen(
        [BUNSUI, "--format", "json", "pipeline", "run", str(pipeline), "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    pids: list[int] = []
    try:
        wait_for(pids_file.exists, timeout=30)
        pids = [int(p) for p in pids_file.read_text().split()]
        sent = time.monotonic()
        run.send_signal(signum)
        stdout, stderr = run.communicate(timeout=10)
        elapsed = time.monotonic() - sent
    finally:
        if run.poll() is None:
            run.kill()
        survivors = [pid for pid in pids if process_alive(pid)]
        for pid in survivors:  # never leave a 600 s sleeper behind a failed test
            os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in stderr, stderr
    assert run.returncode == 12, (run.returncode, stdout, stderr)
    assert elapsed < 3, elapsed
    session = json.loads(stdout)
    assert session["status"] == "cancelled"
    assert [j["status"] for j in session["jobs"]] == ["cancelled"]
    assert survivors == []
    listed = subprocess.run(
        [BUNSUI, "--format", "json", "session", "describe", session["session_id"]],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(listed.stdout)["status"] == "cancelled"
