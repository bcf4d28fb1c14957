"""Applying job overrides to a pipeline: the exact configuration a rerun executes."""

from __future__ import annotations

from collections.abc import Mapping

from bunsui_core.model.pipeline import RESERVED_COMMAND_PARAMETERS, Job, Pipeline
from bunsui_core.model.session import JobOverride

FIELD_PARAMETERS = RESERVED_COMMAND_PARAMETERS
"""Parameters an override never sets through its `parameters` (ignored there, so no stored
override carries them in by another door): argv, environment and memory only through its
own fields (`command`, `env`, `memory_mb`); `pass_env` (launcher variables such as
credentials that a command's process inherits) only in the pipeline file."""

SPECIAL_PARAMETERS = FIELD_PARAMETERS | frozenset(
    {
        "cpu",  # ECS task size
        "container_name",  # which ECS container the overrides go to
        "launch_type",  # ECS launch type
        "log_group",  # where bunsui reads an ECS task's logs
        "log_stream_prefix",
    }
)
"""Parameter keys some operation type treats as more than data: `job update-config --param`
refuses them (a `--param command=...` would hide a new argv behind a harmless-looking
change); command and environment changes are `job update-command`, memory is `--memory`."""


def merge_overrides(base: JobOverride | None, change: JobOverride) -> JobOverride:
    """`change` layered over `base`: set values win, parameters merge key by key."""
    if base is None:
        return change
    return JobOverride(
        memory_mb=change.memory_mb if change.memory_mb is not None else base.memory_mb,
        timeout_seconds=change.timeout_seconds
        if change.timeout_seconds is not None
        else base.timeout_seconds,
        parameters={**base.parameters, **change.parameters},
        command={**base.command, **change.command},
        env={**base.env, **change.env},
    )


def _job_with(job: Job, override: JobOverride) -> Job:
    operations = []
    data = {k: v for k, v in override.parameters.items() if k not in FIELD_PARAMETERS}
    for op in job.operations:
        parameters = {**op.config.parameters, **data}
        if override.memory_mb is not None:
            parameters["memory"] = override.memory_mb
        if op.operation_id in override.command:
            parameters["command"] = list(override.command[op.operation_id])
        if override.env:
            parameters["env"] = {**(op.config.parameters.get("env") or {}), **override.env}
        config = op.config.model_copy(
            update={
                "parameters": parameters,
                "timeout_seconds": override.timeout_seconds or op.config.timeout_seconds,
            }
        )
        operations.append(op.model_copy(update={"config": config}))
    return job.model_copy(update={"operations": operations})


def apply_overrides(pipeline: Pipeline, overrides: Mapping[str, JobOverride]) -> Pipeline:
    """The pipeline as a session with these overrides runs it (the stored version is untouched)."""
    if not overrides:
        return pipeline
    jobs = [
        _job_with(j, overrides[j.job_id]) if j.job_id in overrides else j for j in pipeline.jobs
    ]
    return pipeline.model_copy(update={"jobs": jobs})
