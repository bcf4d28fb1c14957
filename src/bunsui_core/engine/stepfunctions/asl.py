"""Compiling a pipeline to Amazon States Language, and the input one execution runs with.

The state machine depends only on the pipeline version and the AWS settings; everything a
session may change (skip list of a rerun, memory, cpu, timeouts, parameters) comes from the
execution input, so `job update-config` takes effect without a new state machine.

Shape of the state while it runs (`$`)::

    {"session_id": ..., "pipeline_id": ..., "skip": {KEY: true},
     "config": {KEY: {OP_KEY: {...per-operation settings...}}},
     "jobs": {KEY: {"status": "completed" | "skipped" | "upstream_failed" | "failed",
                    "error": {"Error": ..., "Cause": ...}}}}

Each job is a small block: a Choice (`gate:JOB`) skips it when the input lists it, marks it
`upstream_failed` when a dependency did not complete, else runs its operations in order;
a Catch on every operation records the failure at `$.jobs.KEY` and ends the block, so the
job's dependents are blocked while independent jobs carry on. At the end a Choice fails the
execution with the first failed job's own error and cause (jobs in topological order); an
error name Step Functions reserves (`States.*`, which a Fail state may not raise) is
reported as `bunsui.States.*`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bunsui_core.errors import EngineError
from bunsui_core.model.dag import topological_order
from bunsui_core.model.overrides import apply_overrides
from bunsui_core.model.pipeline import Job, Operation, OperationType, Pipeline, RetryPolicy
from bunsui_core.model.session import JobOverride, Session

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
ECS_RUN_TASK_SYNC = "arn:aws:states:::ecs:runTask.sync"
DEFAULT_CONTAINER = "main"
"""Container the ECS overrides address when an operation sets no `container_name`."""
DEFAULT_TIMEOUT_SECONDS = 7 * 24 * 3600
"""TimeoutSecondsPath needs a value: an operation without a timeout gets the model's maximum."""
MAX_STATE_NAME = 80
MAX_STATE_MACHINE_NAME = 80

TRANSIENT_ERRORS: dict[OperationType, list[str]] = {
    OperationType.LAMBDA: [
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    ],
    OperationType.ECS: ["ECS.AmazonECSException"],
}
"""Service-side failures that are not the job's fault: retried even without a retry policy."""
DEFAULT_TRANSIENT_RETRY = RetryPolicy(max_attempts=3, interval_seconds=2, backoff_rate=2)
SUPPORTED = frozenset(TRANSIENT_ERRORS)
ECS_RESERVED_PARAMETERS = frozenset(
    {"memory", "cpu", "env", "command", "container_name", "launch_type"}
)

TaskStateOverride = Callable[[Job, Operation, dict[str, Any]], dict[str, Any]]
"""Replaces an operation's Task state (already wired with Retry, Catch and Next); tests use it
to stand in for ECS tasks that moto cannot run."""


class StateRole(StrEnum):
    """What a state does for its job; the prefix of the state's name."""

    GATE = "gate"
    SKIP = "skip"
    BLOCKED = "blocked"
    OPERATION = "op"
    DONE = "done"
    FAILED = "failed"
    FAIL = "fail"
    FAIL_RESERVED = "fail-states"
    FAIL_WITHOUT_CAUSE = "fail-nocause"


@dataclass(frozen=True)
class StateRef:
    """The job (and operation) a state belongs to."""

    role: StateRole
    job_id: str
    operation_id: str | None = None


def _shorten(text: str, limit: int) -> str:
    """`text`, or a prefix of it plus a hash when it is longer than `limit`."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return f"{text[: limit - 9]}~{digest}"


def state_name(role: StateRole, job_id: str, operation_id: str | None = None) -> str:
    """The state's name: `role:job[:operation]`, shortened to the 80 characters ASL allows."""
    parts = [role.value, job_id] + ([operation_id] if operation_id else [])
    return _shorten(":".join(parts), MAX_STATE_NAME)


