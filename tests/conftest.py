"""Fixtures shared by every test layer: a bunsui home on tmp_path and pipelines built inline."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

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
    """A fresh bunsui home whose agents may name pipeline files under tmp_path."""
    return Settings.resolve(tmp_path / "home", pipelines_dirs=[tmp_path])


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


ALLOCATE = (
    "import json, os\n"
    "n = json.loads(os.environ['BUNSUI_PARAMS'])['batch_size']\n"
    "try:\n"
    "    b = bytearray(n * 2**20)\n"
    "except MemoryError:\n"
    "    raise MemoryError(f'Unable to allocate {n}. MiB for the batch') from None\n"
    "open(os.path.join(os.environ['BUNSUI_WORKDIR'], 'out'), 'w').write('ok')\n"
)


def etl_pipeline(tmp_path: Path) -> str:
    """extract (counts its runs in a file) -> transform (needs ~150 MiB, limit 96) -> load."""
    counter = tmp_path / "extract_runs.log"
    extract = f"open({str(counter)!r}, 'a').write('run\\n')"
    load = (
        "import json, os\n"
        "up = json.loads(os.environ['BUNSUI_UPSTREAM_DIRS'])['transform']\n"
        "assert open(os.path.join(up, 'out')).read() == 'ok'\n"
    )
    data = pipeline_data(
        command_job("extract", extract),
        command_job(
            "transform", ALLOCATE, deps=["extract"], parameters={"memory": 96, "batch_size": 150}
        ),
        command_job("load", load, deps=["transform"]),
        name="etl",
    )
    path = tmp_path / "etl.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)
