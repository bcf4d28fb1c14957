"""Compiling pipelines to ASL: structure, retries, catches, timeouts, skips, execution input."""

from __future__ import annotations

from typing import Any

import pytest

from bunsui_core.engine.stepfunctions.asl import (
    ECS_RUN_TASK_SYNC,
    LAMBDA_INVOKE,
    Branches,
    Series,
    StateRef,
    StateRole,
    compile_pipeline,
    execution_arn,
    execution_input,
    execution_plan,
    input_key,
    parse_state_name,
    state_index,
    state_machine_name,
)
from bunsui_core.errors import EngineError
from bunsui_core.model.session import JobOverride, Session
from tests.unit.engine.stepfunctions.sfn_support import (
    FANOUT,
    NIGHTLY_ETL,
    REINDEX,
    ecs_job,
    function_arn,
    lambda_job,
    pipeline,
    task_definition_arn,
)

CLUSTER = "arn:aws:ecs:eu-west-1:111122223333:cluster/bunsui"
FN = function_arn("f")


def compiled(p: Any, **options: Any) -> dict[str, Any]:
    return compile_pipeline(
        p,
        cluster=CLUSTER,
        subnets=["subnet-0c1d2e3f4a5b6c7d8"],
        security_groups=["sg-0123456789abcdef0"],
        **options,
    )


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state of the machine, branches included (names are unique machine-wide)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(states: dict[str, dict[str, Any]]) -> None:
        for name, state in states.items():
            assert name not in found, f"duplicate state name {name}"
            found[name] = state
            for branch in state.get("Branches", []):
                walk(branch["States"])

    walk(definition["States"])
    return found


def session(**fields: Any) -> Session:
    return Session(session_id="ses-1", pipeline_id="p", pipeline_version=1, **fields)


def chain(p: Any) -> list[str]:
    return [job.job_id for job in p.jobs]


class TestExecutionPlan:
    def test_independent_chains_become_branches_of_one_parallel(self):
        """prepare -> (left | right) -> report: the middle jobs run side by side."""
        assert execution_plan(FANOUT) == Series(("prepare", Branches(("left", "right")), "report"))

    def test_a_series_parallel_dag_runs_without_false_waits(self):
        """Two chains joining at the end stay two chains: b does not wait for c."""
        p = pipeline(
            "sp",
            lambda_job("a", FN),
            lambda_job("b", FN, deps=["a"]),
            lambda_job("c", FN),
            lambda_job("d", FN, deps=["c"]),
            lambda_job("e", FN, deps=["b", "d"]),
        )
        assert execution_plan(p) == Series(
            (Branches((Series(("a", "b")), Series(("c", "d")))), "e")
        )

    def test_unrelated_jobs_are_parallel_and_a_chain_is_a_series(self):
        """Jobs without dependencies all start at once; a chain keeps its order."""
        loose = pipeline("loose", *(lambda_job(j, FN) for j in ("x", "y", "z")))
        assert execution_plan(loose) == Branches(("x", "y", "z"))
        assert execution_plan(NIGHTLY_ETL) == Series(("extract", "transform", "load"))

    def test_a_non_series_parallel_dag_still_respects_every_dependency(self):
        """The N shape (c after a and b, d after b) falls back to sources first."""
        p = pipeline(
            "n",
            lambda_job("a", FN),
            lambda_job("b", FN),
            lambda_job("c", FN, deps=["a", "b"]),
            lambda_job("d", FN, deps=["b"]),
        )
        assert execution_plan(p) == Series((Branches(("a", "b")), Branches(("c", "d"))))