def parse_state_name(name: str) -> StateRef | None:
    """The job a state name stands for, or None for bunsui's own plumbing states."""
    role_text, _, rest = name.partition(":")
    try:
        role = StateRole(role_text)
    except ValueError:
        return None
    if not rest or "~" in rest:
        return None
    if role is StateRole.OPERATION:
        job_id, _, operation_id = rest.partition(":")
        return StateRef(role, job_id, operation_id or None)
    return StateRef(role, rest)


def state_index(pipeline: Pipeline) -> dict[str, StateRef]:
    """Every job state's name -> what it stands for (also for names that had to be shortened)."""
    index: dict[str, StateRef] = {}
    for job in pipeline.jobs:
        for role in StateRole:
            if role is not StateRole.OPERATION:
                index[state_name(role, job.job_id)] = StateRef(role, job.job_id)
        for op in job.operations:
            ref = StateRef(StateRole.OPERATION, job.job_id, op.operation_id)
            index[state_name(StateRole.OPERATION, job.job_id, op.operation_id)] = ref
    return index


_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def input_key(identifier: str) -> str:
    """The key a job or operation id has in `skip`, `config` and `jobs`.

    Ids are used as they are unless they contain a dot, which JSONPath would read as a path
    step; those get a readable, collision-free replacement.
    """
    if _PLAIN_KEY.match(identifier):
        return identifier
    digest = hashlib.sha256(identifier.encode()).hexdigest()[:6]
    return re.sub(r"[^A-Za-z0-9_-]", "_", identifier) + f"_{digest}"


def state_machine_name(pipeline_id: str, version: int) -> str:
    """One state machine per pipeline version: `bunsui-<pipeline_id>-v<version>`."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "-", pipeline_id)
    return _shorten(f"bunsui-{slug}-v{version}", MAX_STATE_MACHINE_NAME).replace("~", "-")


# ---- dependency structure ------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """Parts that run one after the other."""

    parts: tuple[PlanNode, ...]


@dataclass(frozen=True)
class Branches:
    """Parts that run at the same time (one Parallel state)."""

    parts: tuple[PlanNode, ...]


PlanNode = str | Series | Branches
"""A job id, or a composition of smaller plans."""


def _ancestors(edges: Mapping[str, Sequence[str]], order: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for job_id in order:
        found[job_id] = set()
        for dep in edges[job_id]:
            found[job_id] |= {dep, *found[dep]}
    return found


def _components(nodes: list[str], edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Weakly connected components of the induced subgraph, in declaration order."""
    inside = set(nodes)
    parent = {n: n for n in nodes}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for n in nodes:
        for dep in edges[n]:
            if dep in inside:
                parent[root(n)] = root(dep)
    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _series(first: PlanNode, second: PlanNode) -> Series:
    parts: list[PlanNode] = []
    for part in (first, second):
        parts.extend(part.parts if isinstance(part, Series) else (part,))
    return Series(tuple(parts))


def _plan(
    nodes: list[str], edges: Mapping[str, Sequence[str]], ancestors: dict[str, set[str]]
) -> PlanNode:
    components = _components(nodes, edges)
    if len(components) > 1:
        return Branches(tuple(_plan(c, edges, ancestors) for c in components))
    if len(nodes) == 1:
        return nodes[0]
    inside = set(nodes)
    for node in nodes:
        # An exact series cut: everything after it depends on everything before it.
        head = ancestors[node] & inside
        if head and all(head <= ancestors[other] for other in inside - head):
            return _series(
                _plan([n for n in nodes if n in head], edges, ancestors),
                _plan([n for n in nodes if n not in head], edges, ancestors),
            )
    # Not series-parallel: run the sources first (some jobs wait longer than they must).
    sources = [n for n in nodes if not set(edges[n]) & inside]
    return _series(
        _plan(sources, edges, ancestors),
        _plan([n for n in nodes if n not in sources], edges, ancestors),
    )


def execution_plan(pipeline: Pipeline) -> PlanNode:
    """The series/parallel structure the state machine runs the jobs in.

    Independent parts become branches of one Parallel state and a series is cut wherever
    everything after the cut depends on everything before it, so series-parallel DAGs run
    with no false waits; other DAGs fall back to running their sources first.
    """
    edges = {job.job_id: job.dependencies for job in pipeline.jobs}
    order = topological_order(edges)
    return _plan(order, edges, _ancestors(edges, order))


