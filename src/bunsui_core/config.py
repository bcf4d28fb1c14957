"""Settings every entry point resolves the same way: flag, then environment, then default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "BUNSUI_HOME"


@dataclass(frozen=True)
class Settings:
    """Where bunsui keeps its state."""

    home: Path

    @classmethod
    def resolve(cls, home: str | Path | None = None) -> Settings:
        """`home` if given, else `$BUNSUI_HOME`, else `~/.bunsui`; always absolute."""
        chosen = home or os.environ.get(HOME_ENV) or Path.home() / ".bunsui"
        return cls(home=Path(chosen).expanduser().resolve())

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
