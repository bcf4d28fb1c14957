"""The CLI server: the real `bunsui` script served by a real forked server over its socket.

What a user relies on: a served call behaves exactly as the in-process one (output, exit
codes, stdin, working directory, Ctrl-C); it is cheaper (the calling process loads nothing
of bunsui's); and nobody gets more through the server than without it: a job's code is
still never the human, another user never gets served, garbage never stops it, stale code
never serves.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import bunsui_mcp.cli_server
from bunsui_mcp import cli_client
from tests.conftest import command_job, etl_pipeline, pipeline_data
from tests.e2e.test_cli import BUNSUI, Cli, process_alive, wait_for
from tests.e2e.test_cli_startup import probe, within
from tests.e2e.test_job_cannot_approve import _pending_ticket

pytestmark = pytest.mark.skipif(
    not cli_client.server_may_run(),
    reason="this kernel cannot name a socket's peer by pidfd (SO_PEERPIDFD, Linux 6.5+): "
    "no CLI server runs here, every call is in-process",
)

SERVED_HELP = """
import sys
from bunsui_mcp import cli_client
sys.exit(cli_client.run_remote(["bunsui", "--help"]) is None)
"""
"""Exit 0 when the server ran `bunsui --help`, 1 when the call was not served."""

SLEEPER = (
    "import os, pathlib, sys, time\n"
    "pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))\n"
    "time.sleep(600)"
)

NOT_IN_CLIENT = ("typer", "pydantic", "click", "yaml", "sqlite3")
CLIENT_MODULES = {
    "bunsui_mcp",
    "bunsui_mcp.cli_main",
    "bunsui_mcp.cli_client",
    "bunsui_core",
    "bunsui_core._lazy",
    "bunsui_core.engine",
    "bunsui_core.engine.job_marks",
    "bunsui_core.engine.jobshim",
    "bunsui_core.engine.process_tree",
}
"""The client's own modules and the standard-library-only ones that check its server."""


