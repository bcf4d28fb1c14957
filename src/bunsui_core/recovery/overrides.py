"""`job update-config`: versioned overrides on a session, applied to its reruns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bunsui_core.errors import InvalidArgumentError, NotFoundError
from bunsui_core.governance.canonical import canonical_text, redact, sha256_text
from bunsui_core.model.overrides import apply_overrides, merge_overrides
from bunsui_core.model.pipeline import Operation, Pipeline
from bunsui_core.model.recovery import OverrideVersion
from bunsui_core.model.session import JobOverride, Session
from bunsui_core.store.base import Store

PLANNED_OVERRIDES = "planned-overrides"
"""Where a call's previews leave the override versions they would record, so a later step's
preview (a plan's rerun after its config change) shows the config that step will really run."""


def latest_override(store: Store, session_id: str, job_id: str) -> OverrideVersion | None:
    """The override in force for this job's reruns, if any."""
    versions = store.list_override_versions(session_id, job_id)
    return versions[-1] if versions else None


def effective_overrides(
    store: Store, session: Session, planned: Sequence[OverrideVersion] = ()
) -> dict[str, JobOverride]:
    """What a rerun of `session` inherits: its own overrides, then any set on it since, then
    `planned` ones not stored yet (earlier steps of a recovery plan being previewed)."""
    merged = dict(session.config_overrides)
    latest: dict[str, OverrideVersion] = {}
    for version in [
        *store.list_override_versions(session.session_id),
        *(v for v in planned if v.session_id == session.session_id),
    ]:
        latest[version.job_id] = version
    for job_id, version in latest.items():
        merged[job_id] = merge_overrides(merged.get(job_id), version.override)
    return merged


def operation_settings(operation: Operation) -> dict[str, Any]:
    """One operation's effective config as a human checks it before approving: the argv it
    runs, its environment (secret-looking values redacted, all values bound by a hash), its
    limits and the parameters the process gets."""
    config = operation.config
    env = {str(k): str(v) for k, v in (config.parameters.get("env") or {}).items()}
    settings: dict[str, Any] = {
        "operation_type": str(config.operation_type),
        "argv": config.command_argv() if config.parameters.get("command") else None,
        "env": redact(env),
        "env_sha256": sha256_text(canonical_text(env)),
        "pass_env": config.pass_env,
        "memory_mb": config.memory_limit_mb,
        "timeout_seconds": config.timeout_seconds,
        "parameters": config.process_parameters(),
    }
    if config.resource_arn:
        settings["resource_arn"] = config.resource_arn
    return settings


def job_settings(pipeline: Pipeline, job_id: str) -> dict[str, Any]:
    """The values overrides can change: limits and parameters as the job's first operation
    has them, and every operation's argv and environment."""
    operations = {op.operation_id: operation_settings(op) for op in pipeline.job(job_id).operations}
    first = next(iter(operations.values()))
    return {
        "memory_mb": first["memory_mb"],
        "timeout_seconds": first["timeout_seconds"],
        "parameters": first["parameters"],
        "command": {op_id: op["argv"] for op_id, op in operations.items()},
        "env": {op_id: op["env"] for op_id, op in operations.items()},
        "env_sha256": {op_id: op["env_sha256"] for op_id, op in operations.items()},
    }


NESTED_SETTINGS = ("parameters", "command", "env", "env_sha256")
"""Settings diffed key by key (`parameters.batch_size`, `command.run`)."""


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Changed settings as `{name: {"before", "after"}}` (nested ones flattened: params.x)."""

    def flat(values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key in NESTED_SETTINGS:
                out.update({f"{key}.{k}": v for k, v in value.items()})
            else:
                out[key] = value
        return out

    old, new = flat(before), flat(after)
    return {
        k: {"before": old.get(k), "after": new.get(k)}
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    }


@dataclass(frozen=True)
class OverrideChange:
    """What recording an override version would do: the version and the job's effective
    settings before and after it."""

    version: OverrideVersion
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def diff(self) -> dict[str, dict[str, Any]]:
        """Only what changes."""
        return diff(self.before, self.after)


def plan_override(
    store: Store,
    session: Session,
    pipeline: Pipeline,
    job_id: str,
    change: JobOverride | None,
    *,
    revert_to: int | None,
    actor: str,
    reason: str | None,
) -> OverrideChange:
    """The next override version (a change, or a revert to an earlier version), stored by
    nobody: `set_override` records it, a preview shows it."""
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
    after_version = OverrideVersion(
        session_id=session.session_id,
        job_id=job_id,
        version=(current.version + 1) if current else 1,
        override=target,
        actor=actor,
        reason=reason,
    )
    return OverrideChange(
        version=after_version,
        before=job_settings(apply_overrides(pipeline, _with(inherited, job_id, current)), job_id),
        after=job_settings(
            apply_overrides(pipeline, _with(inherited, job_id, after_version)), job_id
        ),
    )


def describe_changes(changes: dict[str, dict[str, Any]]) -> str:
    """`command CHANGED, memory 128→320`: what an approver must notice first, first."""
    parts: list[str] = []
    for name, change in changes.items():
        head, _, rest = name.partition(".")
        before, after = (
            "unset" if change[k] is None else str(change[k]) for k in ("before", "after")
        )
        if head in {"command", "env", "env_sha256"}:
            part = f"{'env' if head.startswith('env') else 'command'} CHANGED"
        elif head == "parameters":
            part = f"param {rest} {before}→{after}"
        else:
            part = f"{head.removesuffix('_mb').removesuffix('_seconds')} {before}→{after}"
        if part not in parts:
            parts.append(part)
    parts.sort(key=lambda p: not p.endswith("CHANGED"))
    return ", ".join(parts) or "no change"


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
) -> OverrideChange:
    """Record the next override version; what it changed comes back with it."""
    planned = plan_override(
        store, session, pipeline, job_id, change, revert_to=revert_to, actor=actor, reason=reason
    )
    store.add_override_version(planned.version)
    return planned


def _with(
    inherited: dict[str, JobOverride], job_id: str, version: OverrideVersion | None
) -> dict[str, JobOverride]:
    merged = dict(inherited)
    if version is not None:
        merged[job_id] = merge_overrides(merged.get(job_id), version.override)
    return merged
