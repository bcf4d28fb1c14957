"""The native job shim (jobshim.c): a job's parent is one small exec instead of a clone of a
Python interpreter (most of the engine's CPU per short job).

It is compiled lazily with the system `cc`, once per source, compiler and machine, into
`$XDG_CACHE_HOME/bunsui` (`~/.cache/bunsui`): a directory this user owns and nobody else may
write, reached through a descriptor (no path swapped under us), each file written whole and
renamed into place so concurrent runs never see half a binary. A cached binary is used only
when it is a regular file of this user that nobody else may write and its bytes match the
digest written beside it; anything else is compiled again. The bytes checked are the bytes
run: each process copies them once into a sealed memfd and execs that, so a job that rewrites
the cache cannot change the shim of the jobs its runner starts after it.

Without a compiler, a usable cache directory, or with `BUNSUI_NATIVE_SHIM=0`, `load` returns
None and the engine runs today's Python shim server.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bunsui_core.engine.jobshim import NATIVE_PREFIX

SOURCE = Path(__file__).with_name("jobshim.c")
SWITCH = "BUNSUI_NATIVE_SHIM"
CFLAGS = ("-O2", "-Wall", "-Wextra", "-Werror")
LINKING = (("-static",), ())
"""Static first (no dynamic loader per job: ~0.3 ms of CPU less here), else as the host can."""
COMPILE_SECONDS = 120.0
USAGE_EXIT = 2
"""The shim's exit without arguments: the probe that it runs here at all."""
STATUS_FD = 3
STALE_SECONDS = 86400.0
"""Another version's cached shim unchanged this long is removed when a new one is cached."""
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


@dataclass(frozen=True)
class NativeShim:
    """A verified native shim of this process; `spawn` starts one job under it."""

    executable: str
    """What posix_spawn runs: the sealed copy (/proc/self/fd/N), or the cache file."""
    name: str
    """argv[0], the cache path: what `ps` shows and job_identity recognises."""

    def spawn(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        cgroup: str | None,
        fds: tuple[int, int, int],
    ) -> int:
        """Start a job's shim with `fds` (stdout, stderr, status) and return its pid, a child
        of this process in a session of its own. OSError when it cannot be started."""
        args = [self.name, "--status-fd", str(STATUS_FD), "--cwd", str(cwd)]
        if cgroup is not None:
            args += ["--cgroup", cgroup]
        # Sources at 0-3 would be overwritten by the dup2s below before being copied.
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 4) if fd <= 3 else fd for fd in fds]
        out, err, status = moved
        try:
            return os.posix_spawn(
                self.executable,
                [*args, "--", *argv],
                env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out, 1),
                    (os.POSIX_SPAWN_DUP2, err, 2),
                    (os.POSIX_SPAWN_DUP2, status, STATUS_FD),
                ],
                setsid=True,
            )
        finally:
            for new, old in zip(moved, fds, strict=True):
                if new != old:
                    os.close(new)


def load() -> NativeShim | None:
    """This process's native shim, or None where it cannot be had (then: the Python shim)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None
    compiler = shutil.which("cc")
    if compiler is None:
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return _load(os.path.join(base, "bunsui"), compiler)


@functools.cache
def _load(directory: str, compiler: str) -> NativeShim | None:
    """Found or compiled once per process, cache directory and compiler."""
    source = SOURCE.read_bytes()
    real = os.path.realpath(compiler)
    try:
        facts = os.stat(real)
    except OSError:
        return None
    identity = f"{real}\0{facts.st_size}\0{facts.st_mtime_ns}\0{os.uname().machine}"
    key = hashlib.sha256(source + b"\0" + identity.encode()).hexdigest()[:32]
    name = NATIVE_PREFIX + key
    try:
        dir_fd = _private_directory(directory)
    except OSError:
        return None
    try:
        content = _trusted(dir_fd, name) or _compile(compiler, dir_fd, name)
    finally:
        os.close(dir_fd)
    if content is None:
        return None
    path = os.path.join(directory, name)
    sealed = _sealed_copy(content)
    if sealed is not None:
        if _runs(f"/proc/self/fd/{sealed}", path):
            return NativeShim(f"/proc/self/fd/{sealed}", path)
        os.close(sealed)  # exec of a memfd refused here (vm.memfd_noexec): the file, then
    return NativeShim(path, path) if _runs(path, path) else None


def _private_directory(directory: str) -> int:
    """A descriptor of `directory`, made 0700 if missing; OSError unless it is a real
    directory this user owns that no one else may write."""
    with contextlib.suppress(FileExistsError):
        os.makedirs(directory, mode=0o700)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    facts = os.fstat(fd)
    if facts.st_uid != os.geteuid() or facts.st_mode & 0o022:
        os.close(fd)
        raise PermissionError(f"{directory} is not this user's alone")
    return fd


def _read_own(dir_fd: int, name: str) -> bytes | None:
    """A regular file of this user that no one else may write, or None."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    with open(fd, "rb") as handle:
        facts = os.fstat(fd)
        if not stat.S_ISREG(facts.st_mode) or facts.st_uid != os.geteuid():
            return None
        return None if facts.st_mode & 0o022 else handle.read()