class TestStructure:
    def test_independent_jobs_are_parallel_branches(self):
        """left and right are the two branches of one Parallel state after prepare."""
        definition = compiled(FANOUT)
        states = definition["States"]
        assert definition["StartAt"] == "init"
        assert states["init"]["Next"] == "gate:prepare"
        parallel = states["parallel:1"]
        assert parallel["Type"] == "Parallel"
        assert [b["StartAt"] for b in parallel["Branches"]] == ["gate:left", "gate:right"]
        assert states["done:prepare"]["Next"] == "parallel:1"
        assert parallel["Next"] == "gate:report"
        # The branches' job records are gathered back into $.jobs.
        assert parallel["ResultPath"] == "$.jobs"
        assert parallel["ResultSelector"] == {
            "prepare.$": "$[0].jobs.prepare",
            "left.$": "$[0].jobs.left",
            "right.$": "$[1].jobs.right",
        }
        for position, branch in enumerate(parallel["Branches"], start=1):
            # Every way out of the job (skip, blocked, done, failed) ends the branch with
            # only the job records, so the Parallel's raw result stays small.
            last = f"parallel:1:branch:{position}"
            assert branch["States"][last] == {
                "Type": "Pass",
                "Parameters": {"jobs.$": "$.jobs"},
                "End": True,
            }
            assert sum(s.get("Next") == last for s in branch["States"].values()) == 4

    def test_every_transition_targets_a_state_of_its_own_scope(self):
        """Next, Default, Choice and Catch targets exist; names fit ASL's 80 characters."""

        def check(states: dict[str, dict[str, Any]]) -> None:
            for name, state in states.items():
                assert len(name) <= 80
                targets = [state.get("Next"), state.get("Default")]
                targets += [c["Next"] for c in state.get("Choices", [])]
                targets += [c["Next"] for c in state.get("Catch", [])]
                assert all(t in states for t in targets if t), (name, targets)
                assert state["Type"] in {"Fail", "Succeed", "Choice"} or (
                    "Next" in state or state.get("End")
                ), name
                for branch in state.get("Branches", []):
                    assert branch["StartAt"] in branch["States"]
                    check(branch["States"])

        for p in (FANOUT, NIGHTLY_ETL, REINDEX):
            check(compiled(p)["States"])

    def test_gate_skips_a_listed_job_and_blocks_after_a_failed_dependency(self):
        """The gate's first rule reads the skip list; the second blocks on failed deps."""
        gate = all_states(compiled(FANOUT))["gate:report"]
        skip, blocked = gate["Choices"]
        assert skip == {"Variable": "$.skip.report", "IsPresent": True, "Next": "skip:report"}
        assert blocked["Next"] == "blocked:report"
        assert {(r["Variable"], r["StringEquals"]) for r in blocked["Or"]} == {
            ("$.jobs.left.status", "failed"),
            ("$.jobs.left.status", "upstream_failed"),
            ("$.jobs.right.status", "failed"),
            ("$.jobs.right.status", "upstream_failed"),
        }
        assert gate["Default"] == "op:report:run"
        root_gate = all_states(compiled(FANOUT))["gate:prepare"]
        assert len(root_gate["Choices"]) == 1

    def test_operations_catch_every_error_into_the_job_record(self):
        """A failure is recorded at $.jobs.<job> and ends the job, never the execution."""
        states = all_states(compiled(NIGHTLY_ETL))
        task = states["op:transform:task"]
        assert task["Catch"] == [
            {
                "ErrorEquals": ["States.ALL"],
                "ResultPath": "$.jobs.transform",
                "Next": "failed:transform",
            }
        ]
        assert states["failed:transform"]["Parameters"] == {
            "status": "failed",
            "error.$": "$.jobs.transform",
        }
        assert states["done:transform"]["Result"] == {"status": "completed"}

    def test_the_outcome_fails_with_the_first_failed_jobs_error_and_cause(self):
        """Topological order decides which failure the execution reports."""
        states = compiled(NIGHTLY_ETL)["States"]
        choices = states["outcome"]["Choices"]
        assert [c["Next"] for c in choices[::3]] == [
            "fail:extract",
            "fail:transform",
            "fail:load",
        ]
        assert states["fail:transform"] == {
            "Type": "Fail",
            "ErrorPath": "$.jobs.transform.error.Error",
            "CausePath": "$.jobs.transform.error.Cause",
        }
        # Fail states may not raise States.* names: those become bunsui.States.*.
        reserved = choices[4]
        assert reserved["Next"] == "fail-states:transform"
        assert choices[3]["And"][1] == {
            "Not": {"Variable": "$.jobs.transform.error.Error", "StringMatches": "States.*"}
        }
        renamed = "States.Format('bunsui.{}', $.jobs.transform.error.Error)"
        assert states["fail-states:transform"]["ErrorPath"] == renamed
        assert states["fail-nocause:transform"] == {
            "Type": "Fail",
            "ErrorPath": renamed,
            "Cause": "job transform failed",
        }
        assert states["outcome"]["Default"] == "succeeded"

    def test_ecs_runs_the_task_with_overrides_from_the_input(self):
        """runTask.sync on the cluster and network; Overrides come from $.config."""
        task = all_states(compiled(NIGHTLY_ETL))["op:transform:task"]
        assert task["Resource"] == ECS_RUN_TASK_SYNC
        assert task["Parameters"] == {
            "Cluster": CLUSTER,
            "TaskDefinition": task_definition_arn("etl-transform:7"),
            "LaunchType": "FARGATE",
            "Overrides.$": "$.config.transform.task.overrides",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "Subnets": ["subnet-0c1d2e3f4a5b6c7d8"],
                    "SecurityGroups": ["sg-0123456789abcdef0"],
                    "AssignPublicIp": "DISABLED",
                }
            },
        }
        assert task["ResultPath"] is None

    def test_lambda_invokes_with_parameters_from_the_input(self):
        """lambda:invoke with the session, the job and the effective parameters."""
        task = all_states(compiled(NIGHTLY_ETL))["op:extract:run"]
        assert task["Resource"] == LAMBDA_INVOKE
        assert task["Parameters"] == {
            "FunctionName": function_arn("etl-extract"),
            "Payload": {
                "bunsui": {
                    "session_id.$": "$.session_id",
                    "pipeline_id.$": "$.pipeline_id",
                    "job_id": "extract",
                    "operation_id": "run",
                    "retry_count.$": "$$.State.RetryCount",
                },
                "parameters.$": "$.config.extract.run.parameters",
            },
        }

    def test_timeouts_come_from_the_input_and_the_pipeline(self):
        """Each operation's TimeoutSecondsPath; the pipeline's timeout is the machine's."""
        states = all_states(compiled(NIGHTLY_ETL))
        assert states["op:load:run"]["TimeoutSecondsPath"] == "$.config.load.run.timeout_seconds"
        assert "TimeoutSeconds" not in compiled(NIGHTLY_ETL)
        timed = pipeline("t", lambda_job("a", FN), timeout_seconds=7200)
        assert compiled(timed)["TimeoutSeconds"] == 7200

    def test_a_multi_operation_job_runs_its_operations_in_order(self):
        """Operation 2 follows operation 1; the last one leads to done."""
        job = lambda_job("j", FN)
        job["operations"].append(
            {
                "operation_id": "second",
                "config": {"operation_type": "ecs", "resource_arn": task_definition_arn("t:1")},
            }
        )
        states = all_states(compiled(pipeline("multi", job)))
        assert states["op:j:run"]["Next"] == "op:j:second"
        assert states["op:j:second"]["Next"] == "done:j"
        assert states["op:j:second"]["Catch"][0]["Next"] == "failed:j"


