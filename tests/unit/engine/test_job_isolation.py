"""A job's boundaries, with real processes: what it inherits, and that nothing it starts
outlives it (setsid and double forks included), also when a session is cancelled."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from bunsui_core.config import EngineSettings, Settings
from bunsui_core.engine._process import LiveProcessGroups, ProcessSpec, run_process
from bunsui_core.engine.job_env import BASE_NAMES, job_environment
from bunsui_core.engine.local import LocalEngine, cancel_active_runs
from bunsui_core.errors import InvalidArgumentError, PipelineInvalidError, StoreError
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.session import RunStatus, SessionStatus
from bunsui_core.store.base import update_session
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import PY, command_job, pipeline_data, queue_session

DUMP_ENV = (
    "import json, os, pathlib\n"
    "out = pathlib.Path(os.environ['BUNSUI_WORKDIR'], 'env.json')\n"
    "out.write_text(json.dumps(dict(os.environ)))"
)


FAKE_SECRET = "not-a-real-key"  # noqa: S105 - a marker to look for, not a credential


def _alive(pid: int) -> bool:
    """True while the pid exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in {"Z", "X"}


def _run(store: SqliteStore, settings: Settings, data: dict) -> str:
    session = queue_session(store, data)
    LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
    return session.session_id


def _job_env(store: SqliteStore, session_id: str) -> dict[str, str]:
    [job_run] = store.list_job_runs(session_id)
    return json.loads((Path(job_run.workdir) / "env.json").read_text())


class TestEnvironmentAllowList:
    def test_allow_list_then_pipeline_env_then_run_variables(self):
        """Only allow-listed and passed names come through; run variables win over env."""
        launcher = {
            "PATH": "/bin",
            "LC_ALL": "C.UTF-8",
            "AWS_SECRET_ACCESS_KEY": "s3cr3t",
            "AWS_REGION": "eu-west-1",
            "BUNSUI_HOME": "/home/h/.bunsui",
        }
        env = job_environment(
            launcher,
            pass_env=["AWS_REGION"],
            pipeline_env={"BUNSUI_JOB_ID": "fake", "MODE": "x"},
            run_variables={"BUNSUI_JOB_ID": "real"},
        )
        assert env == {
            "PATH": "/bin",
            "LC_ALL": "C.UTF-8",
            "AWS_REGION": "eu-west-1",
            "MODE": "x",
            "BUNSUI_JOB_ID": "real",
        }
        assert "TZ" in BASE_NAMES
        assert "TMPDIR" in BASE_NAMES

    def test_launcher_secrets_stay_out_unless_passed(self, store, tmp_path, monkeypatch):
        """BUNSUI_HOME/POLICY/ACTOR, AWS keys and tokens never reach a job by default; the
        pipeline's pass_env (patterns too) and the config's pass_env let named ones in."""
        monkeypatch.setenv("BUNSUI_POLICY", "/etc/policy.yaml")
        monkeypatch.setenv("BUNSUI_ACTOR", "alice")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
        monkeypatch.setenv("AWS_REGION", "eu-west-1")
        monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        monkeypatch.setenv("SITE_ID", "42")
        settings = Settings(home=tmp_path / "home", engine=EngineSettings(pass_env=("SITE_ID",)))
        plain = _run(store, settings, pipeline_data(command_job("dump", DUMP_ENV)))
        passed = _run(
            store,
            settings,
            pipeline_data(command_job("dump", DUMP_ENV, parameters={"pass_env": ["AWS_*"]})),
        )

        env = _job_env(store, plain)
        for secret in ("BUNSUI_HOME", "BUNSUI_POLICY", "BUNSUI_ACTOR", "GITHUB_TOKEN"):
            assert secret not in env
        assert not any(name.startswith("AWS_") for name in env)
        assert env["TZ"] == "Asia/Tokyo"
        assert env["SITE_ID"] == "42"
        assert env["PATH"] == os.environ["PATH"]
        with_aws = _job_env(store, passed)
        assert with_aws["AWS_REGION"] == "eu-west-1"
        assert with_aws["AWS_SECRET_ACCESS_KEY"] == FAKE_SECRET
        assert "GITHUB_TOKEN" not in with_aws
        assert "pass_env" not in json.loads(with_aws["BUNSUI_PARAMS"])