# ---- states --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """States with one entry and the states whose Next the caller wires."""

    start: str
    exits: list[str]
    recorded: frozenset[str]


def _wire(states: dict[str, dict[str, Any]], exits: list[str], target: str | None) -> None:
    for name in exits:
        if target is None:
            states[name]["End"] = True
        else:
            states[name]["Next"] = target


def _retriers(op: Operation) -> list[dict[str, Any]]:
    """Transient service errors always; States.Timeout only when the operation has a policy."""
    policy = op.config.retry

    def retrier(errors: list[str], rule: RetryPolicy) -> dict[str, Any]:
        return {
            "ErrorEquals": errors,
            "IntervalSeconds": max(1, math.ceil(rule.interval_seconds)),
            "MaxAttempts": rule.max_attempts - 1,
            "BackoffRate": rule.backoff_rate,
            "MaxDelaySeconds": max(1, math.ceil(rule.max_delay_seconds)),
        }

    retriers = []
    transient = policy or DEFAULT_TRANSIENT_RETRY
    if transient.max_attempts > 1:
        retriers.append(retrier(TRANSIENT_ERRORS[op.config.operation_type], transient))
    if policy is not None and policy.max_attempts > 1:
        retriers.append(retrier(["States.Timeout"], policy))
    return retriers


