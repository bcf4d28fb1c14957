"""The policy file in force: looked at on every use, compiled once per content.

What a policy file may say, and how it is checked, is `policy_reader`'s; compiling means
importing and running the YAML parser, so compiled policies are cached in the home, keyed by
everything a compile depends on, and a CLI call whose policy did not change skips it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from bunsui_core.config import os_user
from bunsui_core.errors import ErrorCode, InvalidArgumentError
from bunsui_core.governance.canonical import sha256_text
from bunsui_core.governance.policy import Policy


class PolicyInvalidError(InvalidArgumentError):
    """A policy file that cannot be trusted; nothing is allowed under it."""

    default_code = ErrorCode.POLICY_INVALID


def read_policy_text(path: Path) -> str:
    """The policy file's text; an unreadable file is POLICY_INVALID (nothing is allowed)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> PolicyInvalidError:
    return PolicyInvalidError(
        f"cannot read policy file {path}: {exc}", details={"source": str(path), "problems": []}
    )


RECENT_NS = 2_000_000_000
"""A file changed this recently may change again within one timestamp tick (a few ms on
Linux) and keep its size: its bytes are hashed on every use, not trusted by stat."""


class LivePolicy:
    """The policy in a file that may change under a running server: a stat per use; the
    bytes are read and hashed only when the stat changed (or is too recent to trust), and
    recompiled only when the hash changed. An unreadable or invalid file fails every use
    until it is fixed (closed)."""

    def __init__(
        self,
        path: Path,
        known_actions: Callable[[], Collection[str]],
        cache: PolicyCache | None = None,
    ) -> None:
        self.path = path
        self.known_actions = known_actions
        self.cache = cache
        self._lock = threading.Lock()
        self._seen: tuple[tuple[int, ...], Policy] | None = None

    def current(self) -> Policy:
        """The policy as the file holds it now."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise _unreadable(self.path, exc) from None
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        seen = self._seen
        if seen is not None and seen[0] == key and time.time_ns() - st.st_mtime_ns > RECENT_NS:
            return seen[1]
        with self._lock:
            text = read_policy_text(self.path)
            seen = self._seen
            if seen is None or seen[1].hash != sha256_text(text):
                policy = compile_policy(
                    text,
                    source=str(self.path),
                    known_actions=self.known_actions(),
                    cache=self.cache,
                )
            else:
                policy = seen[1]
            self._seen = (key, policy)
            return policy


def load_policy(path: Path, known_actions: Collection[str]) -> Policy:
    """Read and check a policy file against the actions bunsui offers."""
    return compile_policy(read_policy_text(path), source=str(path), known_actions=known_actions)


COMPILER_MODULES = ("policy.py", "policy_reader.py")
"""The code a compiled policy depends on: a changed (upgraded) compiler recompiles."""


@dataclass(frozen=True)
class PolicyCache:
    """Compiled policies in a directory (the home's `cache/`), one file per policy path,
    valid only for the exact text, action set, local user (`$OS_USER`) and compiler they
    were compiled from. Not writable in read-only mode, which writes nothing."""

    directory: Path
    writable: bool

    def get(self, key: str, source: str) -> Policy | None:
        """The policy compiled under `key`, or None (missing, stale or unreadable)."""
        try:
            stored = json.loads(self._entry(source).read_bytes())
            if stored["key"] == key:
                return Policy.model_validate(stored["policy"])
        except (OSError, ValueError, TypeError, KeyError):
            pass
        return None

    def put(self, key: str, policy: Policy) -> None:
        """Keep a compile (atomically, private to the owner). A policy saying `read_only:
        true` is not kept: under it nothing is written. A cache that cannot be written
        costs the next call a compile, nothing else."""
        if not self.writable or policy.read_only:
            return
        entry = self._entry(policy.source)
        temporary = entry.with_name(f"{entry.name}.{os.getpid()}.{threading.get_ident()}")
        data = json.dumps({"key": key, "policy": policy.model_dump(mode="json")})
        try:
            self.directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(temporary, entry)
        except OSError:
            temporary.unlink(missing_ok=True)

    def _entry(self, source: str) -> Path:
        return self.directory / f"policy-{sha256_text(source)[:32]}.json"


def cache_key(text: str, source: str, known_actions: Collection[str]) -> str | None:
    """The SHA-256 of everything a compile depends on; None when the compiler's own files
    cannot be looked at (then nothing is cached)."""
    here = Path(__file__).parent
    try:
        stamps = [os.stat(here / name) for name in COMPILER_MODULES]
    except OSError:
        return None
    parts = [text, source, os_user(), *sorted(known_actions)]
    parts += [f"{st.st_size}:{st.st_mtime_ns}" for st in stamps]
    return sha256_text("\0".join(parts))


def compile_policy(
    text: str, *, source: str, known_actions: Collection[str], cache: PolicyCache | None = None
) -> Policy:
    """The policy `text` compiles to, from `cache` when it was compiled before; a file
    that does not compile is never cached, so it fails every use until it is fixed."""
    key = cache_key(text, source, known_actions) if cache is not None else None
    if cache is not None and key is not None and (cached := cache.get(key, source)):
        return cached
    from bunsui_core.governance.policy_reader import parse_policy  # noqa: PLC0415 - YAML

    policy = parse_policy(text, source=source, known_actions=known_actions)
    if cache is not None and key is not None:
        cache.put(key, policy)
    return policy
