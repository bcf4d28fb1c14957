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
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["session_id"], s["status"], (s["error_summary"] or {}).get("text"))' /tmp/bunsui-demo-run.json
}

say "Validate the example pipelines"
for file in nightly_etl/pipeline.yaml flaky_api/pipeline.yaml data_quality/pipeline.yaml; do
  bunsui --format json pipeline validate "$file" > /tmp/bunsui-demo-valid.json || exit 1
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(sys.argv[2], "valid:", v["valid"], "jobs:", " -> ".join(v["job_order"]))' /tmp/bunsui-demo-valid.json "$file"
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

say "The transform's output before the kill, and its attempt (pipeline output is untrusted data)"
bunsui --format table job logs transform --session-id "$etl" --stream stdout --tail-lines 6 || exit 1
bunsui --format json job describe transform --session-id "$etl" \
  | python3 -c 'import json,sys; a=json.load(sys.stdin)["operations"][0]["attempts"][-1]; print("oom_killed:", a["oom_killed"], "signal:", a["signal"], "peak_rss_mb:", a["peak_rss_mb"], "memory_limit_mb:", a["memory_limit_mb"], "memory_enforcement:", a["memory_enforcement"])' || exit 1

field() { python3 -c 'import json,sys; d=json.load(sys.stdin); exec("for k in sys.argv[1].split(\".\"): d = d[int(k)] if k.isdigit() else d[k]"); print(d)' "$1"; }

say "An AI agent takes over through MCP: examples/agent.py drives the real bunsui-mcp over stdio"
python3 agent.py nightly-orders-etl &
agent=$!

# The human side: wait for the agent's request to show up as a pending ticket.
ticket=""
for _ in $(seq 1 300); do
  ticket=$(bunsui --format json approval list --status pending | python3 -c 'import json,sys; t=json.load(sys.stdin)["tickets"]; print(t[0]["ticket_id"] if t else "")')
  [ -n "$ticket" ] && break
  kill -0 "$agent" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$ticket" ]; then
  echo "demo: the agent did not request anything" >&2
  exit 1
fi
sleep 0.5
echo "[human] pending ticket $ticket:"
bunsui --format json approval show "$ticket" > /tmp/bunsui-demo-ticket.json || exit 1
python3 - /tmp/bunsui-demo-ticket.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
print(f"[human]   {t['action']} {t['arguments']} requested by {t['requested_by']}")
print(f"[human]   because {t['rule']}")
print(f"[human]   what will run (the ticket's bound preview, sha256 {t['preview_hash'][:12]}...):")
for step in t["preview"]["effect"]["steps"]:
    print(f"[human]     step {step['step']}: {step['result']['summary']}")
PY
echo "[human] the agent could not approve it itself:"
bunsui --actor ai-agent --format table approval approve "$ticket" 2>&1 | head -1 | sed 's/^/[human]   /'
echo "[human] $(id -un) approves: the plan runs once, as the agent's action, with the approver recorded"
bunsui --format json approval approve "$ticket" --reason "memory raise reviewed" > /tmp/bunsui-demo-approved.json || exit 1
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print("[human]  ", t["ticket_id"], t["status"], "approved by", t["decided_by"])' /tmp/bunsui-demo-approved.json
if ! wait "$agent"; then
  echo "demo: the agent did not see its rerun complete" >&2
  exit 1
fi
rerun=$(field result.steps.1.result.session_id < /tmp/bunsui-demo-approved.json)

say "The rerun $rerun: extract was skipped (its output reused), transform and load ran"
bunsui --format table job list --session-id "$rerun" || exit 1

say "What bunsui learned (the next analysis of this error is more confident)"
bunsui --format table error resolutions --error-code LOCAL_MEMORY_LIMIT || exit 1

say "The audit log (every call is there; shown: decisions and approved work), hash-chained"
bunsui --format json audit list --limit 1000 > /tmp/bunsui-demo-audit.json || exit 1
python3 - /tmp/bunsui-demo-audit.json <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))["entries"]
for e in [e for e in entries if e["result"] != "allowed" or e["approval"]["approved_by"]]:
    approver = e["approval"]["approved_by"]
    who = e["actor"] + (f" (approved by {approver})" if approver else "")
    print(f"{e['seq']:>4} {e['action']:<20} {e['result']:<17} {who}")
PY
bunsui --format table audit verify || exit 1

say "Demo finished: the ETL failure was analyzed, recovered after a human's approval and learned from; state is in $BUNSUI_HOME"
