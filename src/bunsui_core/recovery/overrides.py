"""`job update-config`: versioned overrides on a session, applied to its reruns."""

from __future__ import annotations

from typing import Any

from bunsui_core.errors import InvalidArgumentError, NotFoundError
from bunsui_core.model.overrides import apply_overrides, merge_overrides
from bunsui_core.model.pipeline import Pipeline
from bunsui_core.model.recovery import OverrideVersion
from bunsui_core.model.session import JobOverride, Session
from bunsui_core.store.base import Store


def latest_override(store: Store, session_id: str, job_id: str) -> OverrideVersion | None:
    """The override in force for this job's reruns, if any."""
    versions = store.list_override_versions(session_id, job_id)
    return versions[-1] if versions else None


def effective_overrides(store: Store, session: Session) -> dict[str, JobOverride]:
    """What a rerun of `session` inherits: its own overrides, then any set on it since."""
    merged = dict(session.config_overrides)
    latest: dict[str, OverrideVersion] = {}
    for version in store.list_override_versions(session.session_id):
        latest[version.job_id] = version
    for job_id, version in latest.items():
        merged[job_id] = merge_overrides(merged.get(job_id), version.override)
    return merged


def job_settings(pipeline: Pipeline, job_id: str) -> dict[str, Any]:
    """The values overrides can change, as the job's first operation has them."""
    config = pipeline.job(job_id).operations[0].config
    return {
        "memory_mb": config.memory_limit_mb,
        "timeout_seconds": config.timeout_seconds,
        "parameters": config.process_parameters(),
    }


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Changed settings as `{name: {"before", "after"}}` (parameters flattened as params.x)."""

    def flat(values: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in values.items() if k != "parameters"}
        out.update({f"parameters.{k}": v for k, v in values.get("parameters", {}).items()})
        return out

    old, new = flat(before), flat(after)
    return {
        k: {"before": old.get(k), "after": new.get(k)}
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    }


def set_override(
    store: Store,
    session: Session,
    pipeline: Pipeline,
    job_id: str,
    change: JobOverride | None,
    *,
    revert_to: int | None,
    actor: str,
    reason: str | None,
    preview: bool = False,
) -> tuple[OverrideVersion, dict[str, dict[str, Any]]]:
    """Record the next override version (a change, or a revert to an earlier version).

    With `preview`, nothing is stored: the result shows what recording it would change.
    """
    if job_id not in {j.job_id for j in pipeline.jobs}:
        raise NotFoundError(
            f"job {job_id} not in session {session.session_id}", details={"job_id": job_id}
        )
    versions = store.list_override_versions(session.session_id, job_id)
    current = versions[-1] if versions else None
    if revert_to is not None:
        if revert_to == 0:
            target = JobOverride()
        else:
            found = [v for v in versions if v.version == revert_to]
            if not found:
                raise NotFoundError(
                    f"override version {revert_to} of {job_id} not found",
                    details={"versions": [v.version for v in versions]},
                )
            target = found[0].override
    elif change is None or change == JobOverride():
        raise InvalidArgumentError(
            "nothing to change: give --memory, --timeout, --batch-size, --param or --revert-to",
            details={"job_id": job_id},
        )
    else:
        target = merge_overrides(current.override if current else None, change)
    inherited = session.config_overrides
    before = job_settings(apply_overrides(pipeline, _with(inherited, job_id, current)), job_id)
    after_version = OverrideVersion(
        session_id=session.session_id,
        job_id=job_id,
        version=(current.version + 1) if current else 1,
        override=target,
        actor=actor,
        reason=reason,
    )
    after = job_settings(apply_overrides(pipeline, _with(inherited, job_id, after_version)), job_id)
    if not preview:
        store.add_override_version(after_version)
    return after_version, diff(before, after)


def _with(
    inherited: dict[str, JobOverride], job_id: str, version: OverrideVersion | None
) -> dict[str, JobOverride]:
    merged = dict(inherited)
    if version is not None:
        merged[job_id] = merge_overrides(merged.get(job_id), version.override)
    return merged
