"""Lookups several actions share: found, or a NOT_FOUND error that says what was asked."""

from __future__ import annotations

from bunsui_core.errors import NotFoundError
from bunsui_core.model.dag import topological_order
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import Session
from bunsui_core.store.base import PipelineVersion, Store


def require_session(store: Store, session_id: str) -> Session:
    """The session, or NOT_FOUND."""
    session = store.get_session(session_id)
    if session is None:
        raise NotFoundError(f"session {session_id} not found", details={"session_id": session_id})
    return session


def require_pipeline(store: Store, pipeline_id: str, version: int | None = None) -> PipelineVersion:
    """The pipeline version (latest by default), or NOT_FOUND."""
    found = store.get_pipeline(pipeline_id, version)
    if found is None:
        what = f"pipeline {pipeline_id}" + (f" version {version}" if version else "")
        raise NotFoundError(
            f"{what} not found", details={"pipeline_id": pipeline_id, "version": version}
        )
    return found


def session_pipeline(store: Store, session: Session) -> PipelineVersion:
    """The exact pipeline version a session ran."""
    return require_pipeline(store, session.pipeline_id, session.pipeline_version)


def job_order(pipeline: Pipeline) -> list[str]:
    """Job ids in dependency order, the order people read a pipeline in."""
    return topological_order({j.job_id: j.dependencies for j in pipeline.jobs})
