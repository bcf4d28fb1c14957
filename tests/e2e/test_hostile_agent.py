"""A hostile agent against the real `bunsui-mcp` over stdio: oversized arguments, files it
should not read, secrets it should not see."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from mcp import Client, StdioServerParameters

from tests.conftest import command_job, etl_pipeline, pipeline_data
from tests.e2e.test_cli import Cli

BUNSUI_MCP = str(Path(sys.executable).parent / "bunsui-mcp")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def server(cli: Cli, *args: str, cwd: Path | None = None) -> StdioServerParameters:
    """The real server as the agent `ai-agent`, on this home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")}
    env["BUNSUI_HOME"] = str(cli.home)
    return StdioServerParameters(
        command=BUNSUI_MCP, args=list(args), env=env, cwd=str(cwd) if cwd else None
    )


async def tool_error(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """The coded error a call must end in."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return result.structured_content


class TestOversizedArguments:
    @pytest.mark.slow
    def test_concurrent_15_mb_ids_are_refused_fast_and_never_hold_the_write_lock(self, cli):
        """Four concurrent session_describe calls with 15 MB ids are INVALID_ARGUMENT within
        seconds; meanwhile another process always gets the write lock within 1 s, and each
        audit entry keeps a few hundred bytes plus the hash of the call."""
        cli.json("session", "list")  # creates the database
        huge = "ses-" + "x" * 15_000_000
        waits: list[float] = []
        stop = threading.Event()

        def writer() -> None:
            db = sqlite3.connect(cli.home / "bunsui.db", timeout=5, isolation_level=None)
            while not stop.is_set():
                started = time.monotonic()
                db.execute("BEGIN IMMEDIATE")
                waits.append(time.monotonic() - started)
                db.execute("COMMIT")
                time.sleep(0.02)
            db.close()

        async def agent() -> list[dict[str, Any]]:
            errors: list[dict[str, Any]] = []
            async with Client(server(cli), mode="legacy") as client:

                async def describe() -> None:
                    errors.append(await tool_error(client, "session_describe", session_id=huge))

                async with anyio.create_task_group() as tasks:
                    for _ in range(4):
                        tasks.start_soon(describe)
            return errors

        thread = threading.Thread(target=writer)
        thread.start()
        started = time.monotonic()
        try:
            errors = anyio.run(agent)
        finally:
            stop.set()
            thread.join()
        elapsed = time.monotonic() - started
        assert [e["code"] for e in errors] == ["INVALID_ARGUMENT"] * 4
        assert elapsed < 30
        assert max(waits) < 1.0
        entries = cli.json("audit", "list", "--actor", "ai-agent")["entries"]
        assert [e["result"] for e in entries] == ["failed"] * 4
        for entry in entries:
            assert len(str(entry)) < 2000
            assert "15000004 chars, sha256" in entry["arguments"]["session_id"]
        cli.json("audit", "verify")


def etl_file(root: Path) -> Path:
    """A valid pipeline file under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "etl.yaml"
    path.write_text(Path(etl_pipeline(root)).read_text())
    return path


class TestPipelineRoots:
    def test_agent_reads_pipeline_files_only_under_the_roots(self, cli, tmp_path):
        """Under `--pipelines-dir`: a relative name resolves against the root (not the
        server's cwd) and validates; an absolute path elsewhere, `..`, and a symlink out of
        the root are PERMISSION_DENIED, audited as denied."""
        root = tmp_path / "pipelines"
        etl_file(root)
        outside = tmp_path / "private"
        etl_file(outside)
        (root / "link.yaml").symlink_to(outside / "etl.yaml")
        cwd = tmp_path / "cwd"
        etl_file(cwd)  # the same name in the server's cwd must not be what is read

        async def agent() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            async with Client(server(cli, "--pipelines-dir", str(root), cwd=cwd)) as client:
                valid = await client.call_tool("pipeline_validate", {"file": "etl.yaml"})
                refused = [
                    await tool_error(client, "pipeline_validate", file=name)
                    for name in (str(outside / "etl.yaml"), "../private/etl.yaml", "link.yaml")
                ]
                refused.append(await tool_error(client, "pipeline_run", pipeline="/etc/passwd"))
                return valid.structured_content, refused

        valid, refused = anyio.run(agent)
        assert valid["valid"] is True
        assert [e["code"] for e in refused] == ["PERMISSION_DENIED"] * 4
        entries = cli.json("audit", "list", "--actor", "ai-agent")["entries"]
        assert [e["result"] for e in entries] == ["allowed"] + ["denied"] * 4
        assert cli.json("approval", "list")["tickets"] == []

    def test_without_roots_an_agent_names_no_file(self, cli, tmp_path):
        """No root configured: every file an agent names is refused."""
        path = etl_file(tmp_path / "p")

        async def agent() -> dict[str, Any]:
            async with Client(server(cli)) as client:
                return await tool_error(client, "pipeline_validate", file=str(path))

        assert anyio.run(agent)["code"] == "PERMISSION_DENIED"

    def test_a_file_that_is_not_a_pipeline_is_never_echoed(self, cli, tmp_path):
        """A shadow-like file and a key: value config under the root give one generic
        problem; none of their keys or values come back."""
        root = tmp_path / "pipelines"
        root.mkdir()
        (root / "shadow").write_text("root:$6$salt$hash:19000:0:99999:7:::\nbin:*:19000::::::\n")
        (root / "secrets.yaml").write_text("db_password: hunter2\naws_secret: abc123\n")

        async def agent() -> list[dict[str, Any]]:
            async with Client(server(cli, "--pipelines-dir", str(root))) as client:
                return [
                    await tool_error(client, "pipeline_validate", file=name)
                    for name in ("shadow", "secrets.yaml")
                ]

        errors = anyio.run(agent)
        for error in errors:
            assert error["code"] == "PIPELINE_INVALID"
            assert len(error["details"]["problems"]) == 1
            text = json.dumps(error)
            for secret in ("salt", "hash", "bin", "db_password", "hunter2", "aws_secret"):
                assert secret not in text

    def test_a_fifo_nobody_writes_does_not_block_the_server(self, cli, tmp_path):
        """Ten validations of a FIFO with no writer all answer at once (PIPELINE_INVALID)
        and the server keeps serving."""
        root = tmp_path / "pipelines"
        etl_file(root)
        os.mkfifo(root / "kmsg.yaml")

        async def agent() -> tuple[list[dict[str, Any]], dict[str, Any]]:
            async with Client(server(cli, "--pipelines-dir", str(root))) as client:
                errors: list[dict[str, Any]] = []

                async def validate() -> None:
                    errors.append(await tool_error(client, "pipeline_validate", file="kmsg.yaml"))

                with anyio.fail_after(20):
                    async with anyio.create_task_group() as tasks:
                        for _ in range(10):
                            tasks.start_soon(validate)
                    after = await client.call_tool("pipeline_validate", {"file": "etl.yaml"})
                return errors, after.structured_content

        errors, after = anyio.run(agent)
        assert [e["code"] for e in errors] == ["PIPELINE_INVALID"] * 10
        assert after["valid"] is True


class TestLivePolicy:
    def test_a_running_server_applies_each_policy_change_to_its_next_call(self, cli, tmp_path):
        """Against one running bunsui-mcp: allowed, then revoked (PERMISSION_DENIED), then
        an invalid file (POLICY_INVALID for every call, closed), then `read_only: true`
        (a write is READ_ONLY), then allowed again."""
        cli.json("session", "list")
        policy = tmp_path / "policy.yaml"
        allow = (
            "ai_agent:\n  kind: agent\n  allowed_actions: [session:list, session:cancel]\n"
            "actors:\n  ai-agent: ai_agent\n"
        )
        revoke = allow.replace("[session:list, session:cancel]", "[session:cancel]")
        policy.write_text(allow)

        async def agent() -> list[str]:
            outcomes = []
            async with Client(server(cli, "--policy", str(policy))) as client:

                async def attempt(tool: str, **arguments: Any) -> None:
                    result = await client.call_tool(tool, arguments)
                    content = result.structured_content or {}
                    outcomes.append(content["code"] if result.is_error else "ok")

                await attempt("session_list")
                policy.write_text(revoke)
                await attempt("session_list")
                policy.write_text(allow + "  unknown-key: [\n")
                await attempt("session_list")
                await attempt("session_cancel", session_id="ses-000000000000")
                policy.write_text(allow + "read_only: true\n")
                await attempt("session_cancel", session_id="ses-000000000000")
                policy.write_text(allow)
                await attempt("session_list")
            return outcomes

        assert anyio.run(agent) == [
            "ok",
            "PERMISSION_DENIED",
            "POLICY_INVALID",
            "POLICY_INVALID",
            "READ_ONLY",
            "ok",
        ]


SECRET = "s3cr3t-" + "v" * 12
LEAKY = (
    "import sys\n"
    "sys.stderr.write('\\x1b[2J\\x1b]0;pwned\\x07\\u202egnp.exe\\n')\n"
    "raise KeyError('db_password')\n"
)


class TestWhatAgentsSee:
    def test_secrets_are_redacted_and_log_text_arrives_labelled_and_clean(self, cli, tmp_path):
        """A pipeline with a token in its env and an AWS key in its argv, whose job writes
        terminal escapes and a bidi override before failing: the agent sees neither secret,
        the error summary and every extracted context text carry the untrusted label, and
        neither the agent nor the human's terminal (table output) gets a control character."""
        root = tmp_path / "pipelines"
        root.mkdir()
        data = pipeline_data(
            command_job(
                "leaky",
                LEAKY,
                parameters={"env": {"API_TOKEN": SECRET, "LOG_LEVEL": "info"}},
            ),
            name="leaky",
        )
        data["jobs"][0]["operations"][0]["config"]["parameters"]["command"].append(
            "AKIAABCDEFGHIJKLMNOP"
        )
        (root / "leaky.yaml").write_text(yaml.safe_dump(data))
        session = cli.json("pipeline", "run", str(root / "leaky.yaml"), "--wait", expect=10)

        async def agent() -> list[dict[str, Any]]:
            async with Client(server(cli, "--pipelines-dir", str(root))) as client:
                return [
                    (await client.call_tool(tool, arguments)).structured_content
                    for tool, arguments in [
                        ("pipeline_describe", {"pipeline_id": "leaky"}),
                        ("job_describe", {"job_id": "leaky", "session_id": session["session_id"]}),
                        ("session_describe", {"session_id": session["session_id"]}),
                        ("session_list", {}),
                        ("error_analyze", {"session_id": session["session_id"]}),
                    ]
                ]

        described, job, detail, listed, analysis = anyio.run(agent)
        everything = json.dumps([described, job, detail, listed, analysis], ensure_ascii=False)
        assert SECRET not in everything
        assert "AKIAABCDEFGHIJKLMNOP" not in everything
        env = described["definition"]["jobs"][0]["operations"][0]["config"]["parameters"]["env"]
        assert env == {"API_TOKEN": "[redacted]", "LOG_LEVEL": "info"}
        for summary in (detail["error_summary"], listed["sessions"][0]["error_summary"]):
            assert summary["trust"] == "untrusted_pipeline_output"
        [error] = analysis["errors"]
        texts = [v for v in error["context"].values() if isinstance(v, dict)]
        assert texts
        assert all(v["trust"] == "untrusted_pipeline_output" for v in texts)
        assert not any(isinstance(v, str) for v in error["context"].values())
        assert "gnp.exe" in everything  # the text arrives, its control characters do not
        assert not any(c in everything for c in ("\x1b", "\u202e", "\x07", "pwned\x07"))
        table = cli.run("session", "list", fmt="table", env={"COLUMNS": "80"})
        shown = cli.run("error", "analyze", "--session-id", session["session_id"], fmt="yaml")
        for output in (table.stdout, shown.stdout):
            assert not any(c in output for c in ("\x1b", "\u202e", "\x07", "\x9b"))


class TestBoundedReads:
    @pytest.mark.slow
    def test_tail_of_a_200_mb_log_reads_backwards_in_small_memory(self, cli, tmp_path):
        """`job logs --tail-lines 1` of a 200 MB stdout log returns its last line, and the
        CLI process's own peak RSS stays under 100 MB."""
        data = pipeline_data(command_job("chatty", "print('first')"), name="chatty")
        (tmp_path / "chatty.yaml").write_text(yaml.safe_dump(data))
        session = cli.json("pipeline", "run", str(tmp_path / "chatty.yaml"), "--wait")
        [log] = cli.json(
            "job", "logs", "chatty", "--session-id", session["session_id"], "--stream", "stdout"
        )["logs"]
        runs = cli.store().list_operation_runs(session["session_id"], "chatty")
        path = Path(runs[0].attempts[-1].stdout_path)
        block = b"".join(b"row %08d of a very chatty job\n" % i for i in range(32768))
        with path.open("ab") as handle:
            while handle.tell() < 200 * 1024 * 1024:
                handle.write(block)
            handle.write(b"the very last line\n")
        env = {**os.environ, "BUNSUI_HOME": str(cli.home)}
        argv = [str(Path(sys.executable).parent / "bunsui"), "--format", "json", "job", "logs"]
        argv += ["chatty", "--session-id", session["session_id"], "--tail-lines", "1"]
        # A small launcher starts the CLI and reports its children's peak: wait4 of a child
        # forked straight from pytest would count pytest's own RSS (inherited at exec).
        launcher = (
            "import resource, subprocess, sys\n"
            "with open(sys.argv[1], 'wb') as out:\n"
            "    code = subprocess.call(sys.argv[2:], stdout=out, stderr=subprocess.DEVNULL)\n"
            "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        )
        launched = subprocess.run(
            [sys.executable, "-c", launcher, str(tmp_path / "out.json"), *argv],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        code, maxrss_kb = (int(field) for field in launched.stdout.split())
        assert code == 0
        tails = json.loads((tmp_path / "out.json").read_text())["logs"]
        assert [t["content"]["text"] for t in tails if t["stream"] == "stdout"] == [
            "the very last line"
        ]
        assert log["content"]["text"] == "first"
        peak_mb = maxrss_kb / 1024
        print(f"peak RSS of `job logs --tail-lines 1` on a 200 MB log: {peak_mb:.0f} MB")
        assert peak_mb < 100, f"peak RSS {peak_mb:.0f} MB"
