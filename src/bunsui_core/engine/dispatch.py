"""Which engine runs a session: local processes, or Step Functions on the aws backend.

Actions call these instead of naming an engine, so `pipeline run`, reruns and reads behave
the same on both backends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bunsui_core.config import Settings
from bunsui_core.engine.local import LocalEngine, check_runnable
from bunsui_core.engine.runner import spawn_detached
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.session import Session, SessionStatus
from bunsui_core.store.base import Store

if TYPE_CHECKING:
    from bunsui_core.engine.stepfunctions.engine import StepFunctionsEngine

SYNC_INTERVAL_SECONDS = 2.0
ACTIVE = frozenset({SessionStatus.QUEUED, SessionStatus.RUNNING})


def check_can_run(settings: Settings, pipeline: Pipeline) -> None:
    """ENGINE_UNSUPPORTED before anything is created, naming what this backend cannot run."""
    if settings.backend == "aws":
        from bunsui_core.engine.stepfunctions.asl import check_supported  # noqa: PLC0415

        check_supported(pipeline)
    else:
        check_runnable(pipeline)


def launch(
    store: Store,
    settings: Settings,
    session: Session,
    *,
    wait: bool,
    progress: Callable[[str], None] | None = None,
) -> Session:
    """Start a queued session: detached (a runner process, or a Step Functions execution),
    or in the foreground until it ends."""
    if settings.backend == "aws":
        engine = _stepfunctions(store, settings)
        session = engine.start(session)
        while wait and session.status in ACTIVE:
            time.sleep(SYNC_INTERVAL_SECONDS)
            session = engine.sync(session.session_id)
        return session
    if wait:
        return LocalEngine(store, settings, progress=progress).run(session.session_id)
    spawn_detached(settings, session.session_id)
    return session


def refresh(store: Store, settings: Settings, sessions: list[Session]) -> list[Session]:
    """On the aws backend, fold the executions of active sessions into the store first, so
    every read shows what Step Functions knows now. Local sessions update themselves."""
    if settings.backend != "aws" or store.read_only:
        return sessions
    active = [s for s in sessions if s.status in ACTIVE and s.execution_arn]
    if not active:
        return sessions
    engine = _stepfunctions(store, settings)
    synced = {s.session_id: engine.sync(s.session_id) for s in active}
    return [synced.get(s.session_id, s) for s in sessions]


def cancel_execution(store: Store, settings: Settings, session: Session) -> Session | None:
    """On the aws backend, stop a running session's execution and cancel it (None: not an
    aws execution, the caller cancels locally and the runner stops its processes)."""
    if settings.backend != "aws" or session.execution_arn is None:
        return None
    return _stepfunctions(store, settings).stop(session.session_id)


def cloud_log_tails(
    store: Store, settings: Settings, session_id: str, job_id: str, limit: int
) -> list[tuple[str, list[str]]]:
    """(operation_id, last lines) of each operation of an aws job that ran, from CloudWatch
    Logs, in operation order."""
    tails = _stepfunctions(store, settings).job_logs(session_id, job_id, limit=limit)
    return [(operation_id, tail.lines) for operation_id, tail in tails]


def _stepfunctions(store: Store, settings: Settings) -> StepFunctionsEngine:
    from bunsui_core.engine.stepfunctions.engine import StepFunctionsEngine  # noqa: PLC0415

    return StepFunctionsEngine.from_settings(store, settings)