LEAVE_BEHIND = """
import os, pathlib, subprocess, sys, time
pids = pathlib.Path({pid_file!r})
# A process in a new session, and a double-forked daemon: neither is in the job's group.
setsid = subprocess.Popen(["setsid", "sleep", "600"])
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        pids.with_suffix(".daemon").write_text(str(os.getpid()))
        time.sleep(600)
    os._exit(0)
time.sleep(0.3)
pids.write_text(str(setsid.pid))
"""


@pytest.mark.usefixtures("job_shim")
class TestNothingOutlivesItsJob:
    @pytest.mark.slow
    @pytest.mark.parametrize("enforcement", ["auto", "watchdog"])
    def test_setsid_and_double_fork_are_gone_when_the_job_ends(self, store, tmp_path, enforcement):
        """A job that leaves `setsid sleep 600` and a double-forked daemon behind completes,
        and both processes are gone by the time the job is recorded as ended, with a job
        cgroup (where the host has one) and with the process tree alone."""
        settings = Settings(
            home=tmp_path / "home", engine=EngineSettings(memory_enforcement=enforcement)
        )
        pid_file = tmp_path / "left.pid"
        session_id = _run(
            store,
            settings,
            pipeline_data(command_job("leaver", LEAVE_BEHIND.format(pid_file=str(pid_file)))),
        )
        assert store.get_session(session_id).status is SessionStatus.COMPLETED
        setsid_pid = int(pid_file.read_text())
        daemon_pid = int(pid_file.with_suffix(".daemon").read_text())
        assert not _alive(setsid_pid)
        assert not _alive(daemon_pid)

    def test_a_job_whose_start_cannot_be_recorded_does_not_run_on(self, tmp_path, job_shim):
        """Recording the start fails (the store, say) while the job runs a 600 s tree: the
        tree is killed and reaped before the failure reaches the caller; nothing runs
        untracked."""
        pid_file = tmp_path / "left.pid"
        spec = ProcessSpec(
            argv=[PY, "-c", LEAVE_BEHIND.format(pid_file=str(pid_file)) + "time.sleep(600)"],
            env={"PATH": os.environ["PATH"]},
            cwd=tmp_path,
            stdout_path=tmp_path / "out",
            stderr_path=tmp_path / "err",
        )

        def refuse(_pid: int) -> None:
            deadline = time.monotonic() + 20
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            raise RuntimeError("store unavailable")

        started = time.monotonic()
        with pytest.raises(RuntimeError, match="store unavailable"):
            run_process(spec, LiveProcessGroups(), on_start=refuse, shims=job_shim)
        assert time.monotonic() - started < 30
        assert not _alive(int(pid_file.read_text()))
        assert not _alive(int(pid_file.with_suffix(".daemon").read_text()))

    def test_a_store_failure_mid_run_kills_every_job_and_records_what_ended(
        self, settings, tmp_path
    ):
        """The store fails for good as the first job's end is saved, while another job runs a
        15 s tree: the runner kills that tree at once (it does not wait for the job nor leave
        it running unrecorded), stores every end it can once the store answers again and ends
        the session `failed`, the job never started `cancelled`, then raises the failure."""

        class FailingOnce(SqliteStore):
            failed = False

            def put_runs(self, job_runs=(), operation_runs=()):
                if not FailingOnce.failed and any(r.finished_at for r in job_runs):
                    FailingOnce.failed = True
                    raise StoreError("disk I/O error")
                super().put_runs(job_runs=job_runs, operation_runs=operation_runs)

        pid_file = tmp_path / "left.pid"
        store = FailingOnce(settings.database_path)
        session = queue_session(
            store,
            pipeline_data(
                command_job("quick", "import time; time.sleep(0.5)"),
                command_job("long", LEAVE_BEHIND.format(pid_file=str(pid_file)) + "time.sleep(15)"),
                command_job("after", "pass", deps=["quick", "long"]),
            ),
        )
        started = time.monotonic()
        try:
            with pytest.raises(StoreError, match="disk I/O error"):
                LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
            assert time.monotonic() - started < 10
            assert not _alive(int(pid_file.read_text()))
            assert not _alive(int(pid_file.with_suffix(".daemon").read_text()))
            assert store.get_session(session.session_id).status is SessionStatus.FAILED
            runs = {r.job_id: r.status for r in store.list_job_runs(session.session_id)}
            assert runs == {
                "quick": RunStatus.COMPLETED,
                "long": RunStatus.CANCELLED,
                "after": RunStatus.CANCELLED,
            }
        finally:
            store.close()

    def test_a_job_whose_records_were_lost_with_the_store_ends_failed_not_running(self, settings):
        """The store fails as a job's start is saved and again as its spawn failure is: its
        thread ends with no record of its end. Once the store answers, that job is stored
        `failed` with the reason, not left `running` in a session that has ended `failed`."""

        class FailingTwice(SqliteStore):
            failed: ClassVar[set[str]] = set()

            def put_runs(self, job_runs=(), operation_runs=()):
                if "start" not in self.failed and any(o.attempts for o in operation_runs):
                    self.failed.add("start")
                    raise StoreError("disk I/O error")
                super().put_runs(job_runs=job_runs, operation_runs=operation_runs)

            def add_error(self, error):
                if "error" not in self.failed:
                    self.failed.add("error")
                    raise StoreError("disk I/O error, again")
                super().add_error(error)

        store = FailingTwice(settings.database_path)
        session = queue_session(
            store,
            pipeline_data(command_job("x", "pass"), command_job("after", "pass", deps=["x"])),
        )
        try:
            with pytest.raises(StoreError, match="again"):
                LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
            final = store.get_session(session.session_id)
            assert (final.status, final.failed_jobs) == (SessionStatus.FAILED, ["x"])
            runs = {r.job_id: r for r in store.list_job_runs(session.session_id)}
            assert runs["x"].status is RunStatus.FAILED
            assert runs["x"].finished_at is not None
            assert "disk I/O error, again" in runs["x"].error_summary
            assert runs["after"].status is RunStatus.CANCELLED
        finally:
            store.close()

    @pytest.mark.slow
    def test_timeout_kills_processes_that_left_the_group(self, store, settings, tmp_path):
        """On timeout the whole tree dies, a setsid'd grandchild included."""
        pid_file = tmp_path / "left.pid"
        code = LEAVE_BEHIND.format(pid_file=str(pid_file)) + "time.sleep(600)\n"
        session_id = _run(
            store, settings, pipeline_data(command_job("stuck", code, timeout_seconds=2))
        )
        assert {r.job_id: r.status for r in store.list_job_runs(session_id)} == {
            "stuck": RunStatus.TIMEOUT
        }
        assert not _alive(int(pid_file.read_text()))
        assert not _alive(int(pid_file.with_suffix(".daemon").read_text()))


