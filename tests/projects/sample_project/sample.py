"""The sample project's Python job: reads the model example_dbt built."""

import os

import duckdb


def main() -> None:
    with duckdb.connect(os.environ["BUNSUI_WAREHOUSE"], read_only=True) as con:
        (rows,) = con.execute("select count(*) from example").fetchone()
    print(f"example has {rows} row(s)")