@dataclass
class _Compiler:
    cluster: str | None
    subnets: Sequence[str]
    security_groups: Sequence[str]
    task_state_override: TaskStateOverride | None
    assign_public_ip: bool
    pipeline: Pipeline
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    parallel_count: int = 0

    def config_path(self, job: Job, op: Operation) -> str:
        return f"$.config.{input_key(job.job_id)}.{input_key(op.operation_id)}"

    def task_state(self, job: Job, op: Operation, next_state: str) -> dict[str, Any]:
        config = self.config_path(job, op)
        if op.config.operation_type is OperationType.LAMBDA:
            resource = LAMBDA_INVOKE
            parameters: dict[str, Any] = {
                "FunctionName": op.config.resource_arn,
                "Payload": {
                    "bunsui": {
                        "session_id.$": "$.session_id",
                        "pipeline_id.$": "$.pipeline_id",
                        "job_id": job.job_id,
                        "operation_id": op.operation_id,
                        "retry_count.$": "$$.State.RetryCount",
                    },
                    "parameters.$": f"{config}.parameters",
                },
            }
        else:
            resource = ECS_RUN_TASK_SYNC
            parameters = {
                "Cluster": self.cluster,
                "TaskDefinition": op.config.resource_arn,
                "LaunchType": str(op.config.parameters.get("launch_type", "FARGATE")),
                "Overrides.$": f"{config}.overrides",
            }
            if self.subnets:
                parameters["NetworkConfiguration"] = {
                    "AwsvpcConfiguration": {
                        "Subnets": list(self.subnets),
                        "SecurityGroups": list(self.security_groups),
                        "AssignPublicIp": "ENABLED" if self.assign_public_ip else "DISABLED",
                    }
                }
        state: dict[str, Any] = {
            "Type": "Task",
            "Comment": op.name or op.operation_id,
            "Resource": resource,
            "Parameters": parameters,
            "TimeoutSecondsPath": f"{config}.timeout_seconds",
            "ResultPath": None,
        }
        retriers = _retriers(op)
        if retriers:
            state["Retry"] = retriers
        state["Catch"] = [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": f"$.jobs.{input_key(job.job_id)}",
                "Next": state_name(StateRole.FAILED, job.job_id),
            }
        ]
        state["Next"] = next_state
        if self.task_state_override is not None:
            return self.task_state_override(job, op, state)
        return state

    def job_block(self, job: Job, recorded: frozenset[str]) -> _Block:
        key = input_key(job.job_id)
        record = f"$.jobs.{key}"
        names = {role: state_name(role, job.job_id) for role in StateRole}
        op_names = [
            state_name(StateRole.OPERATION, job.job_id, op.operation_id) for op in job.operations
        ]
        choices: list[dict[str, Any]] = [
            {"Variable": f"$.skip.{key}", "IsPresent": True, "Next": names[StateRole.SKIP]}
        ]
        if job.dependencies:
            blocked = [
                {"Variable": f"$.jobs.{input_key(dep)}.status", "StringEquals": status}
                for dep in job.dependencies
                for status in ("failed", "upstream_failed")
            ]
            choices.append({"Or": blocked, "Next": names[StateRole.BLOCKED]})
        self.states[names[StateRole.GATE]] = {
            "Type": "Choice",
            "Comment": f"job {job.job_id}",
            "Choices": choices,
            "Default": op_names[0],
        }
        self.states[names[StateRole.SKIP]] = {
            "Type": "Pass",
            "Comment": "listed in the execution input's skip (a rerun keeps its earlier result)",
            "Result": {"status": "skipped"},
            "ResultPath": record,
        }
        self.states[names[StateRole.BLOCKED]] = {
            "Type": "Pass",
            "Comment": "a dependency did not complete",
            "Result": {"status": "upstream_failed"},
            "ResultPath": record,
        }
        for index, op in enumerate(job.operations):
            following = op_names[index + 1] if index + 1 < len(op_names) else names[StateRole.DONE]
            self.states[op_names[index]] = self.task_state(job, op, following)
        self.states[names[StateRole.DONE]] = {
            "Type": "Pass",
            "Result": {"status": "completed"},
            "ResultPath": record,
        }
        self.states[names[StateRole.FAILED]] = {
            "Type": "Pass",
            "Comment": "the Catch put {Error, Cause} at the job's record",
            "Parameters": {"status": "failed", "error.$": record},
            "ResultPath": record,
        }
        exits = [names[r] for r in (StateRole.SKIP, StateRole.BLOCKED, StateRole.DONE)]
        exits.append(names[StateRole.FAILED])
        return _Block(names[StateRole.GATE], exits, recorded | {job.job_id})

    def block(self, node: PlanNode, recorded: frozenset[str]) -> _Block:
        if isinstance(node, str):
            return self.job_block(self.pipeline.job(node), recorded)
        if isinstance(node, Series):
            first = previous = self.block(node.parts[0], recorded)
            for part in node.parts[1:]:
                current = self.block(part, previous.recorded)
                _wire(self.states, previous.exits, current.start)
                previous = current
            return _Block(first.start, previous.exits, previous.recorded)
        return self.parallel(node, recorded)

    def parallel(self, node: Branches, recorded: frozenset[str]) -> _Block:
        self.parallel_count += 1
        name = f"parallel:{self.parallel_count}"
        branches = []
        # Each branch ends by keeping only its job records (the Parallel's raw result holds
        # every branch's output, and payloads are capped at 256 KiB); the selector gathers
        # them: earlier ones from branch 0, new ones from the branch that ran them.
        selector = {f"{input_key(j)}.$": f"$[0].jobs.{input_key(j)}" for j in sorted(recorded)}
        everything = set(recorded)
        for position, part in enumerate(node.parts):
            outer = self.states
            self.states = {}
            inner = self.block(part, recorded)
            last = f"{name}:branch:{position + 1}"
            self.states[last] = {"Type": "Pass", "Parameters": {"jobs.$": "$.jobs"}, "End": True}
            _wire(self.states, inner.exits, last)
            branches.append({"StartAt": inner.start, "States": self.states})
            self.states = outer
            for job_id in sorted(inner.recorded - recorded):
                selector[f"{input_key(job_id)}.$"] = f"$[{position}].jobs.{input_key(job_id)}"
            everything |= inner.recorded
        self.states[name] = {
            "Type": "Parallel",
            "Branches": branches,
            "ResultSelector": selector,
            "ResultPath": "$.jobs",
        }
        return _Block(name, [name], frozenset(everything))


def check_supported(pipeline: Pipeline) -> None:
    """Refuse operations Step Functions cannot run here (commands, Glue, EMR, SageMaker)."""
    foreign = [
        f"{job.job_id}/{op.operation_id} ({op.config.operation_type})"
        for job in pipeline.jobs
        for op in job.operations
        if op.config.operation_type not in SUPPORTED
    ]
    if foreign:
        raise EngineError(
            "the stepfunctions engine runs lambda and ecs operations; not these: "
            + ", ".join(foreign),
            details={"operations": foreign},
        )


