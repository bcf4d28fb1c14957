"""Memory limits like a container's, with every mechanism this host offers: resident memory is
capped (Node and Java, which reserve far more address space than they use, run fine) and a
job past its limit is OOM-killed, recorded as such and diagnosed as the memory limit."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from bunsui_core.config import EngineSettings, Settings
from bunsui_core.diagnosis.classifier import classify
from bunsui_core.engine.cgroups import discover
from bunsui_core.engine.local import LocalEngine
from bunsui_core.model.session import FailureKind, MemoryEnforcement, RunStatus, SessionStatus
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data, queue_session

ALLOCATE_300_MIB = "b = bytearray(300 * 2**20)\nprint('allocated', len(b))"


def _mechanism(name: str) -> str:
    """The mechanism, or a skip saying why this host cannot test it."""
    enforcement = MemoryEnforcement(name)
    if enforcement is not MemoryEnforcement.WATCHDOG and discover(enforcement) is None:
        pytest.skip(
            f"{name}: this host has no {name} memory controller bunsui may create cgroups in "
            "(needs root or a delegated subtree); the watchdog is tested instead"
        )
    return name


@pytest.fixture(params=["cgroup_v2", "cgroup_v1", "watchdog"])
def mechanism(request: pytest.FixtureRequest) -> str:
    return _mechanism(request.param)


def _run(tmp_path: Path, mechanism: str, job: dict) -> tuple[SqliteStore, str]:
    settings = Settings(home=tmp_path / "home", engine=EngineSettings(memory_enforcement=mechanism))
    store = SqliteStore(settings.database_path)
    session = queue_session(store, pipeline_data(job))
    LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
    return store, session.session_id


class TestOomKill:
    @pytest.mark.slow
    def test_300_mib_under_128_is_an_oom_kill(self, tmp_path, mechanism):
        """The job is SIGKILLed (exit 137), recorded as an OOM kill by the named mechanism
        with its peak at the limit, and the analyzer calls it the local memory limit."""
        store, session_id = _run(
            tmp_path,
            mechanism,
            command_job("hog", ALLOCATE_300_MIB, parameters={"memory": 128}),
        )
        assert store.get_session(session_id).status is SessionStatus.FAILED
        [op_run] = store.list_operation_runs(session_id)
        [attempt] = op_run.attempts
        assert attempt.status is RunStatus.FAILED
        assert attempt.oom_killed
        assert attempt.memory_enforcement == mechanism
        assert attempt.signal == 9
        assert attempt.exit_code is None
        assert attempt.peak_rss_mb >= 128
        assert "allocated" not in attempt.stdout_tail
        [error] = store.list_errors(session_id)
        assert error.kind is FailureKind.KILLED_BY_SIGNAL
        assert error.message.startswith("OutOfMemoryError: Command killed due to memory usage")
        assert error.context["oom_killed"] is True
        assert error.context["memory_enforcement"] == mechanism
        verdict = classify(error.message, kind=error.kind, run_context=error.context)
        assert verdict.error_code == "LOCAL_MEMORY_LIMIT"
        store.close()

    @pytest.mark.slow
    def test_within_the_limit_passes_and_names_the_mechanism(self, tmp_path, mechanism):
        """The same allocation under 512 MiB completes; its peak and mechanism are recorded."""
        store, session_id = _run(
            tmp_path,
            mechanism,
            command_job("hog", ALLOCATE_300_MIB, parameters={"memory": 512}),
        )
        assert store.get_session(session_id).status is SessionStatus.COMPLETED
        [op_run] = store.list_operation_runs(session_id)
        [attempt] = op_run.attempts
        assert not attempt.oom_killed
        assert attempt.memory_enforcement == mechanism
        assert 300 <= attempt.peak_rss_mb < 400
        store.close()


def _tool_job(job_id: str, argv: list[str]) -> dict:
    job = command_job(job_id, "pass", parameters={"memory": 512})
    job["operations"][0]["config"]["parameters"]["command"] = argv
    return job


class TestRuntimesThatReserveAddressSpace:
    @pytest.mark.slow
    def test_node_completes_under_512(self, tmp_path, mechanism):
        """V8 reserves gigabytes of address space at start; under 512 MiB of resident
        memory `node -e` runs (RLIMIT_AS killed it with SIGTRAP)."""
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not installed on this host")
        store, session_id = _run(
            tmp_path,
            mechanism,
            _tool_job("node", [node, "-e", "console.log(new Array(1e6).fill(1).length)"]),
        )
        [attempt] = store.list_operation_runs(session_id)[0].attempts
        assert attempt.status is RunStatus.COMPLETED, attempt.stderr_tail
        assert attempt.stdout_tail.strip() == "1000000"
        store.close()

    @pytest.mark.slow
    def test_java_completes_under_512(self, tmp_path, mechanism):
        """The JVM reserves its heap at start; `java -version` runs under 512 MiB (under
        RLIMIT_AS it could not reserve its heap)."""
        java = shutil.which("java")
        if java is None:
            pytest.skip("java is not installed on this host")
        store, session_id = _run(tmp_path, mechanism, _tool_job("java", [java, "-version"]))
        [attempt] = store.list_operation_runs(session_id)[0].attempts
        assert attempt.status is RunStatus.COMPLETED, attempt.stderr_tail
        assert " version " in attempt.stderr_tail
        store.close()


class TestLogs:
    def test_logs_are_private_and_capped_keeping_the_tail(self, tmp_path):
        """A job printing 1 MB into a 64 KiB cap keeps its last lines, which its attempt's
        record quotes; log files are 0600."""
        settings = Settings(home=tmp_path / "home", engine=EngineSettings(log_max_bytes=65536))
        store = SqliteStore(settings.database_path)
        code = "import sys\nfor i in range(20000): print(f'line {i:06d} ' + 'x' * 40)"
        session = queue_session(store, pipeline_data(command_job("chatty", code)))
        LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
        [attempt] = store.list_operation_runs(session.session_id)[0].attempts
        stdout = Path(attempt.stdout_path)
        text = stdout.read_text()
        assert stdout.stat().st_size <= 65536
        assert text.startswith("[bunsui: ")
        assert "earlier bytes dropped" in text.splitlines()[0]
        assert text.rstrip().endswith("line 019999 " + "x" * 40)
        assert attempt.stdout_tail == text[-4096:]  # the record keeps the file's own end
        for path in (stdout, Path(attempt.stderr_path)):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        store.close()
