"""Child-process entry point of a `dbt` job: the dbt CLI, then a sample of each failed
test's rows.

Runs as `python -m bunsui_core.engine.dbt_job <dbt args>` in the job's own process, so the
sample is read under the same limits as dbt itself. The rows go to `failing_rows.json` next
to run_results.json; the engine attaches them to the failed test's node and error.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bunsui_core.model.dbt_nodes import FAILING_ROWS, read_nodes

SAMPLE_ROWS = 5
VALUE_CHARS = 200


def _exit_code(code: Any) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def run_dbt(argv: list[str]) -> int:
    """dbt's own CLI with these arguments; its exit code."""
    from dbt.cli.main import cli  # noqa: PLC0415 - dbt is an optional extra

    try:
        cli.main(args=argv, prog_name="dbt")
    except SystemExit as done:
        return _exit_code(done.code)
    return 0


def sample_failing_rows(target: Path, warehouse: str) -> dict[str, dict[str, Any]]:
    """Up to SAMPLE_ROWS rows of each failed test's query (a select) from the warehouse."""
    import duckdb  # noqa: PLC0415 - only after a failed test

    samples: dict[str, dict[str, Any]] = {}
    failed = [n for n in read_nodes(target) or [] if n.status == "fail" and n.failing_rows_query]
    if not failed:
        return samples
    try:
        # dbt-duckdb keeps its connection open in this process, and DuckDB refuses a second
        # one with another configuration (read_only): share it; only a select runs.
        con = duckdb.connect(warehouse)
    except duckdb.Error as exc:
        return {n.unique_id: {"error": str(exc)[:VALUE_CHARS]} for n in failed}
    with con:
        for node in failed:
            try:
                cursor = con.execute(
                    f"select * from ({node.failing_rows_query}) as failing limit {SAMPLE_ROWS}"  # noqa: S608 - the project's own test SQL, wrapped in a select
                )
                columns = [d[0] for d in cursor.description or []]
                rows = [
                    {
                        c: None if v is None else str(v)[:VALUE_CHARS]
                        for c, v in zip(columns, row, strict=True)
                    }
                    for row in cursor.fetchall()
                ]
            except duckdb.Error as exc:
                samples[node.unique_id] = {"error": str(exc)[:VALUE_CHARS]}
                continue
            samples[node.unique_id] = {"rows": rows}
    return samples


def main() -> int:
    """Run dbt; after a failed run, keep a sample of the rows each failed test found."""
    argv = sys.argv[1:]
    code = run_dbt(argv)
    warehouse = os.environ.get("BUNSUI_WAREHOUSE")
    if code != 0 and warehouse and "--target-path" in argv:
        target = Path(argv[argv.index("--target-path") + 1])
        samples = sample_failing_rows(target, warehouse)
        if samples:
            (target / FAILING_ROWS).write_text(json.dumps(samples), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
