#!/usr/bin/env bash
# The demo `make demo` runs: three real pipelines fail on the local engine, for three
# different reasons, and we inspect them the way an operator (or an agent) would.
set -uo pipefail
cd "$(dirname "$0")"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

expect_failure() {
  # `pipeline run --wait` exits 10 when the session failed: that is what the demo expects.
  local file=$1
  bunsui --format json pipeline run "$file" --wait > /tmp/bunsui-demo-run.json
  local rc=$?
  if [ "$rc" -ne 10 ]; then
    echo "demo: expected $file to fail with exit code 10, got $rc" >&2
    cat /tmp/bunsui-demo-run.json >&2
    exit 1
  fi
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["session_id"], s["status"], s["error_summary"])' /tmp/bunsui-demo-run.json
}

say "Validate the example pipelines"
for file in nightly_etl/pipeline.yaml flaky_api/pipeline.yaml data_quality/pipeline.yaml; do
  bunsui --format table pipeline validate "$file" | head -3 || exit 1
done

say "Run them on the local engine (real processes, SQLite store in \$BUNSUI_HOME)"
expect_failure nightly_etl/pipeline.yaml
expect_failure flaky_api/pipeline.yaml
expect_failure data_quality/pipeline.yaml

say "Failed sessions"
bunsui --format table session list --filter status=failed || exit 1

etl=$(bunsui --format json session list --filter status=failed --filter pipeline_id=nightly-orders-etl --limit 1 \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["sessions"][0]["session_id"])')

say "Jobs of the ETL session $etl: transform hit its 128 MiB memory limit"
bunsui --format table job list --session-id "$etl" || exit 1

say "The transform's stderr (pipeline output, shown as untrusted data)"
bunsui --format table job logs transform --session-id "$etl" --stream stderr --tail-lines 6 || exit 1

say "Demo finished: three failed sessions are stored in $BUNSUI_HOME"
