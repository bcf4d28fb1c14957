"""Settings every entry point resolves the same way: flag, then environment, then default."""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bunsui_core.errors import InvalidArgumentError

HOME_ENV = "BUNSUI_HOME"
POLICY_ENV = "BUNSUI_POLICY"
READ_ONLY_ENV = "BUNSUI_READ_ONLY"
BACKEND_ENV = "BUNSUI_BACKEND"
BACKENDS = ("local", "aws")
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
CONFIG_KEYS = frozenset({"backend", "aws", "engine", "pipeline_roots"})

AWS_KEYS = frozenset(
    {
        "region",
        "table_prefix",
        "endpoint_url",
        "state_machine_role_arn",
        "ecs_cluster",
        "ecs_subnets",
        "ecs_security_groups",
        "log_group_prefix",
    }
)
"""What `$BUNSUI_HOME/config.yaml` may set under `aws:`. Never credentials: those come from
boto3's standard chain (environment, profile, instance role) only."""


ENGINE_KEYS = frozenset({"pass_env", "log_max_bytes", "memory_enforcement"})
"""What `$BUNSUI_HOME/config.yaml` may set under `engine:` (the local engine)."""
MEMORY_ENFORCEMENTS = ("auto", "cgroup_v2", "cgroup_v1", "watchdog")


@dataclass(frozen=True)
class EngineSettings:
    """How the local engine runs jobs."""

    pass_env: tuple[str, ...] = ()
    """Launcher variables (names or fnmatch patterns) every job inherits, besides its own."""
    log_max_bytes: int = 64 * 2**20
    """Each stdout/stderr log keeps at most this many bytes: the newest."""
    memory_enforcement: str = "auto"
    """auto: the best of cgroup_v2, cgroup_v1, watchdog this host allows; or one of them."""


def _engine_settings(path: Path, section: Any) -> EngineSettings:
    """The `engine:` section, checked: a bad value fails loudly instead of being ignored."""
    if section is None:
        return EngineSettings()
    if not isinstance(section, dict) or set(section) - ENGINE_KEYS:
        raise InvalidArgumentError(
            f"{path}: engine allows {', '.join(sorted(ENGINE_KEYS))}",
            details={"field": "engine"},
        )
    pass_env = section.get("pass_env", [])
    max_bytes = section.get("log_max_bytes", EngineSettings.log_max_bytes)
    enforcement = section.get("memory_enforcement", "auto")
    if not isinstance(pass_env, list) or not all(isinstance(n, str) for n in pass_env):
        raise InvalidArgumentError(f"{path}: engine.pass_env must be a list of names")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 4096:
        raise InvalidArgumentError(f"{path}: engine.log_max_bytes must be an integer >= 4096")
    if enforcement not in MEMORY_ENFORCEMENTS:
        raise InvalidArgumentError(
            f"{path}: engine.memory_enforcement must be one of {', '.join(MEMORY_ENFORCEMENTS)}"
        )
    return EngineSettings(tuple(pass_env), max_bytes, enforcement)


PRIVATE_UMASK = 0o077
"""What bunsui's entry points run under: the files they (and the runners and jobs they start)
create are the owner's alone (database, logs, work files 0600, directories 0700)."""


