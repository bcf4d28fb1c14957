"""Settings every entry point resolves the same way: flag, then environment, then default."""

from __future__ import annotations

import os
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
    unknown = set(data) - {"backend", "aws", "engine"} if isinstance(data, dict) else {"(root)"}
    aws = data.get("aws", {}) if isinstance(data, dict) else None
    if unknown or not isinstance(aws, dict) or set(aws) - AWS_KEYS:
        raise InvalidArgumentError(
            f"{path}: allowed keys are backend, engine and aws ({', '.join(sorted(AWS_KEYS))})",
            details={
                "unknown": sorted(
                    unknown | (set(aws) - AWS_KEYS if isinstance(aws, dict) else set())
                )
            },
        )
    return data


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

    @classmethod
    def resolve(
        cls,
        home: str | Path | None = None,
        *,
        policy: str | Path | None = None,
        read_only: bool | None = None,
        backend: str | None = None,
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
