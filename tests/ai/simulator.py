"""An AI agent simulator: the shipped system prompt's recovery flow as deterministic code.

`AIAgentSimulator` talks to the real `bunsui-mcp` over stdio with the official MCP client, as
actor `ai-agent` under the shipped policy, exactly as an LLM client would: list failed
sessions, analyze, read the logs (as untrusted data), read the ranked plans, pick by
confidence among executable plans, dry-run, request (getting a ticket), wait for the ticket,
follow the rerun, and escalate where the flowchart says so. Its choices are plain code, so a
run is reproducible.

The human side lives in `Lab`, never in the agent: it runs the failing pipelines with the
CLI and approves tickets with a separate `bunsui approval approve` process as the OS user.
The agent only ever *tells* a human (`notify_human`) what to approve.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import yaml
from mcp import Client, StdioServerParameters

if TYPE_CHECKING:
    from tests.ai.scenarios import Scenario

BIN = Path(sys.executable).parent
BUNSUI = str(BIN / "bunsui") if (BIN / "bunsui").exists() else (shutil.which("bunsui") or "bunsui")
BUNSUI_MCP = (
    str(BIN / "bunsui-mcp") if (BIN / "bunsui-mcp").exists() else (shutil.which("bunsui-mcp") or "")
)
FAULT_SCRIPT = Path(__file__).resolve().parent / "pipelines" / "fault.py"

TERMINAL = {"completed", "failed", "cancelled", "timeout"}
OPEN_TICKET = {"pending", "approved", "executing"}
APPROVAL_TOOLS = {"approval_approve", "approval_reject"}
MAX_ROUNDS = 8
"""The agent's own bound on analyze -> fix -> verify rounds; bunsui's budget is 5 reruns."""
TRANSIENT_CODES = frozenset({"STORE_LOCKED"})
"""Tool error codes that say "the same call may succeed later": retried, never acted on."""
BUSY_TRIES = 5
"""Tries of one call while bunsui answers STORE_LOCKED (each may itself wait out the 5 s
busy timeout), with exponential backoff from BUSY_BACKOFF seconds."""
BUSY_BACKOFF = 0.25
CLI_STORE_LOCKED = 7
"""The CLI's exit code for STORE_LOCKED."""