def compile_pipeline(
    pipeline: Pipeline,
    *,
    cluster: str | None = None,
    subnets: Sequence[str] = (),
    security_groups: Sequence[str] = (),
    assign_public_ip: bool = False,
    task_state_override: TaskStateOverride | None = None,
) -> dict[str, Any]:
    """The ASL definition of a pipeline version (overrides arrive as execution input)."""
    check_supported(pipeline)
    needs_cluster = any(
        op.config.operation_type is OperationType.ECS
        for job in pipeline.jobs
        for op in job.operations
    )
    if needs_cluster and not cluster and task_state_override is None:
        raise EngineError(
            "ecs operations need a cluster (aws.ecs_cluster in the bunsui config)",
            details={"field": "ecs_cluster"},
        )
    compiler = _Compiler(
        cluster=cluster,
        subnets=subnets,
        security_groups=security_groups,
        task_state_override=task_state_override,
        assign_public_ip=assign_public_ip,
        pipeline=pipeline,
    )
    root = compiler.block(execution_plan(pipeline), frozenset())
    states = compiler.states
    states["init"] = {
        "Type": "Pass",
        "Comment": "the execution input plus an empty record of jobs",
        "Parameters": {
            "session_id.$": "$.session_id",
            "pipeline_id.$": "$.pipeline_id",
            "skip.$": "$.skip",
            "config.$": "$.config",
            "jobs": {},
        },
        "Next": root.start,
    }
    _wire(states, root.exits, "outcome")
    choices: list[dict[str, Any]] = []
    edges = {job.job_id: job.dependencies for job in pipeline.jobs}
    for job_id in topological_order(edges):
        record = f"$.jobs.{input_key(job_id)}"
        failed = {"Variable": f"{record}.status", "StringEquals": "failed"}
        reserved = {"Variable": f"{record}.error.Error", "StringMatches": "States.*"}
        with_cause = {"Variable": f"{record}.error.Cause", "IsPresent": True}
        renamed = f"States.Format('bunsui.{{}}', {record}.error.Error)"
        fails: dict[StateRole, tuple[dict[str, Any], dict[str, Any]]] = {
            StateRole.FAIL: ({"And": [failed, {"Not": reserved}, with_cause]}, {}),
            StateRole.FAIL_RESERVED: ({"And": [failed, with_cause]}, {"ErrorPath": renamed}),
            StateRole.FAIL_WITHOUT_CAUSE: (failed, {"ErrorPath": renamed}),
        }
        for role, (rule, fields) in fails.items():
            name = state_name(role, job_id)
            choices.append({**rule, "Next": name})
            states[name] = {
                "Type": "Fail",
                "ErrorPath": f"{record}.error.Error",
                "CausePath": f"{record}.error.Cause",
                **fields,
            }
        states[state_name(StateRole.FAIL_WITHOUT_CAUSE, job_id)].pop("CausePath")
        states[state_name(StateRole.FAIL_WITHOUT_CAUSE, job_id)]["Cause"] = f"job {job_id} failed"
    states["outcome"] = {"Type": "Choice", "Choices": choices, "Default": "succeeded"}
    states["succeeded"] = {"Type": "Succeed"}
    definition: dict[str, Any] = {
        "Comment": f"bunsui pipeline {pipeline.name} {pipeline.version}",
        "StartAt": "init",
        "States": states,
    }
    if pipeline.timeout_seconds:
        definition["TimeoutSeconds"] = pipeline.timeout_seconds
    return definition


# ---- execution input -----------------------------------------------------------------------


def _environment(session: Session, job: Job, op: Operation) -> list[dict[str, str]]:
    parameters = op.config.parameters
    env = {str(k): str(v) for k, v in (parameters.get("env") or {}).items()}
    env.update(
        {
            "BUNSUI_SESSION_ID": session.session_id,
            "BUNSUI_PIPELINE_ID": session.pipeline_id,
            "BUNSUI_JOB_ID": job.job_id,
            "BUNSUI_OPERATION_ID": op.operation_id,
            "BUNSUI_PARAMS": json.dumps(
                {k: v for k, v in parameters.items() if k not in ECS_RESERVED_PARAMETERS},
                sort_keys=True,
            ),
        }
    )
    return [{"Name": k, "Value": v} for k, v in sorted(env.items())]


