"""Publish the fetched rates next to the job (stands in for an upload)."""

import json
import os
from pathlib import Path

upstream = json.loads(os.environ["BUNSUI_UPSTREAM_DIRS"])
rates = json.loads((Path(upstream["fetch-rates"]) / "rates.json").read_text())
(Path(os.environ["BUNSUI_WORKDIR"]) / "published.json").write_text(json.dumps(rates))
print(f"published {len(rates)} rates")
