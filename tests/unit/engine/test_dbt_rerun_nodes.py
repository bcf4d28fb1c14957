"""Which dbt nodes a rerun runs and keeps, from what the session being rerun recorded."""

from __future__ import annotations

from bunsui_core.engine.project_jobs import dbt_rerun_nodes
from bunsui_core.model.dbt_nodes import NodeResult
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.session import JobRun, OperationAttempt, OperationRun, RunStatus

PIPELINE = validate_pipeline_data(
    {
        "name": "p",
        "jobs": [
            {
                "job_id": job,
                "operations": [
                    {"operation_id": "dbt", "config": {"operation_type": "dbt", "parameters": {}}}
                ],
            }
            for job in ("failed", "done")
        ],
    }
)


def record(store, job_id: str, status: RunStatus, nodes: dict[str, str]) -> None:
    store.put_job_run(JobRun(session_id="ses-1", job_id=job_id, status=status))
    attempt = OperationAttempt(
        attempt=1,
        status=status,
        started_at="2026-11-29T00:00:00Z",
        nodes=[
            NodeResult(unique_id=u, name=u, resource_type="model", status=s)
            for u, s in nodes.items()
        ],
        artifacts={"run_results": "target/run_results.json"},
    )
    store.put_operation_run(
        OperationRun(
            session_id="ses-1", job_id=job_id, operation_id="dbt", status=status, attempts=[attempt]
        )
    )


def test_a_failed_dbt_job_retries_its_failed_and_skipped_nodes(store):
    """Only the job that did not complete continues; the one that completed runs in full."""
    record(store, "failed", RunStatus.FAILED, {"a": "success", "t": "fail", "b": "skipped"})
    record(store, "done", RunStatus.COMPLETED, {"c": "success"})
    split = dbt_rerun_nodes(store, "ses-1", PIPELINE, ["failed", "done"], full=False)
    assert set(split) == {"failed"}
    assert (split["failed"].to_run, split["failed"].to_skip) == (["t", "b"], ["a"])


def test_a_full_rerun_runs_every_node(store):
    """`full` starts every dbt job over: no node is kept."""
    record(store, "failed", RunStatus.FAILED, {"a": "success", "t": "fail"})
    assert dbt_rerun_nodes(store, "ses-1", PIPELINE, ["failed"], full=True) == {}
