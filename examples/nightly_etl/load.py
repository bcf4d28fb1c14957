"""Load the per-customer totals into the demo warehouse (a file in the job's work dir)."""

import json
import os
from pathlib import Path

upstream = json.loads(os.environ["BUNSUI_UPSTREAM_DIRS"])
totals = json.loads((Path(upstream["transform"]) / "totals.json").read_text())
target = Path(os.environ["BUNSUI_WORKDIR"]) / "warehouse.json"
target.write_text(json.dumps({"customers": len(totals), "revenue": round(sum(totals.values()), 2)}))
print(f"loaded {len(totals)} customers into {target}")
