"""CLI startup: `bunsui session list` on an empty home vs `python -c "import typer, pydantic"`.

`bunsui` hands each call to the user's CLI server (a warm interpreter that forks per call)
once one runs, so "cli" is a served call, what every call but a user's first is; "cli,
in-process" is that first call (and every call with BUNSUI_CLI_SERVER=0). The benchmark runs
its own server, in a private runtime directory, and stops it at the end. A served call's
CPU is the client's plus the fork's (reaped by the server, read from its children's times).

Why: agents and scripts call the CLI many times; its floor is the interpreter plus the two
libraries it is built on, so everything above that is bunsui's own import and setup cost.
The `-X importtime` table points at the slow imports, and the AWS SDK and the MCP server
library must never load for a CLI command (only the aws backend / MCP server need them).
Target: CLI / baseline <= 1.5 (medians of alternated runs, wall time); the CPU-time ratio is
printed too: on a shared machine it moves less with what other processes do. Then the CPU
of one CLI process by phase: the interpreter and the baseline's imports, pydantic's first
model (its deferred imports and plugin lookup, paid by any program that validates), bunsui's
imports, and the command, with the validators it built on first use.

Run: .venv/bin/python tests/benchmarks/bench_cli_startup.py   (exit 1 when a target is missed)
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _cli_server
from _installed import bunsui_executable

REPETITIONS = 10
TARGET_RATIO = 1.5
TOP_IMPORTS = 15
FORBIDDEN = ("boto3", "botocore", "mcp", "numpy")

PYDANTIC_IN_USE = "import typer, pydantic\nclass M(pydantic.BaseModel):\n    x: int = 0"

# Runs `bunsui session list` in-process, then reports which forbidden packages got loaded.
LOADED_PROBE = """
import contextlib, io, json, sys
import bunsui_mcp.cli
after_import = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
with contextlib.redirect_stdout(io.StringIO()):
    code = bunsui_mcp.cli.main(["--home", {home!r}, "--format", "json", "session", "list"])
