"""The local engine with real child processes: order, limits, timeouts, retries, cancel."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from bunsui_core.config import Settings
from bunsui_core.engine.local import LocalEngine
from bunsui_core.model.session import FailureKind, RunStatus, SessionStatus
from bunsui_core.store.base import update_session
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import PY, command_job, pipeline_data, queue_session

ALLOCATE_200_MIB = (
    "b = bytearray(200 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('allocated')"
)


def run(store: SqliteStore, settings: Settings, data: dict) -> str:
    """Run a pipeline to its end in the foreground; returns the session id."""
    session = queue_session(store, data)
    LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
    return session.session_id


def job_status(store: SqliteStore, session_id: str) -> dict[str, RunStatus]:
    return {r.job_id: r.status for r in store.list_job_runs(session_id)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class TestOrderAndConcurrency:
    def test_dependencies_run_first_and_cap_is_respected(self, store, settings, tmp_path):
        """Jobs start only after their dependencies end, and never more than the cap at once."""
        spans = tmp_path / "spans"
        spans.mkdir()
        record = (
            "import os, time, pathlib\n"
            f"p = pathlib.Path({str(spans)!r}) / os.environ['BUNSUI_JOB_ID']\n"
            "start = time.time(); time.sleep(0.3)\n"
            "p.write_text(f'{start} {time.time()}')"
        )
        jobs = [command_job(f"j{i}", record) for i in range(5)]
        jobs.append(command_job("after", record, deps=["j0", "j1"]))
        session_id = run(store, settings, pipeline_data(*jobs, max_concurrent_jobs=2))

        assert store.get_session(session_id).status is SessionStatus.COMPLETED
        times = {p.name: tuple(map(float, p.read_text().split())) for p in spans.iterdir()}
        assert times["after"][0] >= max(times["j0"][1], times["j1"][1])
        for job, (start, _end) in times.items():
            overlapping = [o for o, (s, e) in times.items() if s <= start < e and o != job]
            assert len(overlapping) <= 1, f"{job} overlapped {overlapping}"

    def test_failure_marks_downstream_upstream_failed(self, store, settings):
        """A failed job blocks its dependents while independent jobs still complete."""
        session_id = run(
            store,
            settings,
            pipeline_data(
                command_job("bad", "raise SystemExit(3)"),
                command_job("child", "pass", deps=["bad"]),
                command_job("grandchild", "pass", deps=["child"]),
                command_job("independent", "pass"),
            ),
        )
        session = store.get_session(session_id)
        assert session.status is SessionStatus.FAILED
        assert session.failed_jobs == ["bad"]
        assert job_status(store, session_id) == {
            "bad": RunStatus.FAILED,
            "child": RunStatus.UPSTREAM_FAILED,
            "grandchild": RunStatus.UPSTREAM_FAILED,
            "independent": RunStatus.COMPLETED,
        }
        [error] = store.list_errors(session_id)
        assert error.kind is FailureKind.EXIT_NONZERO
        assert error.context["exit_code"] == 3


class TestProcessContract:
    def test_environment_reaches_the_process(self, store, settings, tmp_path):
        """Parameters, ids, attempt, work dir, upstream dirs and the pipeline's state dir
        (already made) arrive in the environment."""
        dump = (
            "import json, os, pathlib\n"
            "keys = ['BUNSUI_PARAMS', 'BUNSUI_SESSION_ID', 'BUNSUI_JOB_ID', 'BUNSUI_OPERATION_ID',"
            " 'BUNSUI_ATTEMPT', 'BUNSUI_WORKDIR', 'BUNSUI_UPSTREAM_DIRS', 'GREETING']\n"
            "found = {k: os.environ.get(k) for k in keys}\n"
            "found['state_is_dir'] = os.path.isdir(os.environ['BUNSUI_STATE_DIR'])\n"
            "pathlib.Path(os.environ['BUNSUI_WORKDIR'], 'env.json').write_text(json.dumps(found))"
        )
        write = (
            "import os, pathlib; pathlib.Path(os.environ['BUNSUI_WORKDIR'], 'x').write_text('1')"
        )
        session_id = run(
            store,
            settings,
            pipeline_data(
                command_job("up", write),
                command_job(
                    "down",
                    dump,
                    deps=["up"],
                    parameters={"batch_size": 500, "env": {"GREETING": "hi"}},
                ),
            ),
        )
        down = next(r for r in store.list_job_runs(session_id) if r.job_id == "down")
        env = json.loads((Path(down.workdir) / "env.json").read_text())
        assert json.loads(env["BUNSUI_PARAMS"]) == {"batch_size": 500}
        assert env["BUNSUI_SESSION_ID"] == session_id
        assert (env["BUNSUI_JOB_ID"], env["BUNSUI_OPERATION_ID"]) == ("down", "down-op")
        assert env["BUNSUI_ATTEMPT"] == "1"
        assert env["GREETING"] == "hi"
        assert env["state_is_dir"] is True
        upstream = json.loads(env["BUNSUI_UPSTREAM_DIRS"])
        assert (Path(upstream["up"]) / "x").read_text() == "1"

    def test_string_command_is_split_not_shelled(self, store, settings):
        """A string command is split like argv: shell syntax reaches the program literally."""
        data = pipeline_data(command_job("echo", "pass"))
        op = data["jobs"][0]["operations"][0]["config"]["parameters"]
        op["command"] = f"{PY} -c \"import sys; print(sys.argv[1:])\" '$HOME' ';' rm"
        session_id = run(store, settings, data)
        [op_run] = store.list_operation_runs(session_id)
        assert op_run.attempts[0].stdout_tail.strip() == "['$HOME', ';', 'rm']"

    def test_missing_program_is_a_spawn_failure(self, store, settings):
        """A command that cannot start fails the job with a spawn_failed error record."""
        data = pipeline_data(command_job("ghost", "pass"))
        data["jobs"][0]["operations"][0]["config"]["parameters"]["command"] = [
            "/nonexistent/bunsui-test-binary"
        ]
        session_id = run(store, settings, data)
        [error] = store.list_errors(session_id)
        assert error.kind is FailureKind.SPAWN_FAILED
        assert store.get_session(session_id).status is SessionStatus.FAILED

    def test_a_job_the_engine_cannot_prepare_fails_on_record(self, store, settings):
        """Its work directory cannot be made (a file holds its name): before any process
        started, the job is stored failed and finished with the reason, the session ends
        failed, and the other job still runs."""
        session = queue_session(
            store, pipeline_data(command_job("blocked", "pass"), command_job("fine", "pass"))
        )
        job_dir = settings.session_dir(session.session_id) / "jobs" / "blocked"
        job_dir.mkdir(parents=True)
        (job_dir / "work").write_text("not a directory")
        LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)

        final = store.get_session(session.session_id)
        assert final.status is SessionStatus.FAILED
        assert final.failed_jobs == ["blocked"]
        runs = {r.job_id: r for r in store.list_job_runs(session.session_id)}
        assert runs["blocked"].status is RunStatus.FAILED
        assert runs["blocked"].finished_at is not None
        assert runs["fine"].status is RunStatus.COMPLETED
        [error] = store.list_errors(session.session_id)
        assert error.job_id == "blocked"
        assert error.kind is FailureKind.SPAWN_FAILED
        assert "FileExistsError" in error.message


class TestLimits:
    @pytest.mark.slow
    def test_memory_limit_really_fails_and_more_memory_passes(self, store, settings):
        """A 200 MiB allocation is OOM-killed under a 96 MiB limit and succeeds under 512."""
        small = run(
            store,
            settings,
            pipeline_data(command_job("alloc", ALLOCATE_200_MIB, parameters={"memory": 96})),
        )
        big = run(
            store,
            settings,
            pipeline_data(command_job("alloc", ALLOCATE_200_MIB, parameters={"memory": 512})),
        )

        assert store.get_session(small).status is SessionStatus.FAILED
        [error] = store.list_errors(small)
        assert error.context["oom_killed"] is True
        assert error.context["memory_limit_mb"] == 96
        assert store.get_session(big).status is SessionStatus.COMPLETED
        [op_run] = store.list_operation_runs(big)
        assert op_run.attempts[0].peak_rss_mb >= 190

    @pytest.mark.slow
    def test_timeout_kills_the_whole_process_group(self, store, settings, tmp_path):
        """On timeout the command and its background grandchild are both killed, promptly."""
        pid_file = tmp_path / "grandchild.pid"
        code = (
            "import subprocess, sys, time, pathlib\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))\n"
            "time.sleep(60)"
        )
        started = time.monotonic()
        session_id = run(
            store, settings, pipeline_data(command_job("sleepy", code, timeout_seconds=1))
        )
        assert time.monotonic() - started < 10
        assert job_status(store, session_id) == {"sleepy": RunStatus.TIMEOUT}
        [error] = store.list_errors(session_id)
        assert error.kind is FailureKind.TIMEOUT
        grandchild = int(pid_file.read_text())
        deadline = time.monotonic() + 5
        while _alive(grandchild) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(grandchild)

    @pytest.mark.slow
    def test_pipeline_timeout_stops_the_session(self, store, settings):
        """A session running past the pipeline's timeout_seconds ends in status timeout."""
        session_id = run(
            store,
            settings,
            pipeline_data(command_job("long", "import time; time.sleep(60)"), timeout_seconds=1),
        )
        session = store.get_session(session_id)
        assert session.status is SessionStatus.TIMEOUT
        kinds = [e.kind for e in store.list_errors(session_id)]
        assert FailureKind.SESSION_TIMEOUT in kinds


