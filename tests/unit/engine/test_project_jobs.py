"""Python and duckdb_load project jobs as real child processes under the engine's rules."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from bunsui_core.config import Settings
from bunsui_core.diagnosis.analyzer import analyze_session
from bunsui_core.engine.local import LocalEngine
from bunsui_core.model.project_loader import load_definition
from bunsui_core.model.session import RunStatus, Session, SessionStatus, new_id
from bunsui_core.store.sqlite import SqliteStore

pytestmark = pytest.mark.slow  # each job is a Python child process; duckdb imports take a while

JOBS = """
- name: load_orders
  type: duckdb_load
  config: {path: data/orders.csv, table: orders, mode: replace}
- name: load_more
  type: duckdb_load
  depends_on: [load_orders]
  config: {path: data/more.csv, table: orders, mode: append}
- name: count_sync
  type: python
  depends_on: [load_more]
  config: {callable: jobs_code:count_rows, kwargs: {table: orders}}
- name: count_async
  type: python
  execution_mode: async
  depends_on: [load_more]
  config: {callable: jobs_code:count_rows_later, kwargs: {table: orders}}
"""
CODE = """
import asyncio, os
import duckdb

def count_rows(table):
    with duckdb.connect(os.environ["BUNSUI_WAREHOUSE"], read_only=True) as con:
        return {"rows": con.execute(f"select count(*) from {table}").fetchone()[0]}

async def count_rows_later(table):
    await asyncio.sleep(0.01)
    return count_rows(table)

def sleep_forever():
    import time
    time.sleep(60)

def fail():
    raise ValueError("no orders for 2026-11-29")
"""


def make_project(root: Path, jobs: str, files: dict[str, str]) -> Path:
    """A project directory with the given jobs (one jobs file) and data files."""
    (root / "jobs").mkdir(parents=True)
    (root / "bunsui.yaml").write_text(f"name: {root.name}\n")
    (root / "jobs" / "all.yaml").write_text(textwrap.dedent(jobs))
    (root / "jobs_code.py").write_text(CODE)
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(content)
    return root


def run_project(store: SqliteStore, settings: Settings, root: Path) -> Session:
    """Register the project as `pipeline run DIR` does and run it in the foreground."""
    loaded = load_definition(root)
    version = store.register_pipeline(root.name, loaded.pipeline, source=str(loaded.source))
    session = store.create_session(
        Session(
            session_id=new_id("ses"),
            pipeline_id=version.pipeline_id,
            pipeline_version=version.version,
            pipeline_name=loaded.pipeline.name,
            status=SessionStatus.QUEUED,
        )
    )
    return LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)


def stdout_of(store: SqliteStore, session: Session, job_id: str) -> str:
    (op_run,) = store.list_operation_runs(session.session_id, job_id)
    return Path(op_run.attempts[-1].stdout_path or "").read_text()


def test_loads_then_sync_and_async_callables(store, settings, tmp_path):
    """CSV replace then append into the warehouse; sync and async callables both read it."""
    root = make_project(
        tmp_path / "loads",
        JOBS,
        {
            "data/orders.csv": "order_id,amount\n1,2.5\n2,4.0\n",
            "data/more.csv": "order_id,amount\n3,1.0\n",
        },
    )
    session = run_project(store, settings, root)
    assert session.status is SessionStatus.COMPLETED, store.list_errors(session.session_id)
    assert '{"rows": 3}' in stdout_of(store, session, "count_sync")
    assert '{"rows": 3}' in stdout_of(store, session, "count_async")
    assert "1 row(s) into orders (append)" in stdout_of(store, session, "load_more")
    with duckdb.connect(str(root / ".bunsui" / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select sum(amount) from orders").fetchone() == (7.5,)


def test_bad_rows_are_data_errors_with_line_numbers_and_nothing_is_loaded(
    store, settings, tmp_path
):
    """Rows that do not fit the declared types stop the load; the error names their lines."""
    jobs = """
    - name: load_orders
      type: duckdb_load
      config:
        path: data/orders.csv
        table: orders
        columns: {order_id: INTEGER, amount: DOUBLE}
    """
    root = make_project(
        tmp_path / "bad",
        jobs,
        {"data/orders.csv": "order_id,amount\n1,2.5\n2,N/A\n3,1.0\nfour,2\n"},
    )
    session = run_project(store, settings, root)
    assert session.status is SessionStatus.FAILED
    (error,) = analyze_session(store, session, None).errors
    assert (error.error_code, error.category) == ("LOAD_BAD_ROWS", "DATA")
    assert (error.context["lines"], error.context["file"]) == ("3, 5", "data/orders.csv")
    with duckdb.connect(str(root / ".bunsui" / "warehouse.duckdb"), read_only=True) as con:
        tables = con.execute("select table_name from information_schema.tables").fetchall()
    assert tables == []


def test_a_python_job_has_the_timeout_and_its_exception_is_recorded(store, settings, tmp_path):
    """A callable past timeout_seconds is killed; one that raises fails with its traceback."""
    jobs = """
    - {name: hangs, type: python, config: {callable: jobs_code:sleep_forever, timeout_seconds: 1}}
    - {name: raises, type: python, config: {callable: jobs_code:fail}}
    """
    session = run_project(store, settings, make_project(tmp_path / "limits", jobs, {}))
    statuses = {r.job_id: r.status for r in store.list_job_runs(session.session_id)}
    assert statuses == {"hangs": RunStatus.TIMEOUT, "raises": RunStatus.FAILED}
    messages = {e.job_id: e.message for e in store.list_errors(session.session_id)}
    assert "ValueError: no orders for 2026-11-29" in messages["raises"]
    assert "timed out after 1 seconds" in messages["hangs"]