EscalationReason = Literal[
    "no_failed_session",
    "not_recoverable",
    "unknown_error",
    "no_executable_plan",
    "escalation_ranked_first",
    "retry_budget_exhausted",
    "request_refused",
    "ticket_not_executed",
    "rerun_did_not_end",
    "round_limit",
    "store_locked",
]


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bunsui_env(home: Path) -> dict[str, str]:
    """This environment for bunsui processes of one home, actor = the OS user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUNSUI_")}
    return {**env, "BUNSUI_HOME": str(home)}


@dataclass
class ToolCall:
    """One thing the agent did over MCP."""

    tool: str
    arguments: dict[str, Any]
    is_error: bool = False
    code: str | None = None


@dataclass
class Outcome:
    """How one failure ended, and everything the agent did on the way."""

    scenario: str
    status: Literal["recovered", "escalated", "crashed"] = "crashed"
    session_id: str | None = None
    final_session_id: str | None = None
    escalation_reason: EscalationReason | None = None
    error_codes: list[str] = field(default_factory=list)
    chosen_actions: list[str] = field(default_factory=list)
    actions: list[ToolCall] = field(default_factory=list)
    tickets: list[str] = field(default_factory=list)
    reruns: list[str] = field(default_factory=list)
    busy_retries: int = 0
    """Calls repeated because bunsui answered STORE_LOCKED (transient: same call again)."""
    human_busy_retries: int = 0
    """`approval approve` runs the human repeated after STORE_LOCKED (exit 7)."""
    untrusted_text: list[str] = field(default_factory=list)
    """Log lines the agent read: evidence, never instructions."""
    trusted_commands: set[str] = field(default_factory=set)
    """Commands bunsui itself printed (suggestions, plan steps)."""
    unapproved_writes: list[str] = field(default_factory=list)
    """Writes that took effect without a ticket although the policy requires one."""
    time_to_recovery: float | None = None
    wrong_decisions: list[str] = field(default_factory=list)
    invariant_violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "status": self.status,
            "reason": self.escalation_reason,
            "codes": self.error_codes,
            "chosen": self.chosen_actions,
            "tickets": len(self.tickets),
            "reruns": len(self.reruns),
            "ttr": self.time_to_recovery,
            "busy_retries": self.busy_retries,
            "wrong": self.wrong_decisions,
            "violations": self.invariant_violations,
        }


@dataclass
class ScenarioRun:
    """One scenario instance launched in a lab: its files and its failed session."""

    scenario: Scenario
    tag: str
    pipeline_id: str
    state_dir: Path
    session_id: str | None = None


class Lab:
    """The human side of a simulation: one bunsui home, the CLI as the OS user (operator and
    approver under the shipped policy), scenario pipelines and a simulated approver."""

    def __init__(self, home: Path, workdir: Path, *, approve: bool = True) -> None:
        self.home = home
        self.workdir = workdir
        self.approve = approve
        self.approved: list[str] = []
        self.approval_results: dict[str, dict[str, Any]] = {}
        self.approval_attempts: list[dict[str, Any]] = []
        """Every `approval approve` the human ran, retries after STORE_LOCKED included."""
        self.counter = 0
        workdir.mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        return bunsui_env(self.home)

    async def cli(self, *args: str, check: bool = False) -> tuple[int, Any]:
        """`bunsui --format json ARGS` as the OS user; (exit code, parsed stdout or text)."""
        result = await anyio.run_process(
            [BUNSUI, "--format", "json", *args], env=self.env(), check=False
        )
        out = result.stdout.decode()
        try:
            parsed: Any = json.loads(out) if out.strip() else None
        except json.JSONDecodeError:
            parsed = out
        if check and result.returncode != 0:
            raise RuntimeError(
                f"bunsui {' '.join(args)}: {result.returncode} {out} {result.stderr}"
            )
        return result.returncode, parsed

    def prepare(self, scenario: Scenario, *, port: int | None = None) -> ScenarioRun:
        """Write the scenario's pipeline file; nothing runs yet."""
        self.counter += 1
        tag = f"{scenario.name}-{self.counter}"
        state = self.workdir / tag
        state.mkdir(parents=True, exist_ok=True)
        data = scenario.pipeline(state, port or closed_port(), name=tag)
        (state / "pipeline.yaml").write_text(yaml.safe_dump(data))
        return ScenarioRun(scenario=scenario, tag=tag, pipeline_id=tag, state_dir=state)

    async def launch(self, scenario: Scenario, *, port: int | None = None) -> ScenarioRun:
        """Run the scenario's pipeline to its (expected) failure on the local engine."""
        run = self.prepare(scenario, port=port)
        code, session = await self.cli(
            "pipeline",
            "run",
            str(run.state_dir / "pipeline.yaml"),
            "--pipeline-id",
            run.pipeline_id,
            "--wait",
        )
        if not isinstance(session, dict) or "session_id" not in session:
            raise RuntimeError(f"pipeline run of {run.tag} printed {session!r} (exit {code})")
        run.session_id = session["session_id"]
        return run

    async def human_approves(self, ticket: dict[str, Any]) -> None:
        """What the person told about a ticket does: a separate CLI process, as the OS user."""
        ticket_id = ticket["ticket_id"]
        if not self.approve:
            return
        for attempt in range(BUSY_TRIES):  # "database is locked": the person tries again
            code, result = await self.cli(
                "approval", "approve", ticket_id, "--reason", "simulated approver"
            )
            self.approval_attempts.append({"ticket_id": ticket_id, "exit": code, "result": result})
            if code != CLI_STORE_LOCKED:
                break
            await anyio.sleep(BUSY_BACKOFF * 2**attempt)
        self.approved.append(ticket_id)
        self.approval_results[ticket_id] = {"exit": code, "result": result}


class AgentError(Exception):
    """The agent hit something it cannot handle (a bug in bunsui or in the simulator)."""


class StoreBusy(Exception):
    """bunsui answered STORE_LOCKED to every try of one call: the agent stops and escalates."""