def os_user() -> str:
    """The local user this process runs as, from its effective uid: never from USER or
    LOGNAME, which any process (an agent's account included) can set to a human's name."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid with no passwd entry (some containers)
        return str(os.geteuid())


@dataclass(frozen=True)
class AwsSettings:
    """Where the AWS backend keeps state and runs work."""

    region: str | None = None
    table_prefix: str = "bunsui"
    endpoint_url: str | None = None
    state_machine_role_arn: str | None = None
    ecs_cluster: str | None = None
    ecs_subnets: tuple[str, ...] = ()
    ecs_security_groups: tuple[str, ...] = ()
    log_group_prefix: str = "/bunsui"


def _config_file(home: Path) -> dict[str, Any]:
    """`$BUNSUI_HOME/config.yaml`, or {} when there is none (YAML is only loaded then)."""
    path = home / "config.yaml"
    if not path.is_file():
        return {}
    import yaml  # noqa: PLC0415 - only when a config file exists

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidArgumentError(f"cannot read {path}: {exc}") from None
    unknown = set(data) - CONFIG_KEYS if isinstance(data, dict) else {"(root)"}
    aws = data.get("aws", {}) if isinstance(data, dict) else None
    if unknown or not isinstance(aws, dict) or set(aws) - AWS_KEYS:
        raise InvalidArgumentError(
            f"{path}: allowed keys are {', '.join(sorted(CONFIG_KEYS))} and under aws: "
            f"{', '.join(sorted(AWS_KEYS))}",
            details={
                "unknown": sorted(
                    unknown | (set(aws) - AWS_KEYS if isinstance(aws, dict) else set())
                )
            },
        )
    roots = data.get("pipeline_roots", [])
    if not (isinstance(roots, list) and all(isinstance(r, str) for r in roots)):
        raise InvalidArgumentError(
            f"{path}: pipeline_roots must be a list of directories",
            details={"field": "pipeline_roots"},
        )
    return data


def pipeline_roots(dirs: Sequence[str | Path], *, base: Path) -> tuple[Path, ...]:
    """The real paths of the directories agents may name pipeline files in; each must exist,
    so a typo is an error rather than a root that confines agents to nothing."""
    roots = []
    for entry in dirs:
        root = Path(os.path.realpath(base / Path(entry).expanduser()))
        if not root.is_dir():
            raise InvalidArgumentError(
                f"pipeline root {entry} is not a directory", details={"field": "pipeline_roots"}
            )
        roots.append(root)
    return tuple(roots)


@dataclass(frozen=True)
class Settings:
    """Where bunsui keeps its state, which policy governs it, and whether it may write."""

    home: Path
    policy_path: Path | None = None
    """None: the policy shipped with bunsui (`policies/default.yaml`)."""
    read_only: bool = False
    """Set by flag or environment; a policy's `read_only: true` also applies (gateway)."""
    backend: str = "local"
    """local: SQLite under home, local processes. aws: DynamoDB, Step Functions."""
    aws: AwsSettings = field(default_factory=AwsSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    pipeline_roots: tuple[Path, ...] = ()
    """Directories agents may name pipeline files in (real paths); none: agents name none."""

    @classmethod
    def resolve(
        cls,
        home: str | Path | None = None,
        *,
        policy: str | Path | None = None,
        read_only: bool | None = None,
        backend: str | None = None,
        pipelines_dirs: Sequence[str | Path] | None = None,
    ) -> Settings:
        """Each setting from its argument, else its environment variable, else the home's
        config.yaml, else the default.

        Read-only mode can be switched on by either the flag or the environment, never off by
        one when the other asks for it.
        """
        chosen = Path(home or os.environ.get(HOME_ENV) or Path.home() / ".bunsui")
        chosen = chosen.expanduser().resolve()
        policy = policy or os.environ.get(POLICY_ENV) or None
        from_env = os.environ.get(READ_ONLY_ENV, "").strip().lower() in TRUE_WORDS
        config = _config_file(chosen)
        backend = backend or os.environ.get(BACKEND_ENV) or config.get("backend") or "local"
        if backend not in BACKENDS:
            raise InvalidArgumentError(
                f"backend must be local or aws, not {backend!r}", details={"field": "backend"}
            )
        aws = dict(config.get("aws") or {})
        for key in ("ecs_subnets", "ecs_security_groups"):
            if key in aws:
                aws[key] = tuple(aws[key])
        return cls(
            home=chosen,
            policy_path=Path(policy).expanduser().resolve() if policy else None,
            read_only=bool(read_only) or from_env,
            backend=backend,
            aws=AwsSettings(**aws),
            engine=_engine_settings(chosen / "config.yaml", config.get("engine")),
            pipeline_roots=pipeline_roots(
                config.get("pipeline_roots", []) if pipelines_dirs is None else pipelines_dirs,
                base=chosen if pipelines_dirs is None else Path.cwd(),
            ),
        )

    @property
    def database_path(self) -> Path:
        """The embedded SQLite store."""
        return self.home / "bunsui.db"

    def session_dir(self, session_id: str) -> Path:
        """Work dirs and logs of one session."""
        return self.home / "sessions" / session_id

    def pipeline_state_dir(self, pipeline_id: str) -> Path:
        """A directory that survives across a pipeline's sessions (watermarks, caches)."""
        return self.home / "pipelines" / pipeline_id / "state"
