"""The `bunsui` CLI as users run it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from bunsui_core.model.session import SessionStatus
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data

BUNSUI = str(Path(sys.executable).parent / "bunsui")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Cli:
    """Runs the real CLI against one bunsui home, JSON output unless told otherwise."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def run(
        self, *args: str, fmt: str = "json", timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "BUNSUI_HOME": str(self.home), **(env or {})}
        full_env.pop("BUNSUI_FORMAT", None) if env is None else None
        argv = [BUNSUI, *(["--format", fmt] if fmt else []), *args]
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=full_env, check=False
        )

    def json(self, *args: str, expect: int = 0, **kwargs: Any) -> dict[str, Any]:
        result = self.run(*args, **kwargs)
        assert result.returncode == expect, (result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        return json.loads(result.stdout)

    def store(self) -> SqliteStore:
        return SqliteStore(self.home / "bunsui.db")


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def write_pipeline(path: Path, data: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def wait_for(predicate: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by init) is not alive for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


class TestPipelineCommands:
    def test_validate_reports_every_problem_with_location(self, cli, tmp_path):
        """A broken file yields PIPELINE_INVALID listing each problem and its location."""
        data = pipeline_data(command_job("a", "pass", deps=["missing"]), command_job("a", "pass"))
        data["jobs"][1]["operations"][0]["config"]["parameters"].pop("command")
        data["jobs"][1]["surprise"] = True
        error = cli.json(
            "pipeline", "validate", write_pipeline(tmp_path / "p.yaml", data), expect=2
        )["error"]
        assert error["code"] == "PIPELINE_INVALID"
        locations = {p["location"] for p in error["details"]["problems"]}
        assert {
            "jobs[0].dependencies[0]",
            "jobs[1].job_id",
            "jobs[1].surprise",
            "jobs[1].operations[0].config.parameters.command",
        } <= locations

    def test_examples_validate(self, cli):
        """Every shipped example validates."""
        for path in sorted(EXAMPLES.glob("*/pipeline.yaml")):
            assert cli.json("pipeline", "validate", str(path))["valid"] is True

    def test_aws_style_file_validates_but_does_not_run_locally(self, cli, tmp_path):
        """Lambda/ECS pipelines validate unchanged; the local engine refuses them with a code."""
        data = {
            "name": "aws",
            "jobs": [
                {
                    "job_id": "x",
                    "name": "x",
                    "operations": [
                        {
                            "operation_id": "o",
                            "name": "o",
                            "config": {
                                "operation_type": "lambda",
                                "timeout_seconds": 30,
                                "resource_arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
                            },
                        }
                    ],
                    "dependencies": [],
                }
            ],
        }
        path = write_pipeline(tmp_path / "aws.yaml", data)
        assert cli.json("pipeline", "validate", path)["valid"] is True
        error = cli.json("pipeline", "run", path, "--wait", expect=8)["error"]
        assert error["code"] == "ENGINE_UNSUPPORTED"

    def test_register_versions_and_sessions_remember_theirs(self, cli, tmp_path):
        """Same content keeps its version, changed content gets a new one, sessions record it."""
        path = tmp_path / "p.yaml"
        write_pipeline(path, pipeline_data(command_job("a", "pass")))
        assert cli.json("pipeline", "register", str(path))["version"] == 1
        assert cli.json("pipeline", "register", str(path))["version"] == 1
        first = cli.json("pipeline", "run", str(path), "--wait")
        write_pipeline(path, pipeline_data(command_job("a", "print(2)")))
        assert cli.json("pipeline", "register", str(path))["version"] == 2
        second = cli.json("pipeline", "run", "test-pipeline", "--wait")
        assert (first["pipeline_version"], second["pipeline_version"]) == (1, 2)
        described = cli.json("pipeline", "describe", "test-pipeline", "--version", "1")
        assert (
            described["definition"]["jobs"][0]["operations"][0]["config"]["parameters"]["command"][
                -1
            ]
            == "pass"
        )


class TestRunAndExitCodes:
    def test_completed_run_exits_zero(self, cli, tmp_path):
        """`run --wait` prints the finished session and exits 0 when it completed."""
        path = write_pipeline(tmp_path / "ok.yaml", pipeline_data(command_job("a", "pass")))
        session = cli.json("pipeline", "run", path, "--wait")
        assert session["status"] == "completed"
        assert session["jobs"] == [
            {
                "job_id": "a",
                "status": "completed",
                "started_at": session["jobs"][0]["started_at"],
                "finished_at": session["jobs"][0]["finished_at"],
                "skipped_reason": None,
            }
        ]

    def test_failed_run_exits_ten_and_lists_as_failed(self, cli):
        """A failing example exits 10 and shows in `session list --filter status=failed`."""
        failed = cli.json(
            "pipeline", "run", str(EXAMPLES / "data_quality" / "pipeline.yaml"), "--wait", expect=10
        )
        listing = cli.json("session", "list", "--filter", "status=failed")
        [entry] = listing["sessions"]
        assert set(entry) == {
            "session_id",
            "pipeline_id",
            "status",
            "failed_jobs",
            "created_at",
            "error_summary",
            "claimed_by",
            "claim_expires_at",
            "escalated",
        }
        assert (entry["claimed_by"], entry["escalated"]) == (None, False)
        assert entry["session_id"] == failed["session_id"]
        assert entry["failed_jobs"] == ["validate"]
        assert entry["error_summary"]["trust"] == "untrusted_pipeline_output"
        assert "line 7" in entry["error_summary"]["text"]
        assert cli.json("session", "list", "--filter", "status=completed")["sessions"] == []

    @pytest.mark.parametrize(
        "args",
        [
            ("--filter", "colour=red"),
            ("--filter", "status=exploded"),
            ("--filter", "nokey"),
            ("--limit", "0"),
            ("--limit", "many"),
            ("--cursor", "not-a-cursor"),
        ],
    )
    def test_bad_list_arguments_are_invalid_argument(self, cli, args):
        """Bad filters, limits and cursors give INVALID_ARGUMENT (exit 2), never a traceback."""
        error = cli.json("session", "list", *args, expect=2)["error"]
        assert error["code"] == "INVALID_ARGUMENT"

    def test_pagination_walks_every_session_once(self, cli, tmp_path):
        """limit + next_cursor visit all sessions newest first without repeats."""
        path = write_pipeline(tmp_path / "ok.yaml", pipeline_data(command_job("a", "pass")))
        made = [cli.json("pipeline", "run", path, "--wait")["session_id"] for _ in range(3)]
        seen: list[str] = []
        cursor: list[str] = []
        while True:
            page = cli.json("session", "list", "--limit", "2", *cursor)
            seen += [s["session_id"] for s in page["sessions"]]
            if not page["next_cursor"]:
                break
            cursor = ["--cursor", page["next_cursor"]]
        assert seen == list(reversed(made))

    def test_reruns_with_wait_exit_by_the_new_sessions_outcome(self, cli):
        """`job rerun --wait` and `session rerun --wait` of a still-failing session exit 10,
        and a single-session rerun answers the flat rerun shape."""
        failed = cli.json(
            "pipeline", "run", str(EXAMPLES / "data_quality" / "pipeline.yaml"), "--wait", expect=10
        )["session_id"]
        job = cli.json("job", "rerun", "validate", "--session-id", failed, "--wait", expect=10)
        assert job["status"] == "failed"
        session = cli.json("session", "rerun", failed, "--strategy", "full", "--wait", expect=10)
        assert {
            "rerun_id",
            "session_id",
            "original_session_id",
            "strategy",
            "skipped_jobs",
            "jobs_to_run",
            "status",
            "estimated_duration_minutes",
        } <= set(session)
        assert (session["original_session_id"], session["status"]) == (failed, "failed")

    def test_unknown_ids_are_not_found(self, cli):
        """Unknown sessions and jobs answer NOT_FOUND with exit 3."""
        assert cli.json("session", "describe", "ses-nope", expect=3)["error"]["code"] == "NOT_FOUND"
        assert cli.json("job", "logs", "x", "--session-id", "ses-nope", expect=3)

    def test_table_errors_are_human_text_on_stderr(self, cli):
        """In table format an error is one readable line on stderr, nothing on stdout."""
        result = cli.run("session", "describe", "ses-nope", fmt="table")
        assert result.returncode == 3
        assert result.stdout == ""
        assert result.stderr.startswith("error NOT_FOUND: session ses-nope not found")

    def test_usage_errors_are_coded(self, cli):
        """Unknown commands and missing arguments are INVALID_ARGUMENT in the chosen format."""
        for args in (("session", "explode"), ("pipeline", "validate")):
            assert cli.json(*args, expect=2)["error"]["code"] == "INVALID_ARGUMENT"

    def test_yaml_format_and_environment_default(self, cli):
        """--format yaml and BUNSUI_FORMAT=yaml both print YAML; a bad BUNSUI_FORMAT is coded."""
        flag = cli.run("session", "list", fmt="yaml")
        assert yaml.safe_load(flag.stdout) == {"sessions": [], "next_cursor": None}
        env = cli.run("session", "list", fmt="", env={"BUNSUI_FORMAT": "yaml"})
        assert yaml.safe_load(env.stdout) == {"sessions": [], "next_cursor": None}
        bad = cli.run("session", "list", fmt="", env={"BUNSUI_FORMAT": "xml"})
        assert bad.returncode == 2
        assert "BUNSUI_FORMAT" in bad.stderr + bad.stdout


class TestStoreFailures:
    def test_corrupt_database_is_store_corrupt(self, cli):
        """A database file that is not SQLite gives STORE_CORRUPT (exit 7) and is left as is."""
        cli.home.mkdir(parents=True)
        db = cli.home / "bunsui.db"
        db.write_bytes(b"this is not a database" * 100)
        error = cli.json("session", "list", expect=7)["error"]
        assert error["code"] == "STORE_CORRUPT"
        assert db.read_bytes() == b"this is not a database" * 100

    def test_locked_database_is_store_locked(self, cli, tmp_path):
        """A write while another process holds the write lock gives STORE_LOCKED (exit 7)."""
        cli.json("session", "list")
        holder = sqlite3.connect(cli.home / "bunsui.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            path = write_pipeline(tmp_path / "ok.yaml", pipeline_data(command_job("a", "pass")))
            error = cli.json("pipeline", "register", path, expect=7, timeout=30)["error"]
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert error["code"] == "STORE_LOCKED"


class TestDetachedRuns:
    def test_detached_run_returns_at_once_and_watch_reports_outcome(self, cli, tmp_path):
        """Without --wait the session id comes back queued; `session watch` exits 0 at the end."""
        path = write_pipeline(
            tmp_path / "slow.yaml", pipeline_data(command_job("a", "import time; time.sleep(1)"))
        )
        started = time.monotonic()
        session = cli.json("pipeline", "run", path)
        assert time.monotonic() - started < 5
        assert session["status"] in {"queued", "running"}
        watched = cli.json("session", "watch", session["session_id"], "--interval", "0.2")
        assert watched["status"] == "completed"

    @pytest.mark.slow
    def test_cancel_stops_a_detached_session(self, cli, tmp_path):
        """`session cancel` ends a running session; its process dies and watch exits 12."""
        pid_file = tmp_path / "pid"
        path = write_pipeline(
            tmp_path / "long.yaml",
            pipeline_data(
                command_job(
                    "long",
                    f"import os, time, pathlib; pathlib.Path({str(pid_file)!r})"
                    ".write_text(str(os.getpid())); time.sleep(60)",
                )
            ),
        )
        session_id = cli.json("pipeline", "run", path)["session_id"]
        wait_for(pid_file.exists)
        cancelled = cli.json("session", "cancel", session_id)
        assert cancelled["status"] == "cancelled"
        assert cli.json("session", "watch", session_id, expect=12)["status"] == "cancelled"
        pid = int(pid_file.read_text())
        wait_for(lambda: not process_alive(pid))
        again = cli.json("session", "cancel", session_id)
        assert again["status"] == "cancelled"

    def test_cancel_of_a_finished_session_is_refused(self, cli, tmp_path):
        """A completed session cannot be cancelled: INVALID_TRANSITION, exit 4."""
        path = write_pipeline(tmp_path / "ok.yaml", pipeline_data(command_job("a", "pass")))
        session_id = cli.json("pipeline", "run", path, "--wait")["session_id"]
        error = cli.json("session", "cancel", session_id, expect=4)["error"]
        assert error["code"] == "INVALID_TRANSITION"

    @pytest.mark.slow
    def test_killed_runner_is_detected_as_runner_lost(self, cli, tmp_path):
        """kill -9 of the runner: the session becomes failed/RUNNER_LOST and its child is killed."""
        pid_file = tmp_path / "pid"
        path = write_pipeline(
            tmp_path / "long.yaml",
            pipeline_data(
                command_job(
                    "long",
                    f"import os, time, pathlib; pathlib.Path({str(pid_file)!r})"
                    ".write_text(str(os.getpid())); time.sleep(60)",
                )
            ),
        )
        session_id = cli.json("pipeline", "run", path)["session_id"]
        wait_for(pid_file.exists)
        store = cli.store()
        runner_pid = store.get_session(session_id).runner.pid
        store.close()
        os.kill(runner_pid, signal.SIGKILL)
        wait_for(lambda: not process_alive(runner_pid))

        session = cli.json("session", "describe", session_id)
        assert session["status"] == SessionStatus.FAILED
        assert session["error_code"] == "RUNNER_LOST"
        assert session["failed_jobs"] == ["long"]
        wait_for(lambda: not process_alive(int(pid_file.read_text())))


class TestJobCommands:
    def test_job_list_describe_and_logs(self, cli):
        """Jobs show attempts and limits; logs come back labelled as untrusted pipeline output."""
        session = cli.json(
            "pipeline", "run", str(EXAMPLES / "nightly_etl" / "pipeline.yaml"), "--wait", expect=10
        )
        sid = session["session_id"]
        jobs = {j["job_id"]: j for j in cli.json("job", "list", "--session-id", sid)["jobs"]}
        assert list(jobs) == ["extract", "transform", "load"]
        [transform_op] = jobs["transform"]["operations"]
        assert transform_op["memory_limit_mb"] == 128
        # Resident memory past the limit is an OOM kill (SIGKILL, exit 137), as in a container.
        assert (transform_op["exit_code"], transform_op["signal"]) == (None, 9)
        detail = cli.json("job", "describe", "transform", "--session-id", sid)
        [attempt] = detail["operations"][0]["attempts"]
        assert attempt["oom_killed"] is True
        assert attempt["memory_enforcement"] in {"cgroup_v2", "cgroup_v1", "watchdog"}
        assert attempt["peak_rss_mb"] >= 128
        assert attempt["stderr_tail"]["trust"] == "untrusted_pipeline_output"
        logs = cli.json("job", "logs", "transform", "--session-id", sid, "--stream", "stdout")
        [excerpt] = logs["logs"]
        assert excerpt["content"]["trust"] == "untrusted_pipeline_output"
        assert excerpt["content"]["text"].startswith("staging a batch of 36000 slots")


class TestStartup:
    def test_cli_import_does_not_load_boto3_or_mcp(self):
        """The CLI stays fast: importing it loads neither boto3 nor the MCP SDK."""
        code = (
            "import sys, bunsui_mcp.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in {'boto3', 'botocore', "
            "'mcp', 'rich'}))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"