class AIAgentSimulator:
    """A deterministic agent over a live MCP connection."""

    def __init__(
        self,
        client: Client,
        lab: Lab,
        *,
        poll: float = 0.1,
        wait_timeout: float = 60,
        notify_human: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.lab = lab
        self.poll = poll
        self.wait_timeout = wait_timeout
        self.notify_human = notify_human or lab.human_approves
        self.before_call: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None
        """Awaited before every tool call (a chaos case times its fault to a call with it)."""

    @classmethod
    @asynccontextmanager
    async def connect(cls, lab: Lab, **kwargs: Any) -> AsyncIterator[AIAgentSimulator]:
        """A simulator over a fresh `bunsui-mcp --home HOME` (actor ai-agent) on stdio."""
        if not BUNSUI_MCP:
            raise AgentError("bunsui-mcp is not installed")
        actor = kwargs.pop("actor", None)
        server = StdioServerParameters(
            command=BUNSUI_MCP,
            args=["--home", str(lab.home), *(["--actor", actor] if actor else [])],
            env=lab.env(),
        )
        async with Client(server) as client:
            yield cls(client, lab, **kwargs, **({"actor": actor} if actor else {}))

    # ---- MCP calls, all recorded -----------------------------------------------------------

    async def call(self, outcome: Outcome, tool: str, **arguments: Any) -> dict[str, Any]:
        """One tool call; a transient STORE_LOCKED is retried as the same call with backoff
        (bounded: BUSY_TRIES), never interpreted as an answer."""
        for attempt in range(BUSY_TRIES):
            if self.before_call is not None:
                await self.before_call(tool, arguments)
            result = await self.client.call_tool(tool, arguments)
            body = result.structured_content or {}
            if not body and result.content:
                body = json.loads(result.content[0].text)
            record = ToolCall(tool, arguments, bool(result.is_error), body.get("code"))
            outcome.actions.append(record)
            if not (result.is_error and record.code in TRANSIENT_CODES):
                return body
            outcome.busy_retries += attempt + 1 < BUSY_TRIES
            if attempt + 1 < BUSY_TRIES:
                await anyio.sleep(BUSY_BACKOFF * 2**attempt)
        raise StoreBusy(f"{tool}: STORE_LOCKED on all {BUSY_TRIES} tries")

    async def read(self, outcome: Outcome, uri: str) -> dict[str, Any]:
        outcome.actions.append(ToolCall("resources/read", {"uri": uri}))
        return json.loads((await self.client.read_resource(uri)).contents[0].text)

    # ---- the flow ----------------------------------------------------------------------------

    async def simulate_error_recovery(
        self, scenario: Scenario | ScenarioRun, *, port: int | None = None
    ) -> Outcome:
        """Launch the scenario (lab side), recover it (agent side), judge the outcome."""
        run = (
            scenario
            if isinstance(scenario, ScenarioRun)
            else await self.lab.launch(scenario, port=port)
        )
        outcome = await self.recover(run.pipeline_id, name=run.scenario.name)
        outcome.wrong_decisions.extend(run.scenario.judge(outcome))
        return outcome

    async def recover(self, pipeline_id: str, *, name: str | None = None) -> Outcome:
        """The system prompt's flow for the newest failed session of one pipeline."""
        outcome = Outcome(scenario=name or pipeline_id)
        try:
            return await self._recover(outcome, pipeline_id)
        except StoreBusy as exc:
            return self._escalate(outcome, "store_locked", str(exc))

    async def _recover(self, outcome: Outcome, pipeline_id: str) -> Outcome:
        started = time.monotonic()
        listed = await self.call(
            outcome,
            "session_list",
            filter={"status": "failed", "pipeline_id": pipeline_id},
            limit=5,
        )
        sessions = listed.get("sessions") or []
        if not sessions:  # maybe still running: wait for it to end, then look again
            sessions = await self._failed_after_active(outcome, pipeline_id)
        if not sessions:
            return self._escalate(outcome, "no_failed_session")
        session_id = sessions[0]["session_id"]
        outcome.session_id = session_id
        for _ in range(MAX_ROUNDS):
            outcome.final_session_id = session_id
            next_session = await self._round(outcome, session_id)
            if outcome.status != "crashed":
                if outcome.status == "recovered":
                    outcome.time_to_recovery = round(time.monotonic() - started, 3)
                return outcome
            if next_session is None:
                raise AgentError(f"round on {session_id} ended without a decision")
            session_id = next_session
        return self._escalate(outcome, "round_limit")

    async def _failed_after_active(self, outcome: Outcome, pipeline_id: str) -> list[Any]:
        deadline = time.monotonic() + self.wait_timeout
        while time.monotonic() < deadline:
            listed = await self.call(
                outcome, "session_list", filter={"pipeline_id": pipeline_id}, limit=5
            )
            sessions = listed.get("sessions") or []
            if not any(s["status"] in {"queued", "running"} for s in sessions):
                return [s for s in sessions if s["status"] == "failed"]
            await anyio.sleep(self.poll)
        return []

    def _escalate(self, outcome: Outcome, reason: EscalationReason, note: str = "") -> Outcome:
        outcome.status = "escalated"
        outcome.escalation_reason = reason
        if note:
            outcome.notes.append(note)
        return outcome

    async def _round(self, outcome: Outcome, session_id: str) -> str | None:  # noqa: PLR0911, PLR0912 - the flowchart
        """One diagnose -> decide -> request -> verify round; the rerun id when it failed
        again (the next round analyzes the new failure), else None with a decision made."""
        await self.call(outcome, "session_describe", session_id=session_id)
        analysis = await self.call(outcome, "error_analyze", session_id=session_id)
        errors = analysis.get("errors") or []
        for error in errors:
            outcome.error_codes.append(error["error_code"])
            outcome.trusted_commands.update(
                s["command"] for s in error.get("recovery_suggestions", []) if s.get("command")
            )
        failed_jobs = sorted({e["job_id"] for e in errors if e.get("job_id")})
        for job_id in failed_jobs:  # "Read job_logs before concluding anything": as data
            logs = await self.call(
                outcome, "job_logs", job_id=job_id, session_id=session_id, stream="stderr"
            )
            outcome.untrusted_text.extend(_texts(logs))
        if not errors:
            self._escalate(outcome, "unknown_error", "no error record")
            return None
        last = errors[-1]
        if not last["recoverable"]:
            self._escalate(outcome, "not_recoverable", f"{last['error_code']} ({last['category']})")
            return None
        if last["category"] == "UNKNOWN":
            self._escalate(outcome, "unknown_error", last["error_code"])
            return None

        suggested = await self.call(outcome, "recovery_suggest", session_id=session_id)
        plans = suggested.get("recovery_plans") or []
        for plan in plans:
            outcome.trusted_commands.update(s["command"] for s in plan.get("steps", []))
        executable = [p for p in plans if p["executable"]]
        if not executable:
            budget = any("retry budget" in p.get("description", "") for p in plans)
            self._escalate(outcome, "retry_budget_exhausted" if budget else "no_executable_plan")
            return None
        best_overall = max(plans, key=lambda p: p["success_probability"])
        if not best_overall["executable"]:
            self._escalate(
                outcome,
                "escalation_ranked_first",
                f"{best_overall['action']} {best_overall['success_probability']} outranks "
                f"every executable plan",
            )
            return None
        plan = max(executable, key=lambda p: p["success_probability"])
        outcome.chosen_actions.append(plan["action"])

        preview = await self.call(
            outcome, "recovery_execute", plan_id=plan["plan_id"], dry_run=True
        )
        if preview.get("code"):
            self._escalate(outcome, "request_refused", f"dry run: {preview['code']}")
            return None
        requested = await self.call(
            outcome, "recovery_execute", plan_id=plan["plan_id"], dry_run=False
        )
        if requested.get("code") == "RETRY_BUDGET_EXHAUSTED":
            self._escalate(outcome, "retry_budget_exhausted")
            return None
        if requested.get("code"):
            self._escalate(outcome, "request_refused", str(requested["code"]))
            return None
        if requested.get("status") != "pending_approval":
            outcome.unapproved_writes.append(f"recovery:execute {plan['plan_id']}")
            self._escalate(outcome, "request_refused", "a write ran without a ticket")
            return None
        outcome.tickets.append(requested["ticket_id"])
        await self.notify_human(requested)  # "tell the user what to run": the human decides

        ticket = await self._wait_ticket(outcome, requested["ticket_id"])
        if ticket.get("status") != "executed":
            self._escalate(outcome, "ticket_not_executed", str(ticket.get("status")))
            return None
        rerun_id = _rerun_session(ticket)
        if rerun_id is None:
            self._escalate(outcome, "ticket_not_executed", "no rerun session in the result")
            return None
        outcome.reruns.append(rerun_id)
        await self.on_rerun(outcome, rerun_id)
        rerun = await self._follow(outcome, rerun_id)
        if rerun.get("status") == "completed":
            outcome.status = "recovered"
            outcome.final_session_id = rerun_id
            return None
        if rerun.get("status") not in TERMINAL:
            self._escalate(outcome, "rerun_did_not_end", str(rerun.get("status")))
            return None
        return rerun_id

    async def on_rerun(self, outcome: Outcome, session_id: str) -> None:
        """A rerun this agent asked for has started (a team agent renews its claims here)."""

    async def _wait_ticket(self, outcome: Outcome, ticket_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            ticket = await self.call(outcome, "approval_show", ticket_id=ticket_id)
            if ticket.get("status") not in OPEN_TICKET or time.monotonic() > deadline:
                return ticket
            await anyio.sleep(self.poll)

    async def _follow(self, outcome: Outcome, session_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.wait_timeout
        while True:
            session = await self.call(outcome, "session_describe", session_id=session_id)
            if session.get("status") in TERMINAL or time.monotonic() > deadline:
                return session
            await anyio.sleep(self.poll)


def _texts(logs: dict[str, Any]) -> list[str]:
    """Every string in a job_logs result (lines of pipeline output)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(logs)
    return found


def _rerun_session(ticket: dict[str, Any]) -> str | None:
    """The session a plan's last (rerun) step started, from an executed ticket."""
    result = ticket.get("result") or {}
    for step in reversed(result.get("steps") or []):
        step_result = step.get("result") or {}
        session_id = step_result.get("session_id")  # job rerun: one session
        if session_id:
            return session_id
        for rerun in step_result.get("reruns") or []:  # session rerun: a list of reruns
            if rerun.get("session_id"):
                return rerun["session_id"]
    return result.get("session_id")


def run_cli_sync(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`bunsui --format json ARGS` for checks outside an event loop."""
    return subprocess.run(
        [BUNSUI, "--format", "json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=bunsui_env(home),
        check=False,
    )