class TestRetries:
    def test_transient_failure_is_retried_until_it_passes(self, store, settings):
        """An operation failing on attempt 1 succeeds on attempt 2; both attempts are recorded."""
        flaky = "import os, sys; sys.exit(1 if os.environ['BUNSUI_ATTEMPT'] == '1' else 0)"
        session_id = run(
            store,
            settings,
            pipeline_data(
                command_job("flaky", flaky, retry={"max_attempts": 3, "interval_seconds": 0.05})
            ),
        )
        assert store.get_session(session_id).status is SessionStatus.COMPLETED
        [op_run] = store.list_operation_runs(session_id)
        assert [a.status for a in op_run.attempts] == [RunStatus.FAILED, RunStatus.COMPLETED]
        assert [e.attempt for e in store.list_errors(session_id)] == [1]

    def test_retries_stop_at_max_attempts(self, store, settings):
        """A permanently failing operation is tried exactly max_attempts times."""
        session_id = run(
            store,
            settings,
            pipeline_data(
                command_job(
                    "broken",
                    "raise SystemExit(1)",
                    retry={"max_attempts": 3, "interval_seconds": 0},
                )
            ),
        )
        [op_run] = store.list_operation_runs(session_id)
        assert len(op_run.attempts) == 3
        assert store.get_session(session_id).status is SessionStatus.FAILED


class TestCancel:
    @pytest.mark.slow
    def test_cancel_from_elsewhere_kills_running_work(self, store, settings):
        """Cancelling through the store stops a running session and its processes quickly."""
        session = queue_session(
            store,
            pipeline_data(
                command_job("long", "import time; time.sleep(60)"),
                command_job("after", "pass", deps=["long"]),
            ),
        )
        engine = LocalEngine(store, settings, poll_seconds=0.05)
        thread = threading.Thread(target=engine.run, args=(session.session_id,))
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            r.status is RunStatus.RUNNING for r in store.list_operation_runs(session.session_id)
        ):
            time.sleep(0.05)
        update_session(
            store,
            session.session_id,
            lambda s: s.model_copy(update={"status": SessionStatus.CANCELLED}),
        )
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert store.get_session(session.session_id).status is SessionStatus.CANCELLED
        assert job_status(store, session.session_id) == {
            "long": RunStatus.CANCELLED,
            "after": RunStatus.CANCELLED,
        }