def _start_in_thread(store: SqliteStore, settings: Settings, data: dict) -> tuple[str, object]:
    session = queue_session(store, data)
    engine = LocalEngine(store, settings, poll_seconds=0.05)
    thread = threading.Thread(target=engine.run, args=(session.session_id,))
    thread.start()
    return session.session_id, thread


def _wait_running(store: SqliteStore, session_id: str, pid_file: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        pid_file.exists() and pid_file.with_suffix(".daemon").exists()
    ):
        time.sleep(0.05)
    assert pid_file.exists(), "the job never started"


CANCEL_JOB = LEAVE_BEHIND + "time.sleep(600)\n"


@pytest.mark.usefixtures("job_shim")
class TestCancel:
    @pytest.mark.slow
    def test_session_cancel_kills_a_600_s_job_tree_within_2_s(self, store, settings, tmp_path):
        """`session cancel` (a status change in the store): every process of the running job,
        setsid'd ones included, is gone within 2 s; jobs and the session end cancelled."""
        pid_file = tmp_path / "left.pid"
        session_id, thread = _start_in_thread(
            store,
            settings,
            pipeline_data(
                command_job("long", CANCEL_JOB.format(pid_file=str(pid_file))),
                command_job("after", "pass", deps=["long"]),
            ),
        )
        _wait_running(store, session_id, pid_file)
        started = time.monotonic()
        update_session(
            store, session_id, lambda s: s.model_copy(update={"status": SessionStatus.CANCELLED})
        )
        thread.join(timeout=10)
        pids = [int(pid_file.read_text()), int(pid_file.with_suffix(".daemon").read_text())]
        while any(_alive(p) for p in pids) and time.monotonic() - started < 5:
            time.sleep(0.02)
        assert time.monotonic() - started < 2.0
        assert not thread.is_alive()
        assert store.get_session(session_id).status is SessionStatus.CANCELLED
        assert {r.job_id: r.status for r in store.list_job_runs(session_id)} == {
            "long": RunStatus.CANCELLED,
            "after": RunStatus.CANCELLED,
        }

    @pytest.mark.slow
    def test_in_process_cancel_stops_foreground_runs(self, store, settings, tmp_path):
        """cancel_active_runs(), what `pipeline run --wait` calls on Ctrl-C or SIGTERM, ends
        the run as cancelled within 2 s with no process of the job left."""
        pid_file = tmp_path / "left.pid"
        session_id, thread = _start_in_thread(
            store,
            settings,
            pipeline_data(command_job("long", CANCEL_JOB.format(pid_file=str(pid_file)))),
        )
        _wait_running(store, session_id, pid_file)
        started = time.monotonic()
        assert cancel_active_runs() == [session_id]
        thread.join(timeout=10)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0
        assert not _alive(int(pid_file.read_text()))
        assert not _alive(int(pid_file.with_suffix(".daemon").read_text()))
        assert store.get_session(session_id).status is SessionStatus.CANCELLED
        [job_run] = store.list_job_runs(session_id)
        assert job_run.status is RunStatus.CANCELLED
        assert cancel_active_runs() == []