def _trusted(dir_fd: int, name: str) -> bytes | None:
    """The cached binary when it and its digest are this user's own and agree."""
    content = _read_own(dir_fd, name)
    digest = _read_own(dir_fd, name + ".sha256")
    if content is None or digest is None:
        return None
    return content if hashlib.sha256(content).hexdigest().encode() == digest else None


def _compile(compiler: str, dir_fd: int, name: str) -> bytes | None:
    """Compile the shim in a private temporary directory and cache it (best effort)."""
    import tempfile  # noqa: PLC0415 - only a process that compiles pays for it

    with tempfile.TemporaryDirectory(prefix="bunsui-cc-") as scratch:
        output = os.path.join(scratch, "shim")
        for linking in LINKING:
            try:
                done = subprocess.run(
                    [compiler, *CFLAGS, *linking, "-o", output, str(SOURCE)],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=COMPILE_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError):
                return None
            if done.returncode == 0:
                content = Path(output).read_bytes()
                break
        else:
            return None
    with contextlib.suppress(OSError):  # an unwritable cache costs the next process a compile
        _write_atomically(dir_fd, name, content, 0o700)
        _write_atomically(dir_fd, name + ".sha256", hashlib.sha256(content).hexdigest().encode())
        _remove_stale(dir_fd, name)
    return content


def _remove_stale(dir_fd: int, keep: str) -> None:
    """Other versions' shims (and torn temporary files) untouched for a day: upgrades do not
    leave their binaries behind for ever, and two installs in use do not undo each other."""
    now = time.time()
    for entry in os.scandir(dir_fd):
        if NATIVE_PREFIX not in entry.name or entry.name.startswith((keep, f".{keep}")):
            continue
        with contextlib.suppress(OSError):
            if now - entry.stat(follow_symlinks=False).st_mtime > STALE_SECONDS:
                os.unlink(entry.name, dir_fd=dir_fd)


def _write_atomically(dir_fd: int, name: str, content: bytes, mode: int = 0o600) -> None:
    """A new file under a temporary name, renamed over `name`: readers see old or new."""
    temporary = f".{name}.{os.getpid()}.{os.urandom(4).hex()}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, mode, dir_fd=dir_fd)
    try:
        with open(fd, "wb") as handle:
            handle.write(content)
        os.rename(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)
        raise


def _sealed_copy(content: bytes) -> int | None:
    """A memfd holding `content` that nobody (this user included) can change any more."""
    try:
        created = os.memfd_create("bunsui-jobshim", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    except OSError:
        return None
    # Above the descriptors `spawn` gives the shim (0-3): its dup2s run before the exec.
    fd = fcntl.fcntl(created, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(created)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except OSError:
        os.close(fd)
        return None
    return fd


def _runs(executable: str, name: str) -> bool:
    """Whether the shim runs here (exec allowed, right machine): without arguments it must
    print its usage and exit 2."""
    try:
        pid = os.posix_spawn(
            executable,
            [name],
            {},
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ],
        )
        _, status = os.waitpid(pid, 0)
    except OSError:
        return False
    return os.waitstatus_to_exitcode(status) == USAGE_EXIT