class Served:
    """A private runtime directory (so a private server) and the environment to reach it."""

    def __init__(self, runtime: Path, home: Path) -> None:
        self.runtime = runtime
        self.home = home
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/root"),
            "XDG_RUNTIME_DIR": str(runtime),
            "BUNSUI_HOME": str(home),
            "BUNSUI_CLI_SERVER_IDLE": "120",
        }

    def run(
        self, *args: str, served: bool = True, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        env = self.env if served else {**self.env, "BUNSUI_CLI_SERVER": "0"}
        options: dict[str, object] = {"capture_output": True, "text": True, "timeout": 60}
        options.update(kwargs)
        return subprocess.run([BUNSUI, *args], env=env, check=False, **options)  # type: ignore[call-overload, no-any-return]

    def socket_path(self) -> Path | None:
        found = sorted((self.runtime / "bunsui").glob("cli-*.sock"))
        return found[0] if found else None

    def socket_for_its_environment(self) -> Path:
        """Where a call with this environment looks for its server (there may be none)."""
        where = subprocess.run(
            [
                sys.executable,
                "-c",
                "from bunsui_mcp import cli_client as c; print(c.socket_path())",
            ],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return Path(where.stdout.strip())

    def server_pids(self) -> list[int]:
        """Processes running this runtime directory's server."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    argv = (entry / "cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"bunsui_mcp.cli_server" in argv and any(
                    str(self.runtime).encode() in a for a in argv
                ):
                    pids.append(int(entry.name))
        return pids

    def start(self) -> int:
        """One call (in-process, it starts the server), then wait until the server serves."""
        assert self.run("session", "list").returncode == 0
        wait_for(self.serves, timeout=30)
        [pid] = self.server_pids()
        return pid

    def serves(self) -> bool:
        """Whether a call with this environment is served now (`--help`, output dropped)."""
        done = subprocess.run(
            [sys.executable, "-c", SERVED_HELP],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        return done.returncode == 0

    def stop(self) -> None:
        for pid in self.server_pids():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # A short path: a Unix socket's path holds 108 bytes, pytest's tmp paths are long.
    runtime = Path(tempfile.mkdtemp(prefix="bs-", dir="/tmp"))
    runtime.chmod(0o700)
    server = Served(runtime, tmp_path / "home")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(runtime, ignore_errors=True)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_served_call_matches_the_in_process_call(served: Served, tmp_path: Path):
    """Same stdout, stderr and exit code for successes, coded errors, usage errors, help,
    a relative path (the caller's working directory) and a message on stdin."""
    served.start()
    assert Path(etl_pipeline(tmp_path)) == tmp_path / "etl.yaml"
    calls: list[tuple[tuple[str, ...], str | None]] = [
        (("--format", "table", "session", "list"), None),
        (("session", "describe", "ses-nope"), None),
        (("bogus",), None),
        (("session", "--help"), None),
        (("pipeline", "validate", "etl.yaml"), None),
        (("error", "classify"), "ModuleNotFoundError: No module named 'pandas'"),
    ]
    for args, stdin in calls:
        both = [served.run(*args, served=flag, cwd=tmp_path, input=stdin) for flag in (True, False)]
        assert next((r.returncode, r.stdout, r.stderr) for r in both) == (
            both[1].returncode,
            both[1].stdout,
            both[1].stderr,
        ), args
    assert served.run("session", "describe", "ses-nope").returncode == 3
    assert json.loads(served.run("pipeline", "validate", "etl.yaml", cwd=tmp_path).stdout)


def test_a_served_call_loads_nothing_of_bunsui_in_the_calling_process(served: Served):
    """The point of the server: the caller imports the standard library and the client."""
    served.start()
    modules, _models = probe(served.home, "session", "list", env=served.env)
    assert "bunsui_mcp.cli_client" in modules
    assert within(modules, NOT_IN_CLIENT) == []
    assert {m for m in modules if m.startswith("bunsui")} <= CLIENT_MODULES
    off, _models = probe(
        served.home, "session", "list", env={**served.env, "BUNSUI_CLI_SERVER": "0"}
    )
    assert "bunsui_core.actions.sessions" in off


def sleeper_pipeline(tmp_path: Path) -> tuple[Path, Path]:
    """A pipeline whose one job writes its pid to the second path, then sleeps 600 s."""
    started = tmp_path / "started"
    job = command_job("sleeper", SLEEPER)
    job["operations"][0]["config"]["parameters"]["command"].append(str(started))
    pipeline = tmp_path / "long.yaml"
    pipeline.write_text(yaml.safe_dump(pipeline_data(job, name="long")))
    return pipeline, started


def test_a_killed_client_takes_its_command_with_it(served: Served, tmp_path: Path):
    """kill -9 of the `bunsui` process ends the fork running its command (as killing an
    in-process CLI ends it); the server goes on serving."""
    server = served.start()
    pipeline, started = sleeper_pipeline(tmp_path)
    run = subprocess.Popen(
        [BUNSUI, "pipeline", "run", str(pipeline), "--wait"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=served.env,
    )
    try:
        wait_for(lambda: started.exists() and started.read_text(), timeout=30)
        [command] = children(server)
        run.kill()
        run.wait()
        wait_for(lambda: children(server) == [], timeout=10)
        assert not process_alive(command)
        assert served.run("session", "list").returncode == 0
    finally:  # the job itself outlives a killed runner, as in-process: never leave it
        if started.exists() and started.read_text():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(started.read_text()), signal.SIGKILL)


JOB_APPROVES = """
import glob, json, os, socket, subprocess, sys
from bunsui_mcp import cli_client
home, runtime, bunsui, ticket, out = sys.argv[1:6]
approve = [bunsui, "--format", "json", "approval", "approve", ticket, "--reason", "job"]
if os.fork() == 0:  # leave the job's variables and session behind
    os.setsid()
    os.environ.clear()
    os.environ.update({"PATH": os.environ.get("PATH", ""), "BUNSUI_HOME": home,
                       "XDG_RUNTIME_DIR": runtime})
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        [path] = glob.glob(os.path.join(runtime, "bunsui", "cli-*.sock"))  # the human's
        server.connect(path)
        answer = cli_client._send_request(server, approve, [0, 1, 2])
    done = subprocess.run(approve, capture_output=True, text=True)
    with open(out, "w") as report:
        json.dump({"answer": answer, "code": done.returncode, "stdout": done.stdout}, report)
    os._exit(0)
os.wait()
"""


def test_a_job_calling_through_the_server_is_never_served(served: Served, tmp_path: Path):
    """A job's code reaches the human's server (same user, same socket) with a scrubbed
    environment from a setsid'd fork. The server's fork judges the process that connected
    (named by the kernel with a pidfd at connect: its cgroups, itself, its ancestors) and
    answers 0: not served. Had it been served, what the command starts (a detached runner,
    with an environment the job chose) would live outside the job's tree. The call then
    runs in-process inside the job, where approving is PERMISSION_DENIED; the ticket stays
    pending."""
    served.start()
    ticket = _pending_ticket(Cli(served.home), tmp_path)
    out = tmp_path / "approval.json"
    job = command_job("sneaky", "pass")
    job["operations"][0]["config"]["parameters"]["command"] = [
        sys.executable,
        "-c",
        JOB_APPROVES,
        str(served.home),
        str(served.runtime),
        BUNSUI,
        ticket,
        str(out),
    ]
    pipeline = tmp_path / "sneaky.yaml"
    pipeline.write_text(yaml.safe_dump(pipeline_data(job, name="sneaky")))
    assert served.run("pipeline", "run", str(pipeline), "--wait").returncode == 0
    report = json.loads(out.read_text())
    assert report["answer"] is None
    assert report["code"] != 0
    refusal = json.loads(report["stdout"])["error"]
    assert refusal["code"] == "PERMISSION_DENIED"
    assert "inside a job" in refusal["details"]["rule"]
    assert json.loads(served.run("approval", "show", ticket).stdout)["status"] == "pending"
    assert served.serves()  # and the server goes on serving its user


@pytest.mark.parametrize("scrubbed", [False, True])
def test_no_server_starts_inside_a_job(served: Served, tmp_path: Path, scrubbed: bool):
    """A job's first `bunsui` call runs in-process and starts no server: the client does not
    try while the job's variables are set, and the server its call starts once they are
    scrubbed refuses to run (a server inside a job would die with it and be the job's).
    `--help`: a job may not even list sessions as the human."""
    runtime = Path(tempfile.mkdtemp(prefix="bs-job-", dir="/tmp"))
    try:
        runtime.chmod(0o700)
        job = command_job("lister", "pass", parameters={"env": {"XDG_RUNTIME_DIR": str(runtime)}})
        scrub = ["env", "-u", "BUNSUI_SESSION_ID", "-u", "BUNSUI_JOB_ID"] if scrubbed else []
        job["operations"][0]["config"]["parameters"]["command"] = [*scrub, BUNSUI, "--help"]
        pipeline = tmp_path / "lister.yaml"
        pipeline.write_text(yaml.safe_dump(pipeline_data(job, name="lister")))
        ran = served.run("pipeline", "run", str(pipeline), "--wait")
        assert json.loads(ran.stdout)["status"] == "completed", ran.stderr
        time.sleep(3)  # time enough for a server to bind, had it started
        assert list((runtime / "bunsui").glob("*.sock")) == []
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a client as another user")
def test_another_user_is_never_served(served: Served):
    """Even with the directory and socket opened to everyone, a client of another uid gets
    no command: the server checks the peer's credentials; its own user is served after."""
    served.start()
    path = served.socket_path()
    assert path is not None
    for each in (served.runtime, path.parent, path):
        each.chmod(0o777 if each == path else 0o755)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # another user's client: the same request our client sends
        outcome = b"error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
                peer.connect(str(path))
                outcome = repr(
                    cli_client._send_request(peer, ["bunsui", "session", "list"], [0, 1, 2])
                )
                outcome = outcome.encode()
        finally:
            os.write(write, outcome)
            os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read, "rb") as answer:
        assert answer.read() == b"None"
    assert served.run("session", "list").returncode == 0


def test_a_private_directory_is_required(served: Served):
    """A runtime directory others may write: no server (the call runs in-process)."""
    (served.runtime / "bunsui").mkdir(mode=0o755)
    (served.runtime / "bunsui").chmod(0o755)
    assert served.run("session", "list").returncode == 0
    time.sleep(2)
    assert served.socket_path() is None
    assert not cli_client.private_directory(str(served.runtime / "bunsui"))


def test_garbage_on_the_socket_does_not_stop_the_server(served: Served):
    """A peer that sends junk, or connects and says nothing, is dropped; calls go on."""
    server = served.start()
    path = served.socket_path()
    for junk in (b"\xff" * 64, b"\x00\x00\x00\x05{bad}", b""):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
            peer.connect(str(path))
            peer.sendall(junk)
            peer.shutdown(socket.SHUT_WR)
            with contextlib.suppress(ConnectionResetError):  # closed unread: reset
                answer = peer.recv(cli_client.ANSWER.size)
                # never a pid: at most how the fork that read the junk ended
                assert answer == b"" or answer[0] == cli_client.ENDED
    assert served.run("session", "list").returncode == 0
    assert served.server_pids() == [server]


def test_changed_code_is_never_served(served: Served):
    """After an upgrade (a loaded module's file changed) the server refuses the call, which
    runs in-process, and exits; the next call starts a fresh server."""
    old = served.start()
    module = Path(bunsui_mcp.cli_server.__file__)
    before = module.stat()
    try:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        assert served.run("session", "list").returncode == 0
        wait_for(lambda: old not in served.server_pids(), timeout=10)
    finally:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert served.start() != old


def test_an_idle_server_exits_and_removes_its_socket(served: Served):
    served.env["BUNSUI_CLI_SERVER_IDLE"] = "1"
    served.start()
    wait_for(lambda: not served.server_pids() and served.socket_path() is None, timeout=15)


def test_the_switch_turns_the_server_off(served: Served):
    served.env["BUNSUI_CLI_SERVER"] = "0"
    assert served.run("session", "list").returncode == 0
    time.sleep(2)
    assert served.socket_path() is None
    assert served.server_pids() == []


IMPOSTOR = """
import os, pathlib, socket, sys
path, out = sys.argv[1], pathlib.Path(sys.argv[2])
os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen()
out.joinpath("ready").write_text("1")
listener.settimeout(60)
caller, _ = listener.accept()
caller.settimeout(10)
got, descriptors, _flags, _address = socket.recv_fds(caller, 65536, 8)
out.joinpath("got").write_text(repr((got, len(descriptors))))
"""


def test_a_job_listening_in_the_servers_place_gets_nothing(served: Served, tmp_path: Path):
    """A job's code binds the socket a user's next call will use before any server does:
    the client sees the listener is inside a job (its pidfd's cgroups and ancestors), sends
    it nothing (no descriptors, no environment) and runs the call in-process."""
    where = str(served.socket_for_its_environment())
    out = tmp_path / "impostor"
    out.mkdir()
    job = command_job("impostor", "pass")
    job["operations"][0]["config"]["parameters"]["command"] = [
        sys.executable,
        "-c",
        IMPOSTOR,
        where,
        str(out),
    ]
    pipeline = tmp_path / "impostor.yaml"
    pipeline.write_text(yaml.safe_dump(pipeline_data(job, name="impostor")))
    run = subprocess.Popen(
        [BUNSUI, "pipeline", "run", str(pipeline), "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**served.env, "BUNSUI_CLI_SERVER": "0"},
    )
    try:
        wait_for((out / "ready").exists, timeout=30)
        listed = served.run("session", "list")
        assert listed.returncode == 0, listed.stderr
        assert json.loads(listed.stdout)["sessions"][0]["pipeline_id"] == "impostor"
        wait_for((out / "got").exists, timeout=15)
        assert (out / "got").read_text() == repr((b"", 0))
        run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()


def test_a_silent_client_holds_up_nobody(served: Served):
    """Each connection gets its own fork, which reads the request: a peer that connects
    and sends nothing (or one byte every few seconds) never delays another call."""
    served.start()
    path = served.socket_path()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(path))
        silent.sendall(b"\x00")
        started = time.monotonic()
        assert served.run("session", "list").returncode == 0
        assert time.monotonic() - started < 3
        assert served.serves()


def test_an_ignored_sigint_is_handled_as_in_process(served: Served, tmp_path: Path):
    """A script's background `bunsui ... &` inherits SIGINT ignored; a foreground run still
    cancels on `kill -INT` (it installs its own handler), served as in-process: exit 12."""
    served.start()
    pipeline, started = sleeper_pipeline(tmp_path)
    codes = []
    for flag in (True, False):
        started.unlink(missing_ok=True)
        run = subprocess.Popen(  # `trap "" INT`: ignored, and so across exec
            [
                "sh",
                "-c",
                'trap "" INT; exec "$0" "$@"',
                BUNSUI,
                "pipeline",
                "run",
                str(pipeline),
                "--wait",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=served.env if flag else {**served.env, "BUNSUI_CLI_SERVER": "0"},
        )
        try:
            wait_for(lambda: started.exists() and started.read_text(), timeout=30)
            run.send_signal(signal.SIGINT)
            codes.append(run.wait(timeout=15))
        finally:
            if run.poll() is None:
                run.kill()
    assert codes == [12, 12]


def test_closed_stdio_is_handled_as_in_process(served: Served):
    """With stdin or stdout closed, a served call ends as the in-process one does (never
    waiting on a descriptor of the client's own)."""
    served.start()
    for redirect in ("<&-", ">&-"):
        codes = []
        for flag in (True, False):
            env = served.env if flag else {**served.env, "BUNSUI_CLI_SERVER": "0"}
            done = subprocess.run(
                ["sh", "-c", f'exec "$0" "$@" {redirect}', BUNSUI, "error", "classify"],
                capture_output=True,
                env=env,
                timeout=30,
                check=False,
            )
            codes.append(done.returncode)
        assert codes[0] == codes[1], (redirect, codes)


def test_the_server_keeps_none_of_the_first_callers_descriptors(served: Served):
    """A pipe the first caller had open (fd 3 here) is not held open by the server it
    starts: a reader waiting for its end of file gets it when the call ends."""
    done = subprocess.run(
        ["sh", "-c", f'{{ "{BUNSUI}" session list 3>&1 >/dev/null 2>&1; }} | cat'],
        env=served.env,
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0
    wait_for(served.serves, timeout=30)


def test_a_held_start_lock_piles_up_no_servers(served: Served):
    """Whoever holds the lock beside the socket (a job's code can) only keeps the server
    away: calls run in-process, and no server process waits on the lock."""
    path = served.socket_for_its_environment()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for _ in range(3):
            assert served.run("session", "list").returncode == 0
        time.sleep(3)
        assert served.server_pids() == []


def test_ctrl_z_then_ctrl_c_reach_a_served_foreground_run(served: Served, tmp_path: Path):
    """SIGTSTP to the `bunsui` the user started stops the fork running its command too (as
    Ctrl-Z stops an in-process CLI); SIGCONT resumes both; SIGINT then cancels the run:
    exit 12, session cancelled, as in-process (tests/e2e/test_cli_interrupt.py)."""
    server = served.start()
    pipeline, started = sleeper_pipeline(tmp_path)
    run = subprocess.Popen(
        [BUNSUI, "--format", "json", "pipeline", "run", str(pipeline), "--wait"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=served.env,
        # its own process group below this one, as a shell's job is: the kernel discards
        # a terminal stop sent to an orphaned group (under `make`, say), in-process too
        process_group=0,
    )
    try:
        wait_for(lambda: started.exists() and started.read_text(), timeout=30)
        [command] = children(server)
        run.send_signal(signal.SIGTSTP)
        wait_for(lambda: state(command) == "T" and state(run.pid) == "T", timeout=10)
        run.send_signal(signal.SIGCONT)
        wait_for(lambda: state(command) != "T" and state(run.pid) != "T", timeout=10)
        run.send_signal(signal.SIGINT)
        stdout, _ = run.communicate(timeout=15)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
        if started.exists() and started.read_text():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(started.read_text()), signal.SIGKILL)
    assert run.returncode == 12
    assert json.loads(stdout)["status"] == "cancelled"


def state(pid: int) -> str:
    """A process's state letter (R, S, T, Z...)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
