"""Call the (simulated) rates API; during the outage the connection is reset.

The outage is counted in BUNSUI_STATE_DIR, which persists across this pipeline's sessions, so
the failure is truly transient: later calls succeed.
"""

import json
import os
import sys
from pathlib import Path

params = json.loads(os.environ["BUNSUI_PARAMS"])
counter = Path(os.environ["BUNSUI_STATE_DIR"]) / "rates_api_calls"
calls = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(calls))
if calls <= int(params.get("outage_calls", 1)):
    print(f"call {calls} to https://rates.example.com/v1/latest", flush=True)
    print(
        "requests.exceptions.ConnectionError: ('Connection aborted.', "
        "ConnectionResetError(104, 'Connection reset by peer'))",
        file=sys.stderr,
    )
    sys.exit(1)
rates = {"EUR": 0.92, "JPY": 151.3, "GBP": 0.79}
(Path(os.environ["BUNSUI_WORKDIR"]) / "rates.json").write_text(json.dumps(rates))
print(f"call {calls}: fetched {len(rates)} rates")