def _ecs_overrides(session: Session, job: Job, op: Operation) -> dict[str, Any]:
    """RunTask `Overrides`: task-level Cpu/Memory (strings, what Fargate sizes by) and the
    container's hard memory limit, environment and command."""
    parameters = op.config.parameters
    container: dict[str, Any] = {
        "Name": str(parameters.get("container_name", DEFAULT_CONTAINER)),
        "Environment": _environment(session, job, op),
    }
    overrides: dict[str, Any] = {}
    memory, cpu = parameters.get("memory"), parameters.get("cpu")
    if memory is not None:
        overrides["Memory"] = str(int(memory))
        container["Memory"] = int(memory)
    if cpu is not None:
        overrides["Cpu"] = str(int(cpu))
    if parameters.get("command"):
        container["Command"] = op.config.command_argv()
    overrides["ContainerOverrides"] = [container]
    return overrides


def execution_input(
    session: Session, pipeline: Pipeline, overrides: Mapping[str, JobOverride] | None = None
) -> dict[str, Any]:
    """What one execution runs with: the skip list and each operation's effective settings.

    `overrides` defaults to the session's own `config_overrides`.
    """
    effective = apply_overrides(
        pipeline, session.config_overrides if overrides is None else overrides
    )
    config: dict[str, Any] = {}
    for job in effective.jobs:
        per_op: dict[str, Any] = {}
        for op in job.operations:
            parameters = op.config.parameters
            settings: dict[str, Any] = {
                "timeout_seconds": op.config.timeout_seconds or DEFAULT_TIMEOUT_SECONDS,
                "parameters": op.config.process_parameters(),
            }
            for name in ("memory", "cpu", "batch_size"):
                if parameters.get(name) is not None:
                    settings[name] = parameters[name]
            if op.config.operation_type is OperationType.ECS:
                settings["overrides"] = _ecs_overrides(session, job, op)
            per_op[input_key(op.operation_id)] = settings
        config[input_key(job.job_id)] = per_op
    return {
        "session_id": session.session_id,
        "pipeline_id": session.pipeline_id,
        "skip": {input_key(j): True for j in session.skipped_jobs},
        "config": config,
    }


# ---- deploying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StateMachineRef:
    """A deployed state machine and what `ensure_state_machine` had to do."""

    arn: str
    action: str
    """created, updated or unchanged."""


def _find_state_machine(sfn: Any, name: str) -> str | None:
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return str(machine["stateMachineArn"])
    return None


def ensure_state_machine(
    sfn: Any,
    *,
    name: str,
    definition: dict[str, Any],
    role_arn: str,
    tags: Mapping[str, str] | None = None,
) -> StateMachineRef:
    """Create the state machine, or update it when its definition or role differ; idempotent
    (definitions are compared as JSON, so key order and whitespace do not count)."""
    text = json.dumps(definition, sort_keys=True)
    arn = _find_state_machine(sfn, name)
    if arn is None:
        try:
            created = sfn.create_state_machine(
                name=name,
                definition=text,
                roleArn=role_arn,
                type="STANDARD",
                tags=[{"key": k, "value": v} for k, v in sorted((tags or {}).items())],
            )
            return StateMachineRef(str(created["stateMachineArn"]), "created")
        except sfn.exceptions.StateMachineAlreadyExists:
            arn = _find_state_machine(sfn, name)
            if arn is None:
                raise
    current = sfn.describe_state_machine(stateMachineArn=arn)
    if json.loads(current["definition"]) == definition and current.get("roleArn") == role_arn:
        return StateMachineRef(arn, "unchanged")
    sfn.update_state_machine(stateMachineArn=arn, definition=text, roleArn=role_arn)
    return StateMachineRef(arn, "updated")


def execution_arn(state_machine_arn: str, execution_name: str) -> str:
    """The ARN an execution of this state machine with this name has (AWS derives it so)."""
    return state_machine_arn.replace(":stateMachine:", ":execution:", 1) + f":{execution_name}"
