"""What `bunsui session list` loads: the real CLI script, its modules listed at exit.

Agents call the CLI many times; each call pays for every module it imports. A listing needs
the gateway, the store and the session actions: not the engine that runs sessions, the AWS
SDK, the MCP server library or the diagnosis model, and (once its policy was compiled) not
the YAML parser either.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bunsui_core.actions import RESOURCE_MODULES
from tests.e2e.test_cli import BUNSUI

NEVER = (
    "boto3",
    "botocore",
    "mcp",
    "numpy",
    "bunsui_core.diagnosis",
    "bunsui_core.recovery",
    "bunsui_core.store.dynamodb",
    "bunsui_mcp.server",
)
"""Packages (and their submodules) a listing must never import."""

JOB_IDENTITY = frozenset(
    {
        "bunsui_core.engine",
        "bunsui_core.engine.job_identity",
        "bunsui_core.engine.job_marks",
        "bunsui_core.engine.cgroups",
        "bunsui_core.engine.jobshim",
        "bunsui_core.engine.process_tree",
    }
)
"""The only engine modules a listing may load: the gateway asks on every call whether this
process runs inside a job (a job may never act as a human), which reads the shim's module
name, the process tree and cgroups. Nothing here runs or reaps a session."""


RUN_NEVER = (
    "boto3",
    "botocore",
    "mcp",
    "numpy",
    "bunsui_core.diagnosis.analyzer",
    "bunsui_core.diagnosis.classifier",
    "bunsui_core.diagnosis.model",
    "bunsui_core.engine.stepfunctions",
    "bunsui_core.store.dynamodb",
    "bunsui_mcp.server",
)
"""What `pipeline run --wait` of a pipeline that succeeds must never import: the local
engine runs it; nothing failed, so there is nothing to diagnose."""


PROBE = """
import gc, runpy, sys
from pathlib import Path
script, report, *args = sys.argv[1:]
sys.argv = [script, *args]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    Path(report).write_text("\\n".join(sorted(sys.modules)))
    Path(report + ".frozen").write_text(str(gc.get_freeze_count()))
    from pydantic import BaseModel
    models, built = [BaseModel], []
    while models:
        model = models.pop()
        models.extend(model.__subclasses__())
        if model.__module__.startswith("bunsui") and model.__pydantic_complete__:
            built.append(f"{model.__module__}.{model.__qualname__}")
    Path(report + ".models").write_text("\\n".join(sorted(built)))
"""
"""Runs the installed `bunsui` script as its own process would, then writes down every
module loaded (`-X importtime` misses those loaded through importlib, as actions are) and,
in a second file, every bunsui model whose validator was built (models build on first use)."""


def imported(home: Path, *args: str) -> list[str]:
    """Every module the real `bunsui` script loads for this command."""
    return probe(home, *args)[0]


def probe(home: Path, *args: str, env: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """The modules the real `bunsui` script loads for this command in-process, and the
    bunsui models whose validators it builds. In-process is what a user's first call pays
    for (and every call with the CLI server off); served calls load nothing of bunsui's in
    the calling process (tests/e2e/test_cli_server.py)."""
    report = home.parent / "modules.txt"
    env = env or {
        **{k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")},
        "BUNSUI_CLI_SERVER": "0",
    }
    argv = [BUNSUI, str(report), "--home", str(home), "--format", "json", *args]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().startswith("{"), done.stdout
    return report.read_text().split(), Path(f"{report}.models").read_text().split()


def schema_names(path: str) -> set[str]:
    """The model at `module.Name` and every model its validator checks, by name."""
    module, _, name = path.rpartition(".")
    schema = getattr(importlib.import_module(module), name).model_json_schema()
    return {schema.get("title", name), *schema.get("$defs", {})}


def within(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    """The modules that are one of `packages` or inside one."""
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)]


def forbidden(modules: list[str]) -> list[str]:
    """The modules a listing must not load, among those given."""
    return [
        m
        for m in modules
        if m in within(modules, NEVER)
        or (m.startswith("bunsui_core.engine") and m not in JOB_IDENTITY)
    ]


class TestSessionListImports:
    def test_a_listing_loads_no_engine_aws_mcp_or_diagnosis(self, tmp_path: Path):
        """On an empty home, and again once the home exists: the second call also finds its
        compiled policy in the home's cache and never imports the YAML parser."""
        home = tmp_path / "home"
        first = imported(home, "session", "list")
        second = imported(home, "session", "list")
        assert "bunsui_core.actions.sessions" in first  # the probe sees bunsui's own imports
        assert forbidden(first) == []
        assert forbidden(second) == []
        assert [m for m in second if m == "yaml" or m.startswith("yaml.")] == []

    def test_listing_an_empty_store_validates_no_session(self, tmp_path: Path):
        """A page holds sessions the store already parsed: listing builds the validators
        of its own input and output, and none that validates a stored Session (the
        largest schema there is) until a stored session is actually read."""
        _, built = probe(tmp_path / "home", "session", "list")
        assert "bunsui_core.actions.sessions.SessionListInput" in built  # the probe sees them
        assert [path for path in built if "Session" in schema_names(path)] == []

    def test_only_the_called_actions_module_is_loaded(self, tmp_path: Path):
        """`session list` loads the module declaring it, not the other session actions'
        (claims, reruns) nor any other resource's."""
        loaded = set(imported(tmp_path / "home", "session", "list"))
        assert "bunsui_core.actions.sessions" in loaded
        others = {f"bunsui_core.actions.{m}" for ms in RESOURCE_MODULES.values() for m in ms}
        assert sorted(loaded & others) == ["bunsui_core.actions.sessions"]

    @pytest.mark.parametrize("words", [("session",), ("session", "rerun-mny")])
    def test_a_group_or_a_mistyped_command_still_offers_every_command(
        self, tmp_path: Path, words: tuple[str, ...]
    ):
        """Only a known command is built alone: `bunsui session` lists every session
        command, and a typo gets suggestions from all of them."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")}
        done = subprocess.run(
            [BUNSUI, "--home", str(tmp_path / "home"), *words],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        output = done.stdout + done.stderr
        if len(words) == 1:
            assert done.returncode == 0
            for verb in ("list", "describe", "claim", "rerun", "watch"):
                assert f"  {verb} " in output, output
        else:
            assert done.returncode == 2
            assert "Did you mean 'rerun-many', 'rerun'?" in output, output


class TestPipelineRunStartup:
    def test_a_run_that_succeeds_loads_no_aws_mcp_or_diagnosis_model(self, tmp_path: Path):
        """`pipeline run --wait` of jobs that succeed loads the local engine and nothing
        for the cloud, the MCP server or diagnosing failures; the CLI froze its heap (the
        collector does not scan the imported modules again during the run nor at exit)."""
        pipeline = tmp_path / "ok.yaml"
        pipeline.write_text(
            "name: ok\njobs:\n  - job_id: only\n    operations:\n      - operation_id: op\n"
            "        config:\n          operation_type: command\n"
            '          parameters: {command: ["true"]}\n'
        )
        modules = imported(tmp_path / "home", "pipeline", "run", str(pipeline), "--wait")
        assert "bunsui_core.engine.local" in modules  # the probe sees the engine run
        assert within(modules, RUN_NEVER) == []
        frozen = int((tmp_path / "modules.txt.frozen").read_text())
        assert frozen > 10_000, frozen
