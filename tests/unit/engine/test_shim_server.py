"""The shim server clones each job's shim as a child of the runner, with the job's own
environment, directory and log files; when it is gone, jobs still run (a shim of their own)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from bunsui_core.config import Settings
from bunsui_core.engine import jobshim
from bunsui_core.engine._process import (
    LiveProcessGroups,
    ProcessSpec,
    _StatusPipe,
    is_job_shim,
    run_process,
)
from bunsui_core.engine.jobshim import is_shim_command
from bunsui_core.engine.local import LocalEngine
from bunsui_core.engine.process_tree import read_stat
from bunsui_core.engine.shim_server import ShimServer
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data, queue_session


@pytest.fixture
def shims():
    server = ShimServer.start()
    if server is None:
        pytest.skip("no clone(CLONE_PARENT) number known for this machine")
    yield server
    server.close()


def test_a_cloned_shim_is_the_runners_child_and_runs_the_job_as_asked(shims, tmp_path):
    """Parent = this process (it waits for it and inherits its orphans), command line = a
    shim's (job_identity's mark), and the job sees its own env, cwd and stdout."""
    out_path = tmp_path / "out"
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT, 0o600)
    status = _StatusPipe()
    script = "import os; print(os.environ['ONLY_HERE'], os.getcwd()); raise SystemExit(3)"
    pid = shims.spawn(
        [sys.executable, "-c", script],
        env={"ONLY_HERE": "job-env"},
        cwd=tmp_path,
        cgroup=None,
        fds=(out, out, status.write_fd),
    )
    status.close_write()
    os.close(out)
    stat = read_stat(pid)
    assert stat is not None
    assert stat.ppid == os.getpid()
    assert is_job_shim(pid)
    _, shim_status, _ = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(shim_status) == 0
    report = status.reports()
    assert report["shim"] == pid
    assert os.waitstatus_to_exitcode(int(report["wait_status"])) == 3
    assert out_path.read_text().split() == ["job-env", str(tmp_path)]


def _spec(tmp_path: Path, argv: list[str], cwd: Path | None = None) -> ProcessSpec:
    return ProcessSpec(
        argv, dict(os.environ), cwd or tmp_path, tmp_path / "o", tmp_path / "e", label="t"
    )


def test_a_missing_directory_is_a_spawn_error_and_the_server_goes_on(shims, tmp_path):
    """A job whose directory vanished fails to start; the next job starts normally."""
    gone = run_process(
        _spec(tmp_path, ["true"], tmp_path / "gone"), LiveProcessGroups(), shims=shims
    )
    assert gone.spawn_error is not None
    assert "gone" in gone.spawn_error
    assert not gone.succeeded
    ok = run_process(_spec(tmp_path, ["true"]), LiveProcessGroups(), shims=shims)
    assert ok.succeeded


def test_without_its_server_a_job_still_runs_under_a_shim_of_its_own(shims, tmp_path):
    """A dead server (killed, crashed) costs speed, never a job."""
    os.kill(shims._proc.pid, signal.SIGKILL)
    shims._proc.wait()
    result = run_process(
        _spec(tmp_path, [sys.executable, "-c", "print('still here')"]),
        LiveProcessGroups(),
        shims=shims,
    )
    assert result.succeeded
    assert shims.broken
    assert (tmp_path / "o").read_text() == "still here\n"


@pytest.mark.parametrize("through_server", [True, False])
def test_a_job_starts_with_default_signal_handling(shims, tmp_path, through_server):
    """Python ignores SIGPIPE and SIGXFSZ; a job must not inherit that (`yes | head` would
    end in write errors rather than quietly)."""
    result = run_process(
        _spec(tmp_path, ["grep", "SigIgn", "/proc/self/status"]),
        LiveProcessGroups(),
        shims=shims if through_server else None,
    )
    assert result.succeeded
    ignored = int((tmp_path / "o").read_text().split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1))
    assert not ignored & (1 << (signal.SIGXFSZ - 1))


# The job writes what its parent is: a clone of the run's shim server, whose parent is the
# runner (this test process), not the server.
PARENT_PROBE = (
    "import os, pathlib\n"
    "ppid = os.getppid()\n"
    "cmd = pathlib.Path(f'/proc/{ppid}/cmdline').read_bytes().split(b'\\0')\n"
    "stat = pathlib.Path(f'/proc/{ppid}/stat').read_text().rsplit(')', 1)[1].split()\n"
    "out = pathlib.Path(os.environ['BUNSUI_WORKDIR'], 'parent')\n"
    "out.write_text(f'{stat[1]} ' + ' '.join(p.decode() for p in cmd if p))\n"
)


def test_the_engine_runs_each_job_under_a_clone_of_its_shim_server(shims, tmp_path, monkeypatch):
    """Without the native shim, LocalEngine uses the server (not a new interpreter per job),
    and the clone's parent is the runner itself, which lets it wait for, reap and kill it."""
    shims.close()  # the fixture's server only shows the platform supports one
    monkeypatch.setenv("BUNSUI_NATIVE_SHIM", "0")
    settings = Settings(home=tmp_path / "home")
    store = SqliteStore(settings.database_path)
    job = command_job("probe", "pass")
    job["operations"][0]["config"]["parameters"]["command"] = [sys.executable, "-c", PARENT_PROBE]
    session = queue_session(store, pipeline_data(job))
    LocalEngine(store, settings).run(session.session_id)
    [job_run] = store.list_job_runs(session.session_id)
    store.close()
    assert job_run.status == "completed", job_run
    grandparent, *parent_argv = (Path(job_run.workdir) / "parent").read_text().split()
    assert int(grandparent) == os.getpid()
    assert "--serve" in parent_argv
    assert is_shim_command(parent_argv)


