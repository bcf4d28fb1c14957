"""The report job: the top customers by revenue, from the table dbt built."""

import os

import duckdb


def main(top: int) -> dict[str, float]:
    with duckdb.connect(os.environ["BUNSUI_WAREHOUSE"], read_only=True) as con:
        rows = con.execute(
            "select customer_id, revenue from customer_revenue order by revenue desc limit ?",
            [top],
        ).fetchall()
    for customer, revenue in rows:
        print(f"{customer}: {revenue}")
    return {customer: float(revenue) for customer, revenue in rows}
