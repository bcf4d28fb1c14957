"""A private CLI server for a benchmark: started, waited for, its forks' CPU read, stopped.

Served calls run in a fork of the server, so the client's own rusage misses their CPU: the
server reaps its forks, so their CPU is in its children's times (/proc/PID/stat).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from _installed import BenchError

SERVED_HELP = (
    "import sys\n"
    "from bunsui_mcp import cli_client\n"
    "sys.exit(cli_client.run_remote(['bunsui', '--help']) is None)\n"
)
TICKS = os.sysconf("SC_CLK_TCK")


def private(env: dict[str, str], runtime: Path) -> dict[str, str]:
    """`env` with its own runtime directory, so its own server (never the user's)."""
    runtime.mkdir(mode=0o700, exist_ok=True)
    return {**env, "XDG_RUNTIME_DIR": str(runtime)}


def in_process(env: dict[str, str]) -> dict[str, str]:
    return {**env, "BUNSUI_CLI_SERVER": "0"}


def start(bunsui: str, env: dict[str, str]) -> int:
    """Start the server for `env` (one call) and wait until a call is served; its pid."""
    subprocess.run([bunsui, "--help"], env=env, capture_output=True, check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        served = subprocess.run(
            [sys.executable, "-c", SERVED_HELP], env=env, capture_output=True, check=False
        )
        if served.returncode == 0:
            [pid] = pids(env["XDG_RUNTIME_DIR"])
            return pid
        time.sleep(0.1)
    raise BenchError("the CLI server never served a call")


def pids(runtime: str) -> list[int]:
    """Servers listening under `runtime`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if "bunsui_mcp.cli_server" in argv and runtime in argv:
                found.append(int(entry.name))
    return found


def children_cpu(pid: int) -> float:
    """CPU seconds of the forks this server has reaped (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / TICKS


def stop(runtime: str) -> None:
    for pid in pids(runtime):
        os.kill(pid, signal.SIGKILL)
