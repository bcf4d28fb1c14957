"""Child-process entry point of a `duckdb_load` job: one CSV or Parquet file into a table.

Runs as `python -m bunsui_core.engine.duckdb_load` in the job's own process. Rows DuckDB
cannot read (wrong column count, a value that does not fit its column's type) are bad rows:
the load stops with nothing written and reports each with its line number on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import duckdb

BAD_ROWS_SHOWN = 20
EXIT_BAD_ROWS = 3


def _quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def source_sql(params: dict[str, Any], path: Path) -> str:
    """The table function reading the file; CSV keeps its rejects for the bad-row report."""
    fmt = params.get("format", "auto")
    if fmt == "parquet" or (fmt == "auto" and path.suffix.lower() == ".parquet"):
        return f"read_parquet({_literal(str(path))})"
    options = ["store_rejects = true", f"header = {str(bool(params.get('header', True))).lower()}"]
    if params.get("delimiter"):
        options.append(f"delim = {_literal(params['delimiter'])}")
    columns = params.get("columns") or {}
    if columns:
        fields = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in columns.items())
        options.append(f"columns = {{{fields}}}")
    return f"read_csv({_literal(str(path))}, {', '.join(options)})"


def load(connection: duckdb.DuckDBPyConnection, params: dict[str, Any], path: Path) -> int:
    """Load the file in one transaction; returns rows loaded, or raises BadRows."""
    table = _quoted(params["table"])
    connection.execute("BEGIN TRANSACTION")
    source = source_sql(params, path)
    connection.execute(f"CREATE TEMP TABLE bunsui_incoming AS SELECT * FROM {source}")  # noqa: S608 - literals escaped
    bad = _bad_rows(connection)
    if bad:
        connection.execute("ROLLBACK")
        raise BadRowsError(bad)
    if params.get("mode", "replace") == "append":
        connection.execute(f"CREATE TABLE IF NOT EXISTS {table} AS FROM bunsui_incoming LIMIT 0")
        connection.execute(f"INSERT INTO {table} BY NAME FROM bunsui_incoming")
    else:
        connection.execute(f"CREATE OR REPLACE TABLE {table} AS FROM bunsui_incoming")
    (count,) = connection.execute("SELECT count(*) FROM bunsui_incoming").fetchone() or (0,)
    connection.execute("DROP TABLE bunsui_incoming")
    connection.execute("COMMIT")
    return int(count)


class BadRowsError(Exception):
    """Rows of the input file DuckDB rejected: (line, message, raw line)."""

    def __init__(self, rows: list[tuple[int, str, str]]) -> None:
        super().__init__(f"{len(rows)} bad rows")
        self.rows = rows


def _bad_rows(connection: duckdb.DuckDBPyConnection) -> list[tuple[int, str, str]]:
    try:
        found = connection.execute(
            "SELECT DISTINCT line, error_message, csv_line FROM reject_errors ORDER BY line"
        ).fetchall()
    except duckdb.CatalogException:  # Parquet: no rejects table
        return []
    return [(int(line), str(message), str(raw or "")) for line, message, raw in found]


def main() -> int:
    """Load the file the job names into the project's warehouse."""
    params = json.loads(os.environ.get("BUNSUI_PARAMS", "{}"))
    project = Path(os.environ.get("BUNSUI_PROJECT_DIR") or ".")
    path = project / params["path"]
    if not path.is_file():
        print(f"duckdb_load: input file not found: {params['path']}", file=sys.stderr)
        return 2
    with duckdb.connect(os.environ["BUNSUI_WAREHOUSE"]) as connection:
        try:
            count = load(connection, params, path)
        except BadRowsError as bad:
            lines = sorted({line for line, _, _ in bad.rows})
            print(
                f"duckdb_load: {len(lines)} bad row(s) in {params['path']} at line(s) "
                f"{', '.join(map(str, lines[:BAD_ROWS_SHOWN]))}; nothing was loaded into "
                f"{params['table']}",
                file=sys.stderr,
            )
            for line, message, raw in bad.rows[:BAD_ROWS_SHOWN]:
                print(f"  line {line}: {message} | {raw}", file=sys.stderr)
            return EXIT_BAD_ROWS
    print(f"duckdb_load: {count} row(s) into {params['table']} ({params.get('mode', 'replace')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
