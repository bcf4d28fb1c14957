"""Projects with real dbt and DuckDB through the CLI: run, diagnose, rerun what failed.

dbt takes seconds to start, so the failing shop project runs once per module and the tests
read that one session (and its one rerun).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.test_cli import EXAMPLES, Cli

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[1] / "projects" / "sample_project"
DBT_TIMEOUT = 600
TEST = "test.shop.not_null_stg_orders_customer_id.af79d5e4b5"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's project after a new orders file with a missing customer_id arrived, run
    once: its dbt job failed."""
    base = tmp_path_factory.mktemp("shop")
    root = Path(shutil.copytree(EXAMPLES / "dbt_project", base / "shop"))
    shutil.copyfile(
        root / "data" / "arrivals" / "orders_2026-11-29.csv", root / "data" / "orders.csv"
    )
    cli = Cli(base / "home")
    session = cli.json("pipeline", "run", str(root), "--wait", expect=10, timeout=DBT_TIMEOUT)
    return {"root": root, "cli": cli, "session": session}


def plain(context: dict[str, Any]) -> dict[str, Any]:
    """Error context with untrusted text values unwrapped to their text."""
    return {k: v["text"] if isinstance(v, dict) and "trust" in v else v for k, v in context.items()}


def attempts(cli: Cli, session_id: str, job_id: str) -> list[dict[str, Any]]:
    described = cli.json("job", "describe", job_id, "--session-id", session_id)
    last = described["operations"][0]["attempts"][-1]["nodes"]
    # The one-line-per-node listing people read is the last attempt's nodes.
    assert [(n["node"], n["status"]) for n in described["nodes"]] == [
        (f"{n['resource_type']} {n['name']}", n["status"]) for n in last
    ]
    return described["operations"][0]["attempts"]


class TestFailedTest:
    def test_the_dbt_job_fails_and_its_dependent_never_runs(self, shop):
        """transform failed on the data; report waited on it."""
        jobs = {j["job_id"]: j["status"] for j in shop["session"]["jobs"]}
        assert jobs == {"transform": "failed", "report": "upstream_failed"}

    def test_every_node_is_in_job_describe(self, shop):
        """Models, tests and skipped nodes with status, timing, message and failing rows."""
        (attempt,) = attempts(shop["cli"], shop["session"]["session_id"], "transform")
        nodes = {n["unique_id"]: n for n in attempt["nodes"]}
        assert nodes["model.shop.stg_orders"]["status"] == "success"
        assert nodes["model.shop.stg_orders"]["execution_time"] > 0
        failed = nodes[TEST]
        assert (failed["status"], failed["failures"], failed["parent_model"]) == (
            "fail",
            1,
            "stg_orders",
        )
        assert failed["message"]["trust"] == "untrusted_pipeline_output"
        assert nodes["model.shop.customer_revenue"]["status"] == "skipped"
        assert Path(attempt["artifacts"]["run_results"]).name == "run_results.json"
        copy = Path(attempt["artifacts"]["run_results_copy"])
        assert copy.is_relative_to(shop["root"] / "artifacts")
        assert json.loads(copy.read_text())["results"]

    def test_the_failed_test_is_data_on_its_model_with_the_rows_query(self, shop):
        """error analyze names the test, its model, the failing-row count and a query that
        really returns the bad row from the warehouse."""
        analysis = shop["cli"].json(
            "error", "analyze", "--session-id", shop["session"]["session_id"]
        )
        (error,) = analysis["errors"]
        assert (error["error_code"], error["category"]) == ("DBT_TEST_FAILED", "DATA")
        context = plain(error["context"])
        assert (context["dbt_test"], context["model"], context["failures"]) == (
            "not_null_stg_orders_customer_id",
            "stg_orders",
            1,
        )
        assert context["failing_rows"] == [
            {
                "order_id": "1006",
                "customer_id": None,
                "amount": "7.25",
                "ordered_at": "2026-11-29",
            }
        ]
        assert error["recovery_suggestions"][0]["action"] == "fix_code_or_data"
        assert error["recovery_suggestions"][0]["requires_human"]
        warehouse = shop["root"] / ".bunsui" / "warehouse.duckdb"
        with duckdb.connect(str(warehouse), read_only=True) as con:
            # The view reads the file relative to the dbt project, as dbt ran it.
            con.execute(f"set file_search_path = '{shop['root'] / 'dbt'}'")
            rows = con.execute(context["failing_rows_query"]).fetchall()
        assert [row[0] for row in rows] == ["1006"]