@pytest.mark.usefixtures("job_shim")
def test_runner_killed_by_sigterm_cancels_its_session(tmp_path):
    """A detached runner told to stop (SIGTERM) cancels its session and kills its jobs."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    settings = Settings.resolve(tmp_path / "home")
    store = SqliteStore(settings.database_path)
    pid_file = tmp_path / "left.pid"
    session = queue_session(
        store, pipeline_data(command_job("long", CANCEL_JOB.format(pid_file=str(pid_file))))
    )
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bunsui_core.engine.runner",
            "--home",
            str(settings.home),
            session.session_id,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_running(store, session.session_id, pid_file)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0
    finally:
        runner.kill()
    assert store.get_session(session.session_id).status is SessionStatus.CANCELLED
    assert not _alive(int(pid_file.read_text()))
    assert not _alive(int(pid_file.with_suffix(".daemon").read_text()))
    store.close()


class TestEngineSettings:
    def test_config_yaml_sets_the_engine_and_refuses_bad_values(self, tmp_path):
        """`engine:` in config.yaml is read; a wrong key or value is INVALID_ARGUMENT."""
        home = tmp_path / "home"
        home.mkdir()
        config = home / "config.yaml"
        config.write_text(
            "engine: {pass_env: [HTTPS_PROXY], log_max_bytes: 8192, memory_enforcement: watchdog}\n"
        )
        engine = Settings.resolve(home).engine
        assert engine == EngineSettings(("HTTPS_PROXY",), 8192, "watchdog")
        for bad in (
            "engine: {memory_enforcement: cgroup_v3}",
            "engine: {log_max_bytes: 10}",
            "engine: {pass_env: HTTPS_PROXY}",
            "engine: {pass_envs: [X]}",
        ):
            config.write_text(bad + "\n")
            with pytest.raises(InvalidArgumentError):
                Settings.resolve(home)

    def test_bad_pass_env_in_a_pipeline_is_a_validation_problem(self):
        """pass_env must be a list of names or patterns, reported at its location."""
        data = pipeline_data(
            command_job("a", "pass", parameters={"pass_env": ["OK_*", "no spaces"]})
        )
        with pytest.raises(PipelineInvalidError) as caught:
            validate_pipeline_data(data)
        [problem] = caught.value.details["problems"]
        assert problem["location"] == "jobs[0].operations[0].config.parameters.pass_env"
