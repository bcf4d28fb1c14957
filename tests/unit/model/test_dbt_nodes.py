"""dbt's run_results.json + manifest.json read into per-node results."""

from __future__ import annotations

import json
from pathlib import Path

from bunsui_core.model.dbt_nodes import NodeResult, read_nodes, retry_split

MODEL = "model.shop.stg_orders"
TEST = "test.shop.not_null_stg_orders_customer_id.af79d5e4b5"
MART = "model.shop.customer_revenue"


def write_target(target: Path, *, store_failures: bool = False) -> Path:
    """A target directory shaped like dbt 1.11's after a build whose not_null test failed."""
    target.mkdir(parents=True)
    timing = [
        {"name": "compile", "started_at": "2026-11-29T10:00:00Z", "completed_at": "x"},
        {
            "name": "execute",
            "started_at": "2026-11-29T10:00:01Z",
            "completed_at": "2026-11-29T10:00:02Z",
        },
    ]
    results = [
        {
            "unique_id": MODEL,
            "status": "success",
            "message": "OK",
            "failures": None,
            "execution_time": 0.8,
            "timing": timing,
            "relation_name": '"w"."main"."stg_orders"',
        },
        {
            "unique_id": TEST,
            "status": "fail",
            "failures": 1,
            "execution_time": 0.3,
            "message": "Got 1 result, configured to fail if != 0",
            "timing": timing,
            "relation_name": '"w"."main_dbt_test__audit"."not_null_x"' if store_failures else None,
            "compiled_code": "select customer_id from stg where customer_id is null",
        },
        {
            "unique_id": MART,
            "status": "skipped",
            "message": None,
            "failures": None,
            "execution_time": 0,
            "timing": [],
        },
    ]
    nodes = {
        MODEL: {
            "name": "stg_orders",
            "resource_type": "model",
            "original_file_path": "models/staging/stg_orders.sql",
            "relation_name": '"w"."main"."stg_orders"',
        },
        TEST: {
            "name": "not_null_stg_orders_customer_id",
            "resource_type": "test",
            "original_file_path": "models/staging/schema.yml",
            "attached_node": MODEL,
            "column_name": "customer_id",
            "config": {"store_failures": store_failures},
            "test_metadata": {"name": "not_null", "kwargs": {"column_name": "customer_id"}},
        },
        MART: {
            "name": "customer_revenue",
            "resource_type": "model",
            "original_file_path": "models/marts/customer_revenue.sql",
        },
    }
    (target / "run_results.json").write_text(json.dumps({"results": results}))
    (target / "manifest.json").write_text(json.dumps({"nodes": nodes, "sources": {}}))
    return target


class TestReadNodes:
    def test_every_node_with_status_timing_and_failures(self, tmp_path):
        """Models, tests and skipped nodes are all recorded with dbt's facts."""
        nodes = {n.unique_id: n for n in read_nodes(write_target(tmp_path / "t")) or []}
        assert [nodes[k].status for k in (MODEL, TEST, MART)] == ["success", "fail", "skipped"]
        test = nodes[TEST]
        assert (test.failures, test.parent_model, test.column) == (1, "stg_orders", "customer_id")
        assert test.started_at == "2026-11-29T10:00:01Z"
        assert test.file == "models/staging/schema.yml"
        assert test.failed
        assert not nodes[MART].failed

    def test_not_null_rows_are_shown_whole(self, tmp_path):
        """dbt's not_null query selects only the null column; the query bunsui gives shows
        the whole rows of the parent model."""
        test = next(
            n for n in read_nodes(write_target(tmp_path / "t")) or [] if n.unique_id == TEST
        )
        assert test.failing_rows_query == (
            'select * from "w"."main"."stg_orders" where customer_id is null'
        )

    def test_stored_failures_are_queried_where_dbt_kept_them(self, tmp_path):
        """With store_failures, the audit table is the place to look."""
        target = write_target(tmp_path / "t", store_failures=True)
        test = next(n for n in read_nodes(target) or [] if n.unique_id == TEST)
        assert test.failing_rows_query == 'select * from "w"."main_dbt_test__audit"."not_null_x"'

    def test_rows_sampled_by_the_dbt_job_are_attached_to_their_test(self, tmp_path):
        """failing_rows.json (written by the dbt child) lands on the failed test's node."""
        target = write_target(tmp_path / "t")
        rows = [{"order_id": "1006", "customer_id": None}]
        (target / "failing_rows.json").write_text(json.dumps({TEST: {"rows": rows}}))
        nodes = {n.unique_id: n for n in read_nodes(target) or []}
        assert nodes[TEST].failing_rows == rows
        assert nodes[MODEL].failing_rows == []

    def test_no_run_results_means_dbt_stopped_before_any_node(self, tmp_path):
        """A parse error leaves no run_results.json: None, not an empty run."""
        (tmp_path / "t").mkdir()
        assert read_nodes(tmp_path / "t") is None
        (tmp_path / "t" / "run_results.json").write_text("not json")
        assert read_nodes(tmp_path / "t") is None


def test_retry_runs_failed_and_skipped_and_keeps_the_rest():
    """The split dbt retry makes: failures and skips run again, successes never."""
    nodes = [
        NodeResult(unique_id=u, name=u, resource_type="model", status=s)
        for u, s in [
            ("a", "success"),
            ("b", "fail"),
            ("c", "skipped"),
            ("d", "pass"),
            ("e", "error"),
            ("f", "warn"),
        ]
    ]
    split = retry_split(nodes)
    assert (split.to_run, split.to_skip) == (["b", "c", "e"], ["a", "d", "f"])
