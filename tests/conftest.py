"""Fixtures shared by every test layer: a bunsui home on tmp_path and pipelines built inline."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bunsui_core.config import Settings
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.session import Session, SessionStatus, new_id
from bunsui_core.store.sqlite import SqliteStore

PY = sys.executable


def command_job(
    job_id: str, code: str, *, deps: list[str] | None = None, **config: Any
) -> dict[str, Any]:
    """A one-operation job running `python -c code`; extra keys go into the operation config
    (`memory` and other parameters into parameters)."""
    parameters = {"command": [PY, "-c", code], **config.pop("parameters", {})}
    return {
        "job_id": job_id,
        "name": job_id,
        "operations": [
            {
                "operation_id": f"{job_id}-op",
                "name": job_id,
                "config": {"operation_type": "command", "parameters": parameters, **config},
            }
        ],
        "dependencies": deps or [],
    }


def pipeline_data(*jobs: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A pipeline document around the given jobs."""
    return {"name": top.pop("name", "test-pipeline"), "jobs": list(jobs), **top}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh bunsui home."""
    return Settings.resolve(tmp_path / "home")


@pytest.fixture
def store(settings: Settings) -> Iterator[SqliteStore]:
    """The real SQLite store of that home."""
    opened = SqliteStore(settings.database_path)
    yield opened
    opened.close()


def queue_session(store: SqliteStore, data: dict[str, Any]) -> Session:
    """Register the pipeline and create a queued session of it, as `pipeline run` does."""
    pipeline = validate_pipeline_data(data)
    version = store.register_pipeline("test-pipeline", pipeline)
    return store.create_session(
        Session(
            session_id=new_id("ses"),
            pipeline_id=version.pipeline_id,
            pipeline_version=version.version,
            pipeline_name=pipeline.name,
            status=SessionStatus.QUEUED,
        )
    )
