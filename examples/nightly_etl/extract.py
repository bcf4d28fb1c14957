"""Write the day's orders (deterministic) as CSV into this job's work dir."""

import csv
import json
import os
import random
from pathlib import Path

params = json.loads(os.environ["BUNSUI_PARAMS"])
rows = int(params.get("rows", 1000))
out = Path(os.environ["BUNSUI_WORKDIR"]) / "orders.csv"
generator = random.Random(42)
with out.open("w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["order_id", "customer_id", "amount"])
    for order_id in range(rows):
        writer.writerow([order_id, generator.randrange(500), f"{generator.uniform(1, 500):.2f}"])
print(f"extracted {rows} orders to {out}")
