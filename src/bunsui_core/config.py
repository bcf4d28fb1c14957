"""Settings every entry point resolves the same way: flag, then environment, then default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "BUNSUI_HOME"
POLICY_ENV = "BUNSUI_POLICY"
READ_ONLY_ENV = "BUNSUI_READ_ONLY"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class Settings:
    """Where bunsui keeps its state, which policy governs it, and whether it may write."""

    home: Path
    policy_path: Path | None = None
    """None: the policy shipped with bunsui (`policies/default.yaml`)."""
    read_only: bool = False
    """Set by flag or environment; a policy's `read_only: true` also applies (gateway)."""

    @classmethod
    def resolve(
        cls,
        home: str | Path | None = None,
        *,
        policy: str | Path | None = None,
        read_only: bool | None = None,
    ) -> Settings:
        """Each setting from its argument, else its environment variable, else the default.

        Read-only mode can be switched on by either the flag or the environment, never off by
        one when the other asks for it.
        """
        chosen = home or os.environ.get(HOME_ENV) or Path.home() / ".bunsui"
        policy = policy or os.environ.get(POLICY_ENV) or None
        from_env = os.environ.get(READ_ONLY_ENV, "").strip().lower() in TRUE_WORDS
        return cls(
            home=Path(chosen).expanduser().resolve(),
            policy_path=Path(policy).expanduser().resolve() if policy else None,
            read_only=bool(read_only) or from_env,
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