class TestRetry:
    def test_without_a_policy_only_transient_service_errors_are_retried(self):
        """Lambda service errors get a default retry; a function's own error does not."""
        (retrier,) = all_states(compiled(NIGHTLY_ETL))["op:extract:run"]["Retry"]
        assert retrier["ErrorEquals"] == [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        ]
        assert (retrier["MaxAttempts"], retrier["IntervalSeconds"], retrier["BackoffRate"]) == (
            2,
            2,
            2.0,
        )

    def test_a_policy_sets_the_retries_and_adds_states_timeout(self):
        """max_attempts 2 = one retry, for ECS service errors and for timeouts."""
        retriers = all_states(compiled(REINDEX))["op:reindex:task"]["Retry"]
        assert [r["ErrorEquals"] for r in retriers] == [
            ["ECS.AmazonECSException"],
            ["States.Timeout"],
        ]
        for retrier in retriers:
            assert retrier["MaxAttempts"] == 1
            assert retrier["IntervalSeconds"] == 30
            assert retrier["MaxDelaySeconds"] == 300

    def test_a_single_attempt_policy_disables_retries(self):
        """max_attempts 1 means exactly one try, even for service errors."""
        p = pipeline("once", lambda_job("a", FN, retry={"max_attempts": 1}))
        assert "Retry" not in all_states(compiled(p))["op:a:run"]


class TestRefusals:
    def test_command_operations_are_refused(self):
        """Step Functions cannot run local commands."""
        p = pipeline(
            "local",
            {
                "job_id": "c",
                "operations": [
                    {
                        "operation_id": "o",
                        "config": {"operation_type": "command", "parameters": {"command": "true"}},
                    }
                ],
            },
        )
        with pytest.raises(EngineError) as caught:
            compiled(p)
        assert caught.value.code == "ENGINE_UNSUPPORTED"

    def test_ecs_needs_a_cluster(self):
        """Without aws.ecs_cluster an ECS operation has nowhere to run."""
        with pytest.raises(EngineError, match="cluster"):
            compile_pipeline(NIGHTLY_ETL)


