"""dbt's per-node results (models, tests, seeds, snapshots) read from its target directory.

`run_results.json` says how each node ended; `manifest.json` adds what a person needs to act
on it: the file, a test's parent model and column, the query that shows a test's failing rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RUN_RESULTS = "run_results.json"
MANIFEST = "manifest.json"
FAILING_ROWS = "failing_rows.json"
MAX_ARTIFACT_BYTES = 200_000_000
MAX_CODE_CHARS = 4000

RETRYABLE = frozenset({"error", "fail", "skipped", "runtime error", "partial success"})
"""Statuses `dbt retry` runs again; every other node (success, pass, warn) is kept."""
FAILED = frozenset({"error", "fail", "runtime error", "partial success"})


class NodeResult(BaseModel):
    """How one dbt node ended in one attempt."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    unique_id: str = Field(description="dbt's id, e.g. model.shop.stg_orders.")
    name: str = Field(description="Node name.")
    resource_type: str = Field(description="model, test, seed, snapshot, ...")
    status: str = Field(description="success, error, fail, pass, warn, skipped, ...")
    execution_time: float | None = Field(None, description="Seconds dbt spent on it.")
    started_at: str | None = Field(None, description="When execution started.")
    completed_at: str | None = Field(None, description="When execution completed.")
    message: str | None = Field(None, description="dbt's message (errors: the database's).")
    failures: int | None = Field(None, description="Failing rows of a test.")
    file: str | None = Field(None, description="Defining file, relative to the dbt project.")
    parent_model: str | None = Field(None, description="A test's model (attached node).")
    column: str | None = Field(None, description="A test's column.")
    test_name: str | None = Field(None, description="Generic test name (not_null, unique...).")
    failing_rows_query: str | None = Field(
        None, description="SQL showing a failed test's rows (stored failures or compiled test)."
    )
    failing_rows: list[dict[str, str | None]] = Field(
        default_factory=list, description="A failed test's first rows (column -> value)."
    )

    @property
    def failed(self) -> bool:
        """The node itself failed (skipped nodes only follow a failure)."""
        return self.status in FAILED


class NodeSplit(BaseModel):
    """What a retry of a dbt job runs and keeps."""

    model_config = ConfigDict(defer_build=True)  # built on first use, not at every import

    to_run: list[str] = Field(description="Nodes that failed or were skipped: run again.")
    to_skip: list[str] = Field(description="Nodes that succeeded: not run again.")


def retry_split(nodes: list[NodeResult]) -> NodeSplit:
    """Pure: the nodes `dbt retry` reruns (failed or skipped) and those it leaves alone."""
    return NodeSplit(
        to_run=[n.unique_id for n in nodes if n.status in RETRYABLE],
        to_skip=[n.unique_id for n in nodes if n.status not in RETRYABLE],
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    """A dbt artifact as JSON, or None when absent, oversized or unreadable."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_ARTIFACT_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_nodes(target_dir: Path) -> list[NodeResult] | None:
    """Every node of the run whose artifacts are in `target_dir`; None when dbt wrote no
    run_results.json (it stopped before running anything: a parse or project error)."""
    results = _read_json(target_dir / RUN_RESULTS)
    if results is None or not isinstance(results.get("results"), list):
        return None
    manifest = _read_json(target_dir / MANIFEST) or {}
    known: dict[str, Any] = {**manifest.get("nodes", {}), **manifest.get("sources", {})}
    samples = _read_json(target_dir / FAILING_ROWS) or {}
    nodes = [
        node_result(result, known.get(str(result.get("unique_id"))) or {}, known)
        for result in results["results"]
        if isinstance(result, dict)
    ]
    return [_with_sample(node, samples.get(node.unique_id)) for node in nodes]


def _with_sample(node: NodeResult, sample: Any) -> NodeResult:
    """The node with the rows the dbt child sampled for it, when they are well formed."""
    rows = sample.get("rows") if isinstance(sample, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        return node
    clean = [{str(k): None if v is None else str(v) for k, v in r.items()} for r in rows]
    return node.model_copy(update={"failing_rows": clean})


def _timing(result: dict[str, Any]) -> tuple[str | None, str | None]:
    for timing in result.get("timing") or []:
        if isinstance(timing, dict) and timing.get("name") == "execute":
            return timing.get("started_at"), timing.get("completed_at")
    return None, None


def node_result(result: dict[str, Any], node: dict[str, Any], known: dict[str, Any]) -> NodeResult:
    """One entry of run_results.json, with its manifest node's facts."""
    unique_id = str(result.get("unique_id", ""))
    resource_type = str(node.get("resource_type") or unique_id.split(".", 1)[0])
    status = str(result.get("status", "")).lower()
    started_at, completed_at = _timing(result)
    failures = result.get("failures")
    parent_node = _parent_node(node, known) if resource_type == "test" else None
    parent = parent_node.get("name") if parent_node else None
    metadata = node.get("test_metadata") or {}
    query = None
    if resource_type == "test" and status in FAILED:
        query = _failing_rows_query(result, node, parent_node or {})
    return NodeResult(
        unique_id=unique_id,
        name=str(node.get("name") or unique_id.rsplit(".", 1)[-1]),
        resource_type=resource_type,
        status=status,
        execution_time=result.get("execution_time"),
        started_at=started_at,
        completed_at=completed_at,
        message=result.get("message"),
        failures=failures if isinstance(failures, int) else None,
        file=node.get("original_file_path"),
        parent_model=parent,
        column=node.get("column_name") or (metadata.get("kwargs") or {}).get("column_name"),
        test_name=metadata.get("name"),
        failing_rows_query=query,
    )


def _parent_node(node: dict[str, Any], known: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest node (model, seed, snapshot, source) a test is about."""
    attached = node.get("attached_node")
    candidates = [attached] if attached else list((node.get("depends_on") or {}).get("nodes", []))
    for unique_id in candidates:
        parent = dict(known.get(unique_id) or {})
        parent.setdefault("name", str(unique_id).rsplit(".", 1)[-1])
        return parent
    return None


def _failing_rows_query(
    result: dict[str, Any], node: dict[str, Any], parent: dict[str, Any]
) -> str | None:
    """SQL showing the rows a failed test found: the stored failures when dbt kept them,
    whole rows for not_null (dbt's own query selects only the null column), else the
    compiled test."""
    relation = result.get("relation_name") or node.get("relation_name")
    if (node.get("config") or {}).get("store_failures") and relation:
        return f"select * from {relation}"  # noqa: S608 - shown to a person, never executed
    metadata = node.get("test_metadata") or {}
    column = node.get("column_name") or (metadata.get("kwargs") or {}).get("column_name")
    if metadata.get("name") == "not_null" and column and parent.get("relation_name"):
        return f"select * from {parent['relation_name']} where {column} is null"  # noqa: S608 - shown, never executed
    code = result.get("compiled_code") or node.get("compiled_code")
    return str(code).strip()[:MAX_CODE_CHARS] if code else None
