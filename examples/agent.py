"""A scripted agent: what an LLM client does with bunsui's MCP tools, as plain code.

It connects to the real `bunsui-mcp` over stdio (as actor `ai-agent`), finds the failed
session of a pipeline, analyzes it, picks the best executable recovery plan, dry-runs it,
requests it (getting a ticket, because the policy wants a human), waits for a human to
approve, then follows the rerun to its end. When no plan is executable (bad data: a person
must fix it), it escalates instead, with the evidence and the command to rerun after the
fix. Every line it prints is labelled `[agent]`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Any

import anyio
from mcp import Client, StdioServerParameters


def say(text: str) -> None:
    print(f"[agent] {text}", flush=True)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        raise SystemExit(f"[agent] {tool} failed: {result.structured_content}")
    return result.structured_content


async def read(client: Client, uri: str) -> dict[str, Any]:
    return json.loads((await client.read_resource(uri)).contents[0].text)


async def main(pipeline_id: str) -> int:
    # The SDK passes only a minimal environment to servers: hand on BUNSUI_HOME and friends.
    server = StdioServerParameters(
        command=shutil.which("bunsui-mcp") or "bunsui-mcp", args=[], env=dict(os.environ)
    )
    async with Client(server) as client:
        say(f"connected to bunsui-mcp (protocol {client.protocol_version})")
        tools = [t.name for t in (await client.list_tools()).tools]
        say(f"{len(tools)} tools; approval_approve offered to me: {'approval_approve' in tools}")

        failed = await call(
            client, "session_list", filter={"status": "failed", "pipeline_id": pipeline_id}
        )
        session = failed["sessions"][0]
        say(f"failed session {session['session_id']}: jobs {session['failed_jobs']}")

        analysis = await call(client, "error_analyze", session_id=session["session_id"])
        for error in analysis["errors"]:
            top = error["recovery_suggestions"][0]
            basis = top["basis"]
            # The argv and the rows' SQL are long; what an operator reads first is the rest.
            facts = {
                k: v
                for k, v in error["context"].items()
                if k not in {"command", "failing_rows_query"}
            }
            say(
                f"{error['job_id']} failed with {error['error_code']} ({error['category']}); "
                f"context {facts}"
            )
            say(
                f"best suggestion: {top['action']} at {top['confidence']:.2f} "
                f"(prior {basis['prior']}, observed {basis['successes']} ok / "
                f"{basis['failures']} failed)"
            )

        plans = await call(client, "recovery_suggest", session_id=session["session_id"])
        executable = [p for p in plans["recovery_plans"] if p["executable"]]
        if not executable:
            return await escalate(client, session, analysis, plans["recovery_plans"][0])
        plan = executable[0]
        say(f"chosen plan {plan['plan_id']}: {plan['description']}")
        for risk in plan["risks"]:
            say(f"  risk: {risk}")
        preview = await call(client, "recovery_execute", plan_id=plan["plan_id"], dry_run=True)
        for step in preview["steps"]:
            say(f"  dry run step {step['step']}: {step['command']}")

        ticket = await call(client, "recovery_execute", plan_id=plan["plan_id"], dry_run=False)
        if ticket.get("status") != "pending_approval":
            raise SystemExit("[agent] expected a ticket: the policy requires approval")
        say(f"needs a human: ticket {ticket['ticket_id']} ({ticket['rule']})")
        say(f"the ticket shows them what will run: {ticket['preview']['summary']}")
        say(f"asking a human to run: {ticket['approve_command']}")

        while (current := await read(client, ticket["resource_uri"]))["status"] in {
            "pending",
            "approved",
            "executing",
        }:
            await anyio.sleep(0.3)
        say(f"ticket {current['status']} (decided by {current['decided_by']})")
        if current["status"] != "executed":
            return 1
        rerun_id = current["result"]["steps"][-1]["result"]["session_id"]
        while (rerun := await read(client, f"bunsui://sessions/{rerun_id}"))["status"] not in {
            "completed",
            "failed",
            "cancelled",
            "timeout",
        }:
            await anyio.sleep(0.3)
        jobs = ", ".join(f"{j['job_id']} {j['status']}" for j in rerun["jobs"])
        say(f"rerun {rerun_id} {rerun['status']}: {jobs}")
        return 0 if rerun["status"] == "completed" else 1


def plain_text(value: Any) -> Any:
    """The text of every untrusted label inside a value (a failing row's cells included), to
    show as data: never acted on."""
    if isinstance(value, dict) and "trust" in value and "text" in value:
        return value["text"]
    if isinstance(value, dict):
        return {k: plain_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_text(v) for v in value]
    return value


async def escalate(
    client: Client, session: dict[str, Any], analysis: dict[str, Any], plan: dict[str, Any]
) -> int:
    """Not recoverable by bunsui (the flowchart's DATA branch): say what a person must fix,
    with the evidence, and the command that reruns once they have."""
    for error in analysis["errors"]:
        # Text values from the pipeline arrive labelled untrusted: show the text, data only.
        ctx = plain_text(error["context"])
        if "dbt_test" in ctx:
            say(
                f"dbt test {ctx['dbt_test']} failed on model {ctx['model']}: "
                f"{ctx['failures']} row(s) with {ctx.get('column', '?')} missing"
            )
            say(f"the query for the rows: {' '.join(ctx['failing_rows_query'].split())}")
            for row in ctx.get("failing_rows", []):
                say(f"  failing row: {row}")
    job_id = plan["job_id"]
    job = await read(client, f"bunsui://sessions/{session['session_id']}/jobs/{job_id}")
    nodes = job["operations"][0]["attempts"][-1]["nodes"]
    counts: dict[str, int] = {}
    for node in nodes:
        counts[node["status"]] = counts.get(node["status"], 0) + 1
    say(f"{job_id}'s dbt nodes: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    say(f"no automatic fix applies ({plan['error_code']}): {plan['description']}")
    for step in plan["steps"]:
        who = "a person, after the fix" if step["requires_human"] else "anyone"
        say(f"  step {step['step']} ({who}): {step['command']}")
    reason = (
        f"{plan['error_code']}: {plan['description']}; rerun after the fix: "
        + (plan["steps"][-1]["command"])
    )
    escalation = await call(
        client, "session_escalate", session_id=session["session_id"], reason=reason
    )
    say(
        "escalated to a human: the data must be fixed before anything is rerun "
        f"(agents are held off until a person acts; escalated by {escalation['escalated_by']})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "nightly-orders-etl"))