@pytest.mark.parametrize("through_server", [True, False])
def test_a_bare_command_name_is_found_on_the_jobs_own_path(shims, tmp_path, through_server):
    """`command: [name]` is looked up on the PATH the job gets, not the runner's or the
    server's (the server runs with an empty environment)."""
    tools = tmp_path / "tools"
    tools.mkdir()
    tool = tools / "bunsui-test-tool"
    tool.write_text("#!/bin/sh\necho found on the PATH of the job\n")
    tool.chmod(0o755)
    spec = ProcessSpec(
        ["bunsui-test-tool"],
        {"PATH": f"{tools}:/usr/bin:/bin"},
        tmp_path,
        tmp_path / "o",
        tmp_path / "e",
        label="t",
    )
    result = run_process(spec, LiveProcessGroups(), shims=shims if through_server else None)
    assert result.succeeded, (tmp_path / "e").read_text()
    assert (tmp_path / "o").read_text() == "found on the PATH of the job\n"


# A shim server that clones the job's shim, as the real one does, then dies before replying.
DYING_SERVER = """
import os, socket, struct, sys
from bunsui_core.engine import jobshim
sock = socket.socket(fileno=int(sys.argv[1]))
size = struct.calcsize(jobshim.HEADER)
header, fds, _, _ = socket.recv_fds(sock, size, 3)
(length,) = struct.unpack(jobshim.HEADER, header)
payload = b""
while len(payload) < length:
    payload += sock.recv(length - len(payload))
if jobshim._clone_for_parent() == 0:
    sock.close()
    jobshim._job_child(payload, fds)
os._exit(1)
"""


def test_a_job_cloned_by_a_server_that_died_before_replying_runs_once(tmp_path):
    """The clone is the job: it is adopted (waited for, its report read), never doubled by
    a shim of the runner's own, and later jobs start without the server."""
    if os.uname().machine not in jobshim.SYS_CLONE:
        pytest.skip("no clone(CLONE_PARENT) number known for this machine")
    ours, theirs = socket.socketpair()
    proc = subprocess.Popen(
        [sys.executable, "-c", DYING_SERVER, str(theirs.fileno())], pass_fds=(theirs.fileno(),)
    )
    theirs.close()
    dying = ShimServer(ours, proc)
    runs = tmp_path / "runs"
    script = f"open({str(runs)!r}, 'a').write('ran\\n'); print('once')"
    result = run_process(
        _spec(tmp_path, [sys.executable, "-c", script]), LiveProcessGroups(), shims=dying
    )
    assert dying.broken
    assert result.succeeded, (tmp_path / "e").read_text()
    assert runs.read_text() == "ran\n"
    assert (tmp_path / "o").read_text() == "once\n"
    assert result.pid is not None
    assert read_stat(result.pid) is None  # reaped, not left a zombie
    later = run_process(_spec(tmp_path, ["true"]), LiveProcessGroups(), shims=dying)
    assert later.succeeded
    dying.close()
