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

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); exec("for k in sys.argv[1].split(\".\"): d = d[int(k)] if k.isdigit() else d[k]"); print(d)' "$1"; }

say "Why did it fail? (error analyze: code, category, context, suggestions with their confidence basis)"
bunsui --format json error analyze --session-id "$etl" > /tmp/bunsui-demo-analysis.json || exit 1
python3 - /tmp/bunsui-demo-analysis.json <<'PY'
import json, sys
for error in json.load(open(sys.argv[1]))["errors"]:
    print(f"{error['job_id']}: {error['error_code']} ({error['category']}), context {error['context']}")
    for s in error["recovery_suggestions"]:
        print(f"  {s['action']:<26} confidence {s['confidence']:.2f}  {s['command']}")
PY

say "Recovery plans, best first"
bunsui --format json recovery suggest --session-id "$etl" > /tmp/bunsui-demo-plans.json || exit 1
python3 - /tmp/bunsui-demo-plans.json <<'PY'
import json, sys
for plan in json.load(open(sys.argv[1]))["recovery_plans"]:
    print(f"{plan['plan_id']}  p={plan['success_probability']:.2f}  {plan['description']}")
    for risk in plan["risks"]:
        print(f"    risk: {risk}")
PY
plan=$(field recovery_plans.0.plan_id < /tmp/bunsui-demo-plans.json)

say "Dry run of $plan (the default): what would change"
bunsui --format yaml recovery execute "$plan" || exit 1

say "The agent asks to execute it: policy says a human must approve, so it gets a ticket"
bunsui --actor ai-agent --format json recovery execute "$plan" --no-dry-run > /tmp/bunsui-demo-ticket.json
rc=$?
if [ "$rc" -ne 6 ]; then
  echo "demo: expected the agent's request to become a ticket (exit 6), got $rc" >&2
  cat /tmp/bunsui-demo-ticket.json >&2
  exit 1
fi
ticket=$(field ticket_id < /tmp/bunsui-demo-ticket.json)
python3 - /tmp/bunsui-demo-ticket.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
print(f"{t['ticket_id']}: {t['action']} requested by {t['requested_by']} ({t['rule']})")
print(f"  a human runs: {t['approve_command']}")
PY

say "The agent cannot approve its own request"
bunsui --actor ai-agent --format table approval approve "$ticket" 2>&1 | head -2

say "A human ($(id -un)) approves: the plan runs once, as the agent's action, with the approver recorded"
bunsui --format json approval approve "$ticket" --reason "memory raise reviewed" > /tmp/bunsui-demo-approved.json || exit 1
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print(t["ticket_id"], t["status"], "approved by", t["decided_by"])' /tmp/bunsui-demo-approved.json
rerun=$(field result.steps.1.result.session_id < /tmp/bunsui-demo-approved.json)
bunsui --format table session watch "$rerun" > /dev/null
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "demo: expected the rerun $rerun to complete, exit code $rc" >&2
  exit 1
fi
bunsui --format table job list --session-id "$rerun" || exit 1

say "What bunsui learned (the next analysis of this error is more confident)"
bunsui --format table error resolutions --fingerprint "$(field errors.0.fingerprint < /tmp/bunsui-demo-analysis.json)" || exit 1

say "The audit log: every call, its actor, result and rule, hash-chained"
bunsui --format json audit list --limit 1000 > /tmp/bunsui-demo-audit.json || exit 1
python3 - /tmp/bunsui-demo-audit.json <<'PY'
import json, sys
for e in json.load(open(sys.argv[1]))["entries"][-8:]:
    approver = e["approval"]["approved_by"]
    who = e["actor"] + (f" (approved by {approver})" if approver else "")
    print(f"{e['seq']:>4} {e['action']:<20} {e['result']:<17} {who}")
PY
bunsui --format table audit verify || exit 1

say "Demo finished: the ETL failure was analyzed, recovered after a human's approval and learned from; state is in $BUNSUI_HOME"