after_run = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
print(json.dumps({{"code": code, "after_import": after_import, "after_run": after_run}}))
"""


def environment(pycache: Path | None) -> dict[str, str]:
    """With a scratch bytecode cache (as after `pip install`, never writing into src/), or,
    with None, exactly this shell's environment."""
    if pycache is None:
        return dict(os.environ)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def timed(argv: list[str], env: dict[str, str], server: int | None = None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one subprocess, plus what `server`'s
    forks spent meanwhile; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    forks = _cli_server.children_cpu(server) if server else 0.0
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if server:
        cpu += _cli_server.children_cpu(server) - forks
    return elapsed, cpu


Timing = tuple[list[float], list[float]]
"""Wall seconds and CPU seconds of each run."""


def alternate(
    runs: dict[str, Callable[[], tuple[float, float]]], repetitions: int
) -> dict[str, Timing]:
    """One warm-up each, then every run in turn per round, so drift hits all sides alike."""
    for run in runs.values():
        run()
    times: dict[str, Timing] = {name: ([], []) for name in runs}
    for _ in range(repetitions):
        for name, run in runs.items():
            wall, cpu = run()
            times[name][0].append(wall)
            times[name][1].append(cpu)
    return times


def import_costs(env: dict[str, str]) -> list[tuple[int, int, str]]:
    """(self us, cumulative us, module) for every import of `bunsui_mcp.cli`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import bunsui_mcp.cli"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    costs: list[tuple[int, int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        own, cumulative, name = line.removeprefix("import time:").split("|")
        if own.strip().isdigit():  # skips the header line
            costs.append((int(own), int(cumulative), name.rstrip()))
    return costs


def print_import_table(costs: list[tuple[int, int, str]]) -> None:
    """Top cumulative costs (nested: a parent includes its children), then top own costs."""
    print(
        f"\n`python -X importtime -c 'import bunsui_mcp.cli'`: {len(costs)} modules, "
        f"top {TOP_IMPORTS} by cumulative time (ms; indentation = nesting)"
    )
    for own, cumulative, name in sorted(costs, key=lambda c: -c[1])[:TOP_IMPORTS]:
        print(f"  {cumulative / 1000:7.1f}  (self {own / 1000:5.1f})  {name}")
    print("top 10 by own time (ms)")
    for own, _cumulative, name in sorted(costs, key=lambda c: -c[0])[:10]:
        print(f"  {own / 1000:7.1f}  {name.strip()}")


def check_forbidden(home: Path, env: dict[str, str]) -> bool:
    """True when neither importing the CLI nor running `session list` loads FORBIDDEN."""
    probe = LOADED_PROBE.format(forbidden=FORBIDDEN, home=str(home))
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = sorted(set(report["after_import"]) | set(report["after_run"]))
    top = sorted({m.split(".")[0] for m in loaded})
    print(
        f"\nforbidden imports ({', '.join(FORBIDDEN)}) after `import bunsui_mcp.cli` and "
        f"`session list` (exit {report['code']}): {', '.join(top) if top else 'none'}"
        f"  {'FAIL' if top else 'PASS'}"
    )
    return not top and report["code"] == 0


# Times each phase of one `session list` process in CPU seconds of its main thread, and
# each bunsui model whose validator gets built (on first use) while the command runs.
PHASES_PROBE = """
import contextlib, io, json, sys, time
phases = [("interpreter start", time.thread_time())]
import typer, pydantic
phases.append(("import typer, pydantic (the baseline's work)", time.thread_time()))
class M(pydantic.BaseModel):
    x: int = 0
M(x=1)
phases.append(("first pydantic model defined and validated", time.thread_time()))
import bunsui_mcp.cli
phases.append(("import bunsui_mcp.cli (classes of every model it imports)", time.thread_time()))
from pydantic._internal import _model_construction
built = {{}}
complete = _model_construction.complete_model_class
def timed(cls, *args, **kwargs):
    started = time.thread_time()
    try:
        return complete(cls, *args, **kwargs)
    finally:
        if cls.__module__.startswith("bunsui"):
            built[cls.__qualname__] = time.thread_time() - started
_model_construction.complete_model_class = timed
with contextlib.redirect_stdout(io.StringIO()):
    code = bunsui_mcp.cli.main(["--home", {home!r}, "--format", "json", "session", "list"])
phases.append(("run `session list` (parse, gateway, audit, print)", time.thread_time()))
steps = [(name, now - before) for (_, before), (name, now) in zip(phases, phases[1:])]
print(json.dumps({{"code": code, "phases": [phases[0], *steps], "built": built}}))
"""


def phase_costs(home: Path, env: dict[str, str], repetitions: int) -> None:
    """Median CPU ms of each phase of one CLI process, then the validators the command
    built: what bunsui adds on top of a program that validates one pydantic model."""
    probe = PHASES_PROBE.format(home=str(home))
    runs = []
    for _ in range(repetitions + 1):  # the first one warms the home (policy cache)
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    runs = runs[1:]
    print(
        f"\nwhere one in-process `session list` spends its CPU (main thread, median of "
        f"{repetitions}, ms)"
    )
    totals = [sum(seconds for _, seconds in run["phases"]) for run in runs]
    medians = []
    for index, (name, _) in enumerate(runs[0]["phases"]):
        medians.append(statistics.median(run["phases"][index][1] for run in runs) * 1000)
        print(f"  {medians[-1]:7.1f}  {name}")
    print(f"  {statistics.median(totals) * 1000:7.1f}  total")
    print(
        f"  with bunsui's own two phases at zero, CPU ratio to the baseline would be "
        f"{sum(medians[:3]) / sum(medians[:2]):.2f}: the first pydantic model alone"
    )
    built = runs[-1]["built"]
    print(
        f"  validators built while the command ran: {len(built)}, "
        f"{sum(built.values()) * 1000:.1f} ms: "
        + ", ".join(f"{name} {seconds * 1000:.1f}" for name, seconds in built.items())
    )


def main() -> int:
    """Startup ratio, import table, forbidden-import check; exit 1 when a target is missed."""
    print(
        f"CLI startup: `bunsui session list` (empty home, json) vs "
        f"`python -c 'import typer, pydantic'`, {REPETITIONS} alternated runs + warm-up"
    )
    print(
        f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="bunsui-bench-cli-") as tmp:
        home = Path(tmp) / "home"
        runtime = Path(tmp) / "run"
        cached = _cli_server.private(environment(Path(tmp) / "pycache"), runtime)
        as_is = _cli_server.private(environment(None), runtime)
        cli = [bunsui_executable(), "--home", str(home), "--format", "json", "session", "list"]
        baseline = [sys.executable, "-c", "import typer, pydantic"]
        # `import pydantic` is lazy: the first BaseModel subclass pulls in most of pydantic.
        pydantic_in_use = [sys.executable, "-c", PYDANTIC_IN_USE]
        try:
            server = _cli_server.start(cli[0], cached)
            runs: dict[str, Callable[[], tuple[float, float]]] = {
                "baseline": lambda: timed(baseline, cached),
                "cli": lambda: timed(cli, cached, server),
                "cli, in-process": lambda: timed(cli, _cli_server.in_process(cached)),
                "typer + one pydantic model": lambda: timed(pydantic_in_use, cached),
            }
            no_cache = os.environ.get("PYTHONDONTWRITEBYTECODE")
            if no_cache:
                runs["cli, in-process, no bytecode cache"] = lambda: timed(
                    cli, _cli_server.in_process(as_is)
                )
            times = alternate(runs, REPETITIONS)
        finally:
            _cli_server.stop(str(runtime))
        walls = {name: statistics.median(wall) for name, (wall, _) in times.items()}
        cpus = {name: statistics.median(cpu) for name, (_, cpu) in times.items()}
        for name, (wall, _cpu) in times.items():
            print(
                f"  {name:28s} median {walls[name] * 1000:7.1f} ms  "
                f"(min {min(wall) * 1000:.1f}, max {max(wall) * 1000:.1f})  "
                f"CPU median {cpus[name] * 1000:7.1f} ms"
            )
        ratio = walls["cli"] / walls["baseline"]
        ok = ratio <= TARGET_RATIO
        print(
            f"  ratio cli/baseline = {ratio:.2f}  (target <= {TARGET_RATIO})  "
            f"{'PASS' if ok else 'FAIL'}   [served by the CLI server; a user's first call, "
            f"in-process: {walls['cli, in-process'] / walls['baseline']:.2f}]"
        )
        floor = "typer + one pydantic model"
        inproc = "cli, in-process"
        print(
            f"  CPU ratio cli/baseline = {cpus['cli'] / cpus['baseline']:.2f} (client and fork), "
            f"in-process {cpus[inproc] / cpus['baseline']:.2f}  "
            "[less sensitive to other processes on a shared machine]"
        )
        print(
            f"  for reference: in-process / ({floor}) = {walls[inproc] / walls[floor]:.2f} "
            f"wall, {cpus[inproc] / cpus[floor]:.2f} CPU; ({floor}) / baseline = "
            f"{walls[floor] / walls['baseline']:.2f} wall, {cpus[floor] / cpus['baseline']:.2f} "
            "CPU  [pydantic's deferred import cost, paid by any pydantic program]"
        )
        if no_cache:
            print(
                "  note: this shell sets PYTHONDONTWRITEBYTECODE, so an editable install "
                "recompiles bunsui's sources on every call; the ratio uses a bytecode "
                "cache, as a regular install has"
            )

        phase_costs(home, _cli_server.in_process(cached), REPETITIONS)
        print_import_table(import_costs(_cli_server.in_process(cached)))
        clean = check_forbidden(home, _cli_server.in_process(cached))
    passed = ok and clean
    print(f"\nverdict: {'all targets met' if passed else 'TARGET MISSED'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