class TestNames:
    def test_state_machine_name_is_stable_per_version(self):
        """Same id and version, same name; a new version is a new state machine."""
        assert state_machine_name("nightly-etl", 3) == "bunsui-nightly-etl-v3"
        long = state_machine_name("p" * 64, 12345)
        assert len(long) <= 80
        assert long == state_machine_name("p" * 64, 12345)
        assert long != state_machine_name("p" * 64, 12346)

    def test_long_ids_are_shortened_and_still_resolve(self):
        """80-character state names: the index maps shortened names back to the job."""
        long_id = "j" * 100
        p = pipeline("long", lambda_job(long_id, FN))
        index = state_index(p)
        names = all_states(compiled(p))
        op_name = next(n for n in names if n.startswith("op:"))
        assert len(op_name) <= 80
        assert index[op_name] == StateRef(StateRole.OPERATION, long_id, "run")
        assert parse_state_name(op_name) is None

    def test_dotted_ids_get_path_safe_keys(self):
        """A dot would be a JSONPath step: such ids get a distinct, readable key."""
        assert input_key("load-data_2") == "load-data_2"
        assert input_key("v1.2") != input_key("v1_2")
        assert input_key("v1.2").startswith("v1_2_")
        p = pipeline("dots", lambda_job("v1.2", FN))
        gate = all_states(compiled(p))["gate:v1.2"]
        assert gate["Choices"][0]["Variable"] == f"$.skip.{input_key('v1.2')}"

    def test_state_names_parse_back(self):
        """Names say their role, job and operation."""
        assert parse_state_name("op:transform:task") == StateRef(
            StateRole.OPERATION, "transform", "task"
        )
        assert parse_state_name("fail-nocause:a.b") == StateRef(StateRole.FAIL_WITHOUT_CAUSE, "a.b")
        assert parse_state_name("parallel:1") is None
        assert parse_state_name("outcome") is None

    def test_execution_arn_is_derived_from_the_state_machine(self):
        """arn:...:stateMachine:NAME -> arn:...:execution:NAME:SESSION."""
        machine = "arn:aws:states:eu-west-1:111122223333:stateMachine:bunsui-etl-v3"
        assert (
            execution_arn(machine, "ses-1")
            == "arn:aws:states:eu-west-1:111122223333:execution:bunsui-etl-v3:ses-1"
        )


class TestExecutionInput:
    def test_skip_list_and_effective_settings(self):
        """Skipped jobs are listed; each operation gets its settings and ECS overrides."""
        data = execution_input(session(skipped_jobs=["extract"]), NIGHTLY_ETL)
        assert data["skip"] == {"extract": True}
        assert data["session_id"] == "ses-1"
        transform = data["config"]["transform"]["task"]
        assert transform["memory"] == 2048
        assert transform["cpu"] == 1024
        assert transform["batch_size"] == 50000
        assert transform["timeout_seconds"] == 3600
        overrides = transform["overrides"]
        assert (overrides["Memory"], overrides["Cpu"]) == ("2048", "1024")
        (container,) = overrides["ContainerOverrides"]
        assert container["Name"] == "main"
        assert container["Memory"] == 2048
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["BUNSUI_JOB_ID"] == "transform"
        assert env["BUNSUI_PARAMS"] == '{"batch_size": 50000}'
        assert data["config"]["extract"]["run"]["parameters"] == {"source": "s3://acme-raw/orders/"}

    def test_overrides_change_memory_batch_and_timeout_without_a_new_machine(self):
        """job update-config values land in the input; the definition does not change."""
        change = {
            "transform": JobOverride(
                memory_mb=4096, timeout_seconds=7200, parameters={"batch_size": 20000, "cpu": 2048}
            )
        }
        base = execution_input(session(), NIGHTLY_ETL)
        data = execution_input(session(config_overrides=change), NIGHTLY_ETL)
        transform = data["config"]["transform"]["task"]
        assert transform["memory"] == 4096
        assert transform["timeout_seconds"] == 7200
        assert transform["batch_size"] == 20000
        assert transform["overrides"]["Memory"] == "4096"
        assert transform["overrides"]["Cpu"] == "2048"
        assert transform["overrides"]["ContainerOverrides"][0]["Memory"] == 4096
        assert data["config"]["extract"] == base["config"]["extract"]
        explicit = execution_input(session(config_overrides=change), NIGHTLY_ETL, {})
        assert explicit["config"] == base["config"]

    def test_operations_without_a_timeout_get_the_longest_allowed(self):
        """TimeoutSecondsPath always resolves: no timeout means the model's 7-day maximum."""
        p = pipeline("nt", ecs_job("e", task_definition_arn("t:1")))
        data = execution_input(session(), p)
        settings = data["config"]["e"]["task"]
        assert settings["timeout_seconds"] == 7 * 24 * 3600
        assert "Memory" not in settings["overrides"]
        assert "memory" not in settings
