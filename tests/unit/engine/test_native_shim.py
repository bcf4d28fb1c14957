"""The native job shim: built once into a cache only this user can write and used by the
engine wherever `cc` exists; refused when that cache is not this user's alone; and no easier
to fool than the Python shim (a job rewriting the cache or garbling its status pipe, a
command that cannot start)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bunsui_core.config import Settings
from bunsui_core.engine import native_shim
from bunsui_core.engine._process import (
    LiveProcessGroups,
    ProcessSpec,
    _popen_shim,
    _StatusPipe,
    run_process,
)
from bunsui_core.engine.jobshim import NATIVE_PREFIX, is_shim_command
from bunsui_core.engine.local import LocalEngine, describe_failure
from bunsui_core.engine.native_shim import SWITCH, NativeShim, load
from bunsui_core.model.session import FailureKind, JobRun, OperationAttempt, RunStatus
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data, queue_session
from tests.unit.engine.test_job_isolation import CANCEL_JOB, _alive

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler here")

# The job writes what its parent is: argv, the file it runs (/proc/PPID/exe) and its parent.
PARENT_PROBE = (
    "import os, pathlib\n"
    "ppid = os.getppid()\n"
    "cmd = pathlib.Path(f'/proc/{ppid}/cmdline').read_bytes().split(b'\\0')\n"
    "stat = pathlib.Path(f'/proc/{ppid}/stat').read_text().rsplit(')', 1)[1].split()\n"
    "exe = os.readlink(f'/proc/{ppid}/exe')\n"
    "out = pathlib.Path(os.environ['BUNSUI_WORKDIR'], 'parent')\n"
    "out.write_text('\\n'.join([stat[1], exe, *(p.decode() for p in cmd if p)]))\n"
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache directory of this test's own; the process's memo of the shim forgotten."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(SWITCH, raising=False)
    native_shim._load.cache_clear()
    yield tmp_path / "cache" / "bunsui"
    native_shim._load.cache_clear()


def _run_jobs(tmp_path: Path, *jobs: dict) -> dict[str, JobRun]:
    settings = Settings(home=tmp_path / "home")
    store = SqliteStore(settings.database_path)
    session = queue_session(store, pipeline_data(*jobs))
    LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
    runs = {r.job_id: r for r in store.list_job_runs(session.session_id)}
    store.close()
    return runs


def _python_job(job_id: str, code: str, deps: list[str] | None = None) -> dict:
    job = command_job(job_id, "pass", deps=deps or [])
    job["operations"][0]["config"]["parameters"]["command"] = [sys.executable, "-c", code]
    return job


def _parent_of(run: JobRun) -> tuple[int, str, list[str]]:
    """(parent's parent, parent's executable, parent's argv) as the probe job saw them."""
    ppid, exe, *argv = (Path(run.workdir) / "parent").read_text().split("\n")
    return int(ppid), exe, argv


def _spec(tmp_path: Path, argv: list[str], timeout: float | None = None) -> ProcessSpec:
    return ProcessSpec(
        argv, dict(os.environ), tmp_path, tmp_path / "o", tmp_path / "e", timeout_seconds=timeout
    )


def _start_shim(
    shim: NativeShim | None, tmp_path: Path, argv: list[str], cgroup: str | None = None
) -> tuple[int, _StatusPipe]:
    """Start `argv` under `shim` (None: a Python shim) with stdout and stderr in tmp_path/o;
    returns the shim's pid and its status pipe, whose write end this process has closed."""
    out = os.open(tmp_path / "o", os.O_WRONLY | os.O_CREAT, 0o600)
    status = _StatusPipe()
    spec = _spec(tmp_path, argv)
    if shim is None:
        pid = _popen_shim(spec, cgroup, (out, out), status.write_fd)
    else:
        pid = shim.spawn(
            spec.argv, env=spec.env, cwd=tmp_path, cgroup=cgroup, fds=(out, out, status.write_fd)
        )
    status.close_write()
    os.close(out)
    return pid, status


@needs_cc
def test_where_cc_exists_the_engine_runs_each_job_under_the_native_shim(cache, tmp_path):
    """Fails loudly if a machine with a compiler silently falls back to the Python shim: the
    job's parent is the native shim (its sealed copy), the runner's own child, known to
    job_identity; the cache is this user's alone."""
    runs = _run_jobs(tmp_path, _python_job("probe", PARENT_PROBE))
    assert runs["probe"].status is RunStatus.COMPLETED, runs["probe"]
    grandparent, exe, argv = _parent_of(runs["probe"])
    assert grandparent == os.getpid()
    assert exe.startswith("/memfd:bunsui-jobshim")
    assert Path(argv[0]).parent == cache
    assert Path(argv[0]).name.startswith(NATIVE_PREFIX)
    assert is_shim_command(argv)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(Path(argv[0]).stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "why", ["BUNSUI_NATIVE_SHIM=0", "no compiler on PATH", "a compiler that fails"]
)
def test_without_the_native_shim_jobs_run_under_the_python_one(cache, tmp_path, monkeypatch, why):
    """Switched off, with no `cc`, or with one that cannot build it, nothing is cached and
    jobs run under a clone of the Python shim server as before."""
    (tmp_path / "bin").mkdir()
    if why == "BUNSUI_NATIVE_SHIM=0":
        monkeypatch.setenv(SWITCH, "0")
    elif why == "no compiler on PATH":
        monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    else:
        broken = tmp_path / "bin" / "cc"
        broken.write_text("#!/bin/sh\necho 'cc: internal compiler error' >&2\nexit 1\n")
        broken.chmod(0o755)
        monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    assert load() is None
    runs = _run_jobs(tmp_path, _python_job("probe", PARENT_PROBE))
    assert runs["probe"].status is RunStatus.COMPLETED, runs["probe"]
    grandparent, _exe, argv = _parent_of(runs["probe"])
    assert grandparent == os.getpid()
    assert "--serve" in argv
    assert not cache.exists() or list(cache.iterdir()) == []


@needs_cc
@pytest.mark.parametrize("flaw", ["writable by others", "owned by another user"])
def test_a_cache_directory_not_this_users_alone_is_refused(cache, flaw):
    """Another local user who could write (or owns) the cache directory could plant a shim:
    such a directory is not used at all (the Python shim runs the jobs)."""
    cache.mkdir(parents=True, mode=0o700)
    if flaw == "writable by others":
        cache.chmod(0o777)
    elif os.geteuid() == 0:
        os.chown(cache, 65534, 65534)
    else:
        pytest.skip("only root can give a directory to another user")
    assert load() is None
    assert list(cache.iterdir()) == []


@needs_cc
@pytest.mark.parametrize(
    "plant", ["writable by others", "owned by another user", "bytes not matching the digest"]
)
def test_a_planted_or_altered_cached_shim_is_never_run(cache, tmp_path, plant):
    """A script in the cache binary's place (one that would pass the probe) is compiled over,
    never run: wrong mode or owner, or bytes that do not match the digest beside it."""
    binary = Path(load().name)
    native_shim._load.cache_clear()
    marker = tmp_path / "planted-ran"
    planted = f"#!/bin/sh\ntouch {marker}\nexit 2\n".encode()
    binary.write_bytes(planted)
    if plant != "bytes not matching the digest":
        binary.with_name(binary.name + ".sha256").write_text(hashlib.sha256(planted).hexdigest())
    if plant == "writable by others":
        binary.chmod(0o777)
    elif plant == "owned by another user":
        if os.geteuid() != 0:
            pytest.skip("only root can give a file to another user")
        os.chown(binary, 65534, 65534)
    shim = load()
    assert shim is not None
    assert binary.read_bytes()[:4] == b"\x7fELF"
    assert (binary.stat().st_uid, stat.S_IMODE(binary.stat().st_mode)) == (os.geteuid(), 0o700)
    assert run_process(_spec(tmp_path, ["true"]), LiveProcessGroups(), shims=shim).succeeded
    assert not marker.exists()


@needs_cc
def test_a_new_shim_removes_other_versions_untouched_for_a_day(cache):
    """An upgrade compiles a new shim: another version's binary unchanged for two days goes,
    one written an hour ago (another install in use) stays, and nothing else is touched."""
    cache.mkdir(parents=True, mode=0o700)
    old, recent, other = (
        cache / f"{NATIVE_PREFIX}old",
        cache / f"{NATIVE_PREFIX}recent",
        cache / "notes",
    )
    for path in (old, old.with_name(old.name + ".sha256"), recent, other):
        path.write_text("x")
    for path, age in (
        (old, 2 * 86400),
        (old.with_name(old.name + ".sha256"), 2 * 86400),
        (recent, 3600),
        (other, 9 * 86400),
    ):
        os.utime(path, (time.time() - age, time.time() - age))
    shim = load()
    assert shim is not None
    current = Path(shim.name).name
    assert sorted(p.name for p in cache.iterdir()) == sorted(
        [current, current + ".sha256", recent.name, other.name]
    )


LOAD = (
    "import sys\n"
    "from bunsui_core.engine.native_shim import load\n"
    "shim = load()\n"
    "sys.exit(0 if shim is not None else 1)\n"
)


@needs_cc
@pytest.mark.parametrize("where", ["binary", "digest"])
def test_a_fifo_in_the_cache_is_compiled_over_not_waited_on(cache, tmp_path, where):
    """A job (same user) leaves a FIFO in place of the cached shim or its digest: the next
    process compiles the shim again, as for any file that is not a good one, instead of
    hanging in open() until someone writes to the FIFO (every later run would hang)."""
    binary = Path(load().name)
    fifo = binary if where == "binary" else binary.with_name(binary.name + ".sha256")
    fifo.unlink()
    os.mkfifo(fifo, 0o600)
    later = subprocess.run(
        [sys.executable, "-c", "from bunsui_core.engine import native_shim as n; print(n.load())"],
        env={**os.environ, "XDG_CACHE_HOME": str(cache.parent)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert later.returncode == 0, later.stderr
    assert f"name='{binary}'" in later.stdout
    assert stat.S_ISREG(fifo.stat().st_mode)


@needs_cc
def test_a_relative_xdg_cache_home_is_ignored_not_taken_from_the_cwd(tmp_path, monkeypatch):
    """As the XDG spec says, a relative $XDG_CACHE_HOME is invalid: the shim is cached in
    ~/.cache, never in whatever directory bunsui happens to run from."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "cache")
    monkeypatch.delenv(SWITCH, raising=False)
    native_shim._load.cache_clear()
    try:
        shim = load()
    finally:
        native_shim._load.cache_clear()
    assert shim is not None
    assert Path(shim.name).parent == tmp_path / "home" / ".cache" / "bunsui"
    assert list((tmp_path / "cwd").iterdir()) == []


@needs_cc
def test_a_shim_built_with_other_flags_is_another_shim(cache, monkeypatch):
    """Flags are part of a cached shim's identity: a version that builds the same source
    otherwise (hardening, a buffer size) gets its own binary, not the last one's."""
    before = Path(load().name)
    native_shim._load.cache_clear()
    monkeypatch.setattr(native_shim, "CFLAGS", (*native_shim.CFLAGS, "-DPROC_TEXT_BYTES=4096"))
    after = Path(load().name)
    assert after != before
    assert before.exists()
    assert after.exists()


@needs_cc
def test_runs_starting_together_on_an_empty_cache_all_get_the_shim(cache):
    """Four processes compile into the same empty cache at once: each gets a working shim,
    and the cache ends with one whole binary whose digest matches, no temporary left."""
    procs = [subprocess.Popen([sys.executable, "-c", LOAD]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    [binary] = [p for p in cache.iterdir() if not p.name.endswith(".sha256")]
    digest = binary.with_name(binary.name + ".sha256").read_text()
    assert hashlib.sha256(binary.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in cache.iterdir()) == [binary.name, binary.name + ".sha256"]


@needs_cc
def test_a_job_that_rewrites_the_cached_shim_changes_no_later_job(cache, tmp_path):
    """A job (same user) replaces the cached binary: the jobs its runner starts after it
    still run under the sealed copy checked at load, and the next process compiles the
    shim again rather than run the job's file."""
    binary = Path(load().name)
    marker = tmp_path / "planted-ran"
    rewrite = (
        "import os, pathlib\n"
        f"p = pathlib.Path({str(binary)!r})\n"
        f"p.write_bytes(b'#!/bin/sh\\ntouch {marker}\\nexit 2\\n')\n"
        "p.chmod(0o700)\n"
    )
    runs = _run_jobs(
        tmp_path,
        _python_job("rewrite", rewrite),
        _python_job("probe", PARENT_PROBE, deps=["rewrite"]),
    )
    assert {j: r.status for j, r in runs.items()} == {
        "rewrite": RunStatus.COMPLETED,
        "probe": RunStatus.COMPLETED,
    }
    assert binary.read_bytes().startswith(b"#!/bin/sh")  # the job did rewrite it
    _ppid, exe, argv = _parent_of(runs["probe"])
    assert exe.startswith("/memfd:bunsui-jobshim")
    assert is_shim_command(argv)
    native_shim._load.cache_clear()  # a later process
    assert load() is not None
    assert binary.read_bytes()[:4] == b"\x7fELF"
    assert not marker.exists()


@needs_cc
@pytest.mark.parametrize("refusal", ["no memfd", "memfd not executable"])
def test_where_no_sealed_copy_can_run_jobs_run_under_the_python_shim(
    cache, tmp_path, monkeypatch, refusal
):
    """A host that refuses a memfd or its exec (vm.memfd_noexec) gets the Python shim, never
    the cache file run by its path: that file is whatever a job wrote there since the check."""
    assert load() is not None  # a good shim is cached: the file would run
    native_shim._load.cache_clear()
    if refusal == "no memfd":

        def refuse(*_args: object) -> int:
            raise PermissionError(1, "memfd_create refused (vm.memfd_noexec=2)")

        monkeypatch.setattr(os, "memfd_create", refuse)
    else:
        runs_here = native_shim._runs
        monkeypatch.setattr(
            native_shim,
            "_runs",
            lambda executable, name: (
                not executable.startswith("/proc/self/fd/") and runs_here(executable, name)
            ),
        )
    assert load() is None
    runs = _run_jobs(tmp_path, _python_job("probe", PARENT_PROBE))
    assert runs["probe"].status is RunStatus.COMPLETED, runs["probe"]
    _grandparent, _exe, argv = _parent_of(runs["probe"])
    assert "--serve" in argv


def test_a_command_that_cannot_start_is_exit_127_with_its_reason_on_record(tmp_path, job_shim):
    """A command not on the job's PATH: the attempt ends 127, the reason is on record as a
    spawn failure, under either shim."""
    job = command_job("missing", "pass")
    job["operations"][0]["config"]["parameters"]["command"] = ["bunsui-no-such-command"]
    settings = Settings(home=tmp_path / "home")
    store = SqliteStore(settings.database_path)
    session = queue_session(store, pipeline_data(job))
    LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
    [run] = store.list_job_runs(session.session_id)
    [op] = store.list_operation_runs(session.session_id)
    [error] = store.list_errors(session.session_id)
    store.close()
    assert run.status is RunStatus.FAILED
    assert op.attempts[-1].exit_code == 127
    assert error.kind is FailureKind.SPAWN_FAILED
    assert "bunsui-no-such-command: No such file or directory" in error.message


@pytest.mark.parametrize(
    ("name", "said"),
    [("bunsui-nö-such-命令", "bunsui-nö-such-命令"), ("bunsui-\udcff-such", None)],
    ids=["utf8", "not-utf8"],
)
def test_a_command_name_past_ascii_is_on_record_as_written(tmp_path, job_shim, name, said):
    """The reason a command could not start names it as the pipeline wrote it, not as
    Latin-1 mojibake of its bytes; a byte that is not UTF-8 still leaves a readable report
    (the native shim says U+FFFD, the Python one keeps the byte escaped)."""
    result = run_process(_spec(tmp_path, [name]), LiveProcessGroups(), shims=job_shim)
    assert result.exit_code == 127
    assert result.spawn_error is not None
    if said is None:
        said = "bunsui-\ufffd-such" if job_shim is not None else name
    assert result.spawn_error == f"{said}: No such file or directory"


def test_a_missing_working_directory_is_a_spawn_error(tmp_path, job_shim):
    """The directory a job should start in is gone: a spawn error naming it, not a hang."""
    spec = ProcessSpec(
        ["true"], dict(os.environ), tmp_path / "gone", tmp_path / "o", tmp_path / "e"
    )
    result = run_process(spec, LiveProcessGroups(), shims=job_shim)
    assert not result.succeeded
    assert result.spawn_error is not None
    assert "gone" in result.spawn_error


# The job finds its shim's status pipe through /proc (the pipe that is not its own stdout or
# stderr) and writes to it; it never holds that pipe itself.
GARBLE = """
import errno, json, os, sys
def links(directory):
    found = {}
    for fd in os.listdir(directory):
        try:
            found[fd] = os.readlink(f"{directory}/{fd}")
        except OSError:  # the descriptor listdir itself used
            pass
    return found
own = set(links("/proc/self/fd").values())
parent = f"/proc/{os.getppid()}/fd"
links = links(parent)
[status] = [fd for fd, link in links.items() if link.startswith("pipe:")
            and link not in (os.readlink("/proc/self/fd/1"), os.readlink("/proc/self/fd/2"))]
assert links[status] not in own, "the job holds its shim's status pipe"
pipe = os.open(f"{parent}/{status}", os.O_WRONLY | os.O_NONBLOCK)
if sys.argv[1] == "torn":
    os.write(pipe, b'{"wait_status": 0, "spawn')
    sys.exit(3)
line = json.dumps({"wait_status": 10 ** 12}).encode() + b"\\n"
try:
    while True:
        os.write(pipe, line)
except BlockingIOError:
    pass
"""


@pytest.mark.parametrize("garble", ["torn", "filled"])
def test_a_job_garbling_its_shims_status_pipe_gets_a_clear_outcome(tmp_path, job_shim, garble):
    """A torn line on the pipe does not tear the shim's report: the job's own exit code is
    recorded. A pipe the job filled (with an impossible wait status) neither blocks the shim
    nor crashes the runner: the attempt fails at once, saying the report was lost."""
    started = time.monotonic()
    result = run_process(
        _spec(tmp_path, [sys.executable, "-c", GARBLE, garble], timeout=30),
        LiveProcessGroups(),
        shims=job_shim,
    )
    assert time.monotonic() - started < 10
    assert not result.timed_out
    assert (tmp_path / "e").read_text() == ""
    if garble == "torn":
        assert (result.exit_code, result.lost_report, result.spawn_error) == (3, False, None)
    else:
        assert result.lost_report
        assert not result.succeeded
        assert result.exit_code is None
        record = OperationAttempt(attempt=1, status=RunStatus.FAILED, started_at="now")
        kind, text = describe_failure(record, result)
        assert kind is FailureKind.EXIT_NONZERO
        assert "without a readable report from its shim" in text


def test_the_shim_used_here_is_the_one_the_fixture_names(job_shim):
    """The fixture's native variant is a real, loaded native shim (not a skipped check)."""
    assert job_shim is None or isinstance(job_shim, NativeShim)


def test_sigterm_to_the_shim_alone_kills_the_whole_tree_and_it_still_reports(tmp_path, job_shim):
    """The runner's cancel signals the shim: it kills every descendant (setsid'd and
    double-forked ones too), reaps them and reports the command's death, under either shim."""
    pid_file = tmp_path / "left.pid"
    pid, status = _start_shim(
        job_shim, tmp_path, [sys.executable, "-c", CANCEL_JOB.format(pid_file=str(pid_file))]
    )
    deadline = time.monotonic() + 30
    while not pid_file.with_suffix(".daemon").exists() or not pid_file.exists():
        assert time.monotonic() < deadline, "the job never started its tree"
        time.sleep(0.02)
    left = [int(pid_file.read_text()), int(pid_file.with_suffix(".daemon").read_text())]
    os.kill(pid, signal.SIGTERM)
    _, shim_status, _ = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(shim_status) == 0
    report = status.reports()
    assert os.waitstatus_to_exitcode(int(report["wait_status"])) == -signal.SIGKILL
    assert not any(_alive(p) for p in left)


# Run as pid 1 of a new user and pid namespace, where pids can be chosen (ns_last_pid): a
# decoy gets pid 123, the job's eleven children 12300-12310. The shim, built to read /proc
# 63 bytes at a time, reads its job's children file ("12300 ... 12309 12310 ") in two reads:
# the first ends in "123", the start of 12310, which is not the decoy's pid.
PID_CUT_DRIVER = """
import json, os, signal, subprocess, sys, time
shim, ready = sys.argv[1], sys.argv[2]
def next_pid(pid):
    with open("/proc/sys/kernel/ns_last_pid", "w") as handle:
        handle.write(str(pid - 1))
next_pid(123)
decoy = subprocess.Popen(["sleep", "60"])
assert decoy.pid == 123, decoy.pid
job = (
    "import os, sys, time\\n"
    "open('/proc/sys/kernel/ns_last_pid', 'w').write('12299')\\n"
    "for _ in range(11):\\n"
    "    if os.fork() == 0:\\n"
    "        time.sleep(60)\\n"
    "        os._exit(0)\\n"
    f"open({ready!r}, 'w').close()\\n"
    "time.sleep(60)\\n"
)
read, write = os.pipe()
pid = os.posix_spawn(
    shim,
    [shim, "--status-fd", "3", "--cwd", "/", "--", sys.executable, "-c", job],
    dict(os.environ),
    file_actions=[(os.POSIX_SPAWN_DUP2, write, 3)],
)
os.close(write)
deadline = time.monotonic() + 30
while not os.path.exists(ready) and time.monotonic() < deadline:
    time.sleep(0.02)
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
report = os.read(read, 4096).decode()
def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False
print(json.dumps({
    "decoy_alive": decoy.poll() is None,
    "children_running": [p for p in range(12300, 12311) if running(p)],
    "report": report,
}))
"""


@needs_cc
def test_a_pid_cut_between_two_reads_of_proc_is_never_killed_as_another(tmp_path):
    """A job with more children than one read of /proc holds (about 10,000 at the real size):
    every child is still found and killed, and the start of a pid cut by the read's end is
    not taken for a pid of its own, which would SIGKILL an unrelated process of this user."""
    if subprocess.run(["unshare", "-Urpf", "--mount-proc", "true"], check=False).returncode:
        pytest.skip("no user and pid namespaces here to choose pids in")
    shim = tmp_path / "shim"
    subprocess.run(
        [
            "cc",
            *native_shim.CFLAGS,
            "-DPROC_TEXT_BYTES=64",
            "-o",
            str(shim),
            str(native_shim.SOURCE),
        ],
        check=True,
    )
    done = subprocess.run(
        [
            "unshare",
            "-Urpf",
            "--mount-proc",
            sys.executable,
            "-c",
            PID_CUT_DRIVER,
            str(shim),
            str(tmp_path / "ready"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["children_running"] == []
    assert '"wait_status": 9,' in seen["report"]  # the job itself was SIGKILLed
    assert seen["decoy_alive"], "the shim killed pid 123, which was never its job's"


# 120 MiB touched, then exec: the new image starts with a fresh high-water mark, so no
# sample of the tree after the exec sees the peak; only wait4's figure keeps it.
SPIKE_THEN_EXEC = (
    "import os\nspike = b'x' * (120 << 20)\nos.execv('/bin/sleep', ['sleep', '0.5'])\n"
)


def test_a_jobs_peak_is_its_own_under_a_runner_that_grew_large(tmp_path, job_shim):
    """The shim reports its own size, not the runner's: wait4's figure for a job's brief
    120 MiB peak is kept though the runner once held 300 MiB (a shim taking the runner's
    peak for its own discards that figure and reports what the sampler happened to see)."""
    ballast = b"r" * (300 << 20)
    result = run_process(
        _spec(tmp_path, [sys.executable, "-c", SPIKE_THEN_EXEC], timeout=30),
        LiveProcessGroups(),
        shims=job_shim,
    )
    assert len(ballast) == 300 << 20
    assert result.exit_code == 0
    assert result.peak_rss_mb is not None
    assert 120 <= result.peak_rss_mb < 200


@needs_cc
@pytest.mark.parametrize("status_fd", ["abc", "99999999999999999999", "-1", "1"])
def test_a_status_fd_that_is_not_one_is_a_usage_error_not_a_job(cache, tmp_path, status_fd):
    """The native shim runs nothing on a status fd it cannot use (not a number, past an int,
    or the job's own stdio, which it would make non-blocking and close-on-exec)."""
    marker = tmp_path / "ran"
    done = subprocess.run(
        [load().name, "--status-fd", status_fd, "--cwd", str(tmp_path), "--", "touch", str(marker)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert b"usage:" in done.stderr
    assert not marker.exists()


# 500 processes left behind: half in sessions of their own, half double-forked (their parent
# gone at once); each one's pid on stdout.
LEAVE_HUNDREDS = [
    "sh",
    "-c",
    "i=0; while [ $i -lt 250 ]; do setsid sleep 300 & echo $!; (sleep 300 & echo $!); "
    "i=$((i+1)); done",
]


def _end_of_a_job_leaving_hundreds(tmp_path: Path, shim: NativeShim | None) -> float:
    """Run LEAVE_HUNDREDS under `shim` (None: a Python shim) and check that it reports the
    command's exit and that none of the 500 is left; returns the CPU seconds of the shim and
    all it reaped (the job's own forking of the 500 is about 1 s of it here)."""
    pid, status = _start_shim(shim, tmp_path, LEAVE_HUNDREDS)
    _, shim_status, usage = os.wait4(pid, 0)
    assert os.waitstatus_to_exitcode(shim_status) == 0
    assert os.waitstatus_to_exitcode(int(status.reports()["wait_status"])) == 0
    left = [int(pid) for pid in (tmp_path / "o").read_text().split()]
    assert len(left) == 500
    assert not [pid for pid in left if _alive(pid)]
    return usage.ru_utime + usage.ru_stime


def test_a_job_leaving_hundreds_of_processes_ends_in_one_sweep_not_one_per_process(
    tmp_path, job_shim
):
    """The command leaves 500 processes and exits: the shim kills them all and reaps them
    with a couple of walks of the tree, not one walk per reaped process (which made this
    cost 4-7 s of CPU more, growing with the square of the count)."""
    assert _end_of_a_job_leaving_hundreds(tmp_path, job_shim) < 2.5


@needs_cc
def test_without_the_children_files_the_native_shim_still_ends_the_whole_tree(tmp_path):
    """On a kernel without /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN off) the shim
    finds the tree by its parents in one scan of /proc per walk: all 500 left behind
    (setsid'd and double-forked) are gone, without a scan per process of the tree (which
    cost 3 s of CPU for 300 here, more than the job's own forking)."""
    binary = tmp_path / "shim"
    subprocess.run(
        [
            "cc",
            *native_shim.CFLAGS,
            "-DWITHOUT_CHILDREN_FILES",
            "-o",
            str(binary),
            str(native_shim.SOURCE),
        ],
        check=True,
    )
    assert _end_of_a_job_leaving_hundreds(tmp_path, NativeShim(str(binary), str(binary))) < 2.5


def test_a_cancel_while_the_command_starts_does_not_let_it_run_on(tmp_path, job_shim):
    """SIGTERM reaches the shim while it is still joining the job's cgroup (held there by a
    FIFO in place of cgroup.procs): the command never runs on, under either shim; the shim
    ends by itself with a spawn error or the command's SIGKILL, never waits on it."""
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    os.mkfifo(cgroup / "cgroup.procs", 0o600)
    pid, status = _start_shim(
        job_shim, tmp_path, ["sh", "-c", "echo $$; exec sleep 600"], str(cgroup)
    )
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}/wchan").read_text() != "wait_for_partner":  # held in open()
        assert time.monotonic() < deadline, "the shim never reached its cgroup"
        time.sleep(0.02)
    os.kill(pid, signal.SIGTERM)
    # A reader lets it go on, if it still waits (never blocking this test if it does not).
    held = os.open(cgroup / "cgroup.procs", os.O_RDONLY | os.O_NONBLOCK)
    deadline = time.monotonic() + 10
    while (ended := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.close(held)
    started = (tmp_path / "o").read_text().split()
    if ended[0] == 0:
        for leftover in started:
            os.kill(int(leftover), signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert ended[0] == pid, "the shim let the cancelled command run on"
    report = status.reports()
    wait_status = report.get("wait_status")
    assert "spawn_error" in report or os.waitstatus_to_exitcode(int(wait_status)) == -9
    assert not [p for p in started if _alive(int(p))]
