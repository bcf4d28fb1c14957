#!/usr/bin/env bash
# The demo `make demo` runs: three real pipelines fail on the local engine, for three
# different reasons, and we inspect them the way an operator (or an agent) would.
set -uo pipefail
cd "$(dirname "$0")"
# Scratch files of this run only: demos running side by side must not read each other's.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

expect_failure() {
  # `pipeline run --wait` exits 10 when the session failed: that is what the demo expects.
  local file=$1
  bunsui --format json pipeline run "$file" --wait > "$scratch/run.json"
  local rc=$?
  if [ "$rc" -ne 10 ]; then
    echo "demo: expected $file to fail with exit code 10, got $rc" >&2
    cat "$scratch/run.json" >&2
    exit 1
  fi
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s["session_id"], s["status"], (s["error_summary"] or {}).get("text"))' "$scratch/run.json"
}

say "Validate the example pipelines"
for file in nightly_etl/pipeline.yaml flaky_api/pipeline.yaml data_quality/pipeline.yaml; do
  bunsui --format json pipeline validate "$file" > "$scratch/valid.json" || exit 1
  python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(sys.argv[2], "valid:", v["valid"], "jobs:", " -> ".join(v["job_order"]))' "$scratch/valid.json" "$file"
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
bunsui --format json approval show "$ticket" > "$scratch/ticket.json" || exit 1
python3 - "$scratch/ticket.json" <<'PY'
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
bunsui --format json approval approve "$ticket" --reason "memory raise reviewed" > "$scratch/approved.json" || exit 1
python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); print("[human]  ", t["ticket_id"], t["status"], "approved by", t["decided_by"])' "$scratch/approved.json"
if ! wait "$agent"; then
  echo "demo: the agent did not see its rerun complete" >&2
  exit 1
fi
rerun=$(field result.steps.1.result.session_id < "$scratch/approved.json")

say "The rerun $rerun: extract was skipped (its output reused), transform and load ran"
bunsui --format table job list --session-id "$rerun" || exit 1

say "What bunsui learned (the next analysis of this error is more confident)"
bunsui --format table error resolutions --error-code LOCAL_MEMORY_LIMIT || exit 1

say "The audit log (every call is there; shown: decisions and approved work), hash-chained"
bunsui --format json audit list --limit 1000 > "$scratch/audit.json" || exit 1
python3 - "$scratch/audit.json" <<'PY'
import json, sys
entries = json.load(open(sys.argv[1]))["entries"]
for e in [e for e in entries if e["result"] != "allowed" or e["approval"]["approved_by"]]:
    approver = e["approval"]["approved_by"]
    who = e["actor"] + (f" (approved by {approver})" if approver else "")
    print(f"{e['seq']:>4} {e['action']:<20} {e['result']:<17} {who}")
PY
bunsui --format table audit verify || exit 1

say "Act two: a dbt project on DuckDB (examples/dbt_project: bunsui.yaml + jobs/*.yaml)"
project="$BUNSUI_HOME/dbt_project"
rm -rf "$project" && cp -r dbt_project "$project"
bunsui --format json pipeline validate "$project" > "$scratch/valid.json" || exit 1
python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("shop-orders valid:", v["valid"], "jobs:", " -> ".join(v["job_order"]))' "$scratch/valid.json"

say "A new orders file arrives (order 1006 has no customer_id) and the project runs: dbt build on DuckDB"
cp "$project/data/arrivals/orders_2026-11-29.csv" "$project/data/orders.csv"
expect_failure "$project"
shop=$(field session_id < "$scratch/run.json")

say "The dbt nodes of $shop (every node of run_results.json, recorded by bunsui)"
bunsui --format json job describe transform --session-id "$shop" > "$scratch/job.json" || exit 1
python3 - "$scratch/job.json" <<'PY'
import json, sys
attempt = json.load(open(sys.argv[1]))["operations"][0]["attempts"][-1]
for n in attempt["nodes"]:
    rows = f" ({n['failures']} failing row)" if n["failures"] else ""
    print(f"  {n['resource_type']:<6} {n['unique_id'].split('.')[2]:<40} {n['status']}{rows}")
PY

say "The agent triages it through MCP"
if ! python3 agent.py shop-orders; then
  echo "demo: the agent did not triage the dbt failure" >&2
  exit 1
fi

say "[human] looks at the rows the agent pointed to, and fixes the file"
bunsui --format json error analyze --session-id "$shop" > "$scratch/analysis.json" || exit 1
python3 - "$scratch/analysis.json" "$project" <<'PY'
import json, sys
import duckdb
context = json.load(open(sys.argv[1]))["errors"][0]["context"]
query = context["failing_rows_query"]
query = query["text"] if isinstance(query, dict) else query
with duckdb.connect(f"{sys.argv[2]}/.bunsui/warehouse.duckdb", read_only=True) as con:
    con.execute(f"set file_search_path = '{sys.argv[2]}/dbt'")
    for row in con.execute(query).fetchall():
        print("[human]   failing row:", ", ".join(str(value) for value in row))
PY
sed -i 's/^1006,,/1006,c-099,/' "$project/data/orders.csv"
echo "[human] order 1006 now belongs to customer c-099 (confirmed with the shop)"

say "[human] runs the rerun step of the agent's plan: dbt retries only what failed or was skipped"
rerun_cmd=$(bunsui --format json recovery suggest --session-id "$shop" | python3 -c 'import json,sys; p=json.load(sys.stdin)["recovery_plans"][0]; print(p["steps"][-1]["command"])')
echo "[human] $rerun_cmd --wait"
read -ra rerun_argv <<< "$rerun_cmd"
"${rerun_argv[@]:0:1}" --format json "${rerun_argv[@]:1}" --wait > "$scratch/dbt-rerun.json" || { cat "$scratch/dbt-rerun.json" >&2; exit 1; }
python3 - "$scratch/dbt-rerun.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
split = r["dbt_nodes"]["transform"]
name = lambda u: u.split(".")[2]
print(f"dbt nodes to run:  {', '.join(map(name, split['to_run']))}")
print(f"dbt nodes to skip: {', '.join(map(name, split['to_skip']))}")
PY
dbt_rerun=$(field session_id < "$scratch/dbt-rerun.json")
bunsui --format json session describe "$dbt_rerun" > "$scratch/dbt-session.json" || exit 1
bunsui --format json job describe transform --session-id "$dbt_rerun" > "$scratch/job.json" || exit 1
python3 - "$scratch/dbt-session.json" "$scratch/job.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
attempt = json.load(open(sys.argv[2]))["operations"][0]["attempts"][-1]
ran = json.load(open(attempt["artifacts"]["run_results"]))["results"]
print(f"rerun {s['session_id']} {s['status']}: " + ", ".join(f"{j['job_id']} {j['status']}" for j in s["jobs"]))
print(f"dbt retry ran {len(ran)} node(s), all " + "/".join(sorted({r['status'] for r in ran})) + "; stg_orders was not rebuilt")
PY

say "Demo finished: the ETL failure was recovered after a human's approval and learned from; the dbt test failure was triaged, fixed by a person and retried node by node; state is in $BUNSUI_HOME"