@pytest.fixture(scope="module")
def rerun(shop: dict[str, Any]) -> dict[str, Any]:
    """The data is fixed by a person, then the job is rerun."""
    orders = shop["root"] / "data" / "orders.csv"
    orders.write_text(orders.read_text().replace("1006,,", "1006,c-099,"))
    return shop["cli"].json(
        "job",
        "rerun",
        "transform",
        "--session-id",
        shop["session"]["session_id"],
        "--skip-successful",
        "--wait",
        timeout=DBT_TIMEOUT,
    )


class TestRerunAfterTheFix:
    def test_the_rerun_output_lists_nodes_to_run_and_to_skip(self, rerun):
        """What failed or was skipped runs; what succeeded is named as left alone."""
        split = rerun["dbt_nodes"]["transform"]
        assert TEST in split["to_run"]
        assert "model.shop.customer_revenue" in split["to_run"]
        assert "model.shop.stg_orders" in split["to_skip"]
        assert not set(split["to_run"]) & set(split["to_skip"])

    def test_only_the_failed_and_skipped_nodes_ran_and_the_session_completed(self, shop, rerun):
        """The new run_results.json holds exactly the nodes to run; none that succeeded."""
        cli = shop["cli"]
        session = cli.json("session", "describe", rerun["session_id"])
        assert session["status"] == "completed"
        assert {j["job_id"]: j["status"] for j in session["jobs"]} == {
            "transform": "completed",
            "report": "completed",
        }
        (attempt,) = attempts(cli, rerun["session_id"], "transform")
        results = json.loads(Path(attempt["artifacts"]["run_results"]).read_text())
        ran = {r["unique_id"] for r in results["results"]}
        assert ran == set(rerun["dbt_nodes"]["transform"]["to_run"])
        assert "model.shop.stg_orders" not in ran
        assert all(r["status"] in {"success", "pass"} for r in results["results"])


def test_upstream_sample_project_validates_and_runs_unchanged(tmp_path):
    """bunsui.yaml + example_dbt/python/duckdb_load, as upstream ships it, completes."""
    root = Path(shutil.copytree(SAMPLE, tmp_path / "sample_project"))
    cli = Cli(tmp_path / "home")
    valid = cli.json("pipeline", "validate", str(root / "bunsui.yaml"))
    assert valid["job_order"] == ["example_dbt", "example_duckdb_load", "example_python"]
    session = cli.json("pipeline", "run", str(root), "--wait", timeout=DBT_TIMEOUT)
    assert session["status"] == "completed", session
    (attempt,) = attempts(cli, session["session_id"], "example_dbt")
    assert {(n["unique_id"].split(".")[0], n["status"]) for n in attempt["nodes"]} == {
        ("model", "success"),
        ("test", "pass"),
    }
    logs = cli.json("job", "logs", "example_python", "--session-id", session["session_id"])
    assert "example has 1 row(s)" in logs["logs"][0]["content"]["text"]
    with duckdb.connect(str(root / ".bunsui" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from orders").fetchone() == (3,)


def test_a_compilation_error_and_a_missing_ref_are_diagnosed(tmp_path):
    """Two dbt projects that stop at parse time: Jinja that does not compile is APPLICATION
    at its file and line, a ref to nothing is DEPENDENCY naming it."""
    root = tmp_path / "broken"
    (root / "jobs").mkdir(parents=True)
    (root / "bunsui.yaml").write_text("name: broken\nmax_concurrent_jobs: 2\n")
    for name, sql in {
        "jinja": "select 1 as id\n\n{{ config(materialized='table') }}\n{{ x x }}\n",
        "missing": "select * from {{ ref('nonexistent') }}\n",
    }.items():
        models = root / name / "models"
        models.mkdir(parents=True)
        (root / name / "dbt_project.yml").write_text(f"name: {name}\nprofile: {name}\n")
        (models / "bad.sql").write_text(sql)
        (root / "jobs" / f"{name}.yaml").write_text(
            f"name: {name}\ntype: dbt\nconfig: {{dbt_dir: {name}}}\n"
        )
    cli = Cli(tmp_path / "home")
    session = cli.json("pipeline", "run", str(root), "--wait", expect=10, timeout=DBT_TIMEOUT)
    errors = cli.json("error", "analyze", "--session-id", session["session_id"])["errors"]
    by_job = {e["job_id"]: e for e in errors}
    jinja, missing = by_job["jinja"], by_job["missing"]
    jinja["context"], missing["context"] = plain(jinja["context"]), plain(missing["context"])
    assert (jinja["error_code"], jinja["category"]) == ("DBT_COMPILATION_ERROR", "APPLICATION")
    assert (jinja["context"]["file"], jinja["context"]["line"]) == ("models/bad.sql", 4)
    assert (missing["error_code"], missing["category"]) == ("DBT_MISSING_REF", "DEPENDENCY")
    assert (missing["context"]["missing_ref"], missing["context"]["file"]) == (
        "nonexistent",
        "models/bad.sql",
    )
