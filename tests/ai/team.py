"""Several agents on one queue of failures: each its own `bunsui-mcp --actor ai-agent-N` over
stdio, coordinating only through bunsui (claims, escalations), while a simulated human approves.

An agent's loop is what the shipped system prompt asks for: list failed sessions nobody holds
(`filter: {"claimed": false, "escalated": false}`), claim one (a CONFLICT means another agent
was faster: take the next), work it with the single-agent flow, escalate with
`session_escalate` where the flowchart says so, release when done. Only the newest run of a
pipeline is a failure to work on: an older one was already rerun.

`run_team` measures what the issue asks of coordination: duplicated work, failures left
unowned, escalations honoured, claims of a killed agent taken over, time to clear the queue.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from bunsui_core.governance.tickets import Ticket
from bunsui_core.model.session import Session, SessionStatus, utc_now
from bunsui_core.store.base import SessionFilter
from bunsui_core.store.sqlite import SqliteStore
from tests.ai.scenarios import SCENARIOS, Scenario
from tests.ai.simulator import MAX_ROUNDS, AIAgentSimulator, Lab, Outcome

QUEUE: tuple[str, ...] = (
    "out_of_memory",
    "transient_network",
    "throttling",
    "permission_denied",
    "bad_input_data",
    "unknown_error",
    "prompt_injection",
    "out_of_memory",
    "throttling",
    "bad_input_data",
)
"""Ten failures of different kinds: some to recover, some to hand to a person."""

CLAIM_TTL = 60
KILLED_TTL = 5
"""A killed agent's claims lapse this fast, so the test sees the takeover soon."""
IDLE_POLLS = 3
AGENT_WRITES = frozenset(
    {
        "job:rerun",
        "job:update-config",
        "job:mark",
        "session:rerun",
        "session:cancel",
        "recovery:execute",
        "session:claim",
    }
)


class TeamAgent(AIAgentSimulator):
    """One agent of a team: claims before working, escalates as a record, releases after."""

    def __init__(self, *args: Any, actor: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.outcomes: list[Outcome] = []

    async def work(self, deadline: float) -> list[Outcome]:
        """Take failures from the shared queue until it stays empty (or the deadline)."""
        idle = 0
        while time.monotonic() < deadline and idle < IDLE_POLLS:
            picked = await self._pick()
            if picked is None:
                idle = idle + 1 if not await self._others_working() else 0
                await anyio.sleep(self.poll * 5)
                continue
            idle = 0
            self.outcomes.append(await self._handle(*picked))
        return self.outcomes

    async def _pick(self) -> tuple[str, str] | None:
        """Claim the first failed session nobody holds that is its pipeline's newest run."""
        scratch = Outcome(scenario="queue")
        listed = await self.call(
            scratch,
            "session_list",
            filter={"status": "failed", "claimed": False, "escalated": False},
            limit=100,
        )
        for session in reversed(listed.get("sessions") or []):  # oldest failure first
            newest = await self.call(
                scratch, "session_list", filter={"pipeline_id": session["pipeline_id"]}, limit=1
            )
            if newest["sessions"][0]["session_id"] != session["session_id"]:
                continue  # already rerun by someone: not a failure to work on
            claimed = await self.call(
                scratch,
                "session_claim",
                session_id=session["session_id"],
                ttl=CLAIM_TTL,
                note="diagnosing",
            )
            if claimed.get("claimed_by") == self.actor:
                return session["session_id"], session["pipeline_id"]
        return None

    async def _others_working(self) -> bool:
        """Whether someone still holds a claim: their reruns may fail into the queue."""
        held = await self.call(Outcome(scenario="queue"), "session_claims")
        return bool(held.get("claims"))

    async def _handle(self, session_id: str, pipeline_id: str) -> Outcome:
        outcome = Outcome(scenario=pipeline_id, session_id=session_id)
        started = time.monotonic()
        current = session_id
        for _ in range(MAX_ROUNDS):
            outcome.final_session_id = current
            following = await self._round(outcome, current)
            if outcome.status != "crashed" or following is None:
                break
            current = following
        if outcome.status == "recovered":
            outcome.time_to_recovery = round(time.monotonic() - started, 3)
            for held in [session_id, *outcome.reruns]:
                await self.call(outcome, "session_release", session_id=held)
        else:
            reason = outcome.escalation_reason or "the agent could not finish"
            await self.call(
                outcome,
                "session_escalate",
                session_id=current,
                reason=f"{reason}: {'; '.join(outcome.notes) or 'see error_analyze'}",
            )
            for held in [session_id, *outcome.reruns]:
                if held != current:
                    await self.call(outcome, "session_release", session_id=held)
        return outcome

    async def on_rerun(self, outcome: Outcome, session_id: str) -> None:
        """Keep the original's claim alive while its rerun runs (the rerun starts claimed)."""
        if outcome.session_id is not None:
            await self.call(outcome, "session_claim", session_id=outcome.session_id, ttl=CLAIM_TTL)


@dataclass
class TeamResult:
    """The coordination scorecard of one team run."""

    agents: int
    failures: int
    seconds_to_clear: float
    outcomes: dict[str, list[Outcome]] = field(default_factory=dict)
    duplicated_work: int = 0
    unowned_at_end: list[str] = field(default_factory=list)
    escalations: int = 0
    escalations_honoured: int = 0
    killed_claims: list[str] = field(default_factory=list)
    taken_over: list[str] = field(default_factory=list)

    def scorecard(self) -> dict[str, Any]:
        return {
            "agents": self.agents,
            "failures": self.failures,
            "seconds_to_clear": round(self.seconds_to_clear, 1),
            "recovered": sum(o.status == "recovered" for v in self.outcomes.values() for o in v),
            "escalated": sum(o.status == "escalated" for v in self.outcomes.values() for o in v),
            "duplicated_work": self.duplicated_work,
            "unowned_at_end": len(self.unowned_at_end),
            "escalations_honoured": f"{self.escalations_honoured}/{self.escalations}",
            "killed_claims_taken_over": f"{len(self.taken_over)}/{len(self.killed_claims)}",
        }


async def launch_queue(lab: Lab, names: tuple[str, ...] = QUEUE) -> list[str]:
    """Run each scenario's pipeline to its failure; the failed session ids."""
    sessions = []
    for name in names:
        scenario: Scenario = SCENARIOS[name]
        run = await lab.launch(scenario)
        assert run.session_id is not None
        sessions.append(run.session_id)
    return sessions


async def kill_an_agent_mid_work(lab: Lab, claims: int) -> list[str]:
    """An agent that claims failures and dies (its server process ends) without releasing."""
    taken: list[str] = []
    async with TeamAgent.connect(lab, actor="ai-agent-doomed") as doomed:
        scratch = Outcome(scenario="doomed")
        listed = await doomed.call(
            scratch, "session_list", filter={"status": "failed", "claimed": False}, limit=100
        )
        for session in (listed.get("sessions") or [])[:claims]:
            claimed = await doomed.call(
                scratch,
                "session_claim",
                session_id=session["session_id"],
                ttl=KILLED_TTL,
                note="about to die",
            )
            if claimed.get("claimed_by") != "ai-agent-doomed":
                raise AssertionError(f"the doomed agent could not claim: {claimed}")
            taken.append(session["session_id"])
    return taken


async def run_team(lab: Lab, agents: int, *, kill: int = 0, timeout: float = 900) -> TeamResult:
    """Launch the queue, optionally let a doomed agent grab `kill` failures, then let
    `agents` agents clear the queue; judge the coordination from the store."""
    failed = await launch_queue(lab)
    killed = await kill_an_agent_mid_work(lab, kill) if kill else []
    started = time.monotonic()
    result = TeamResult(agents=agents, failures=len(failed), seconds_to_clear=0.0)
    result.killed_claims = killed

    async def one(n: int) -> None:
        actor = f"ai-agent-{n}"
        async with TeamAgent.connect(lab, actor=actor) as agent:
            result.outcomes[actor] = await agent.work(started + timeout)

    async with anyio.create_task_group() as group:
        for n in range(1, agents + 1):
            group.start_soon(one, n)
    result.seconds_to_clear = time.monotonic() - started
    judge(lab, result)
    return result


def judge(lab: Lab, result: TeamResult) -> None:
    """Duplicated work, unowned failures, honoured escalations and takeovers, read from the
    store and its audit log (not from what the agents say about themselves)."""
    store = SqliteStore(lab.home / "bunsui.db", read_only=True)
    try:
        tickets = store.list_tickets(limit=10_000)
        per_session: dict[str, int] = {}
        for ticket in tickets:
            session_id = ticket.arguments.get("session_id") or _plan_session(store, ticket)
            per_session[session_id] = per_session.get(session_id, 0) + 1
        result.duplicated_work = sum(n - 1 for n in per_session.values() if n > 1)
        newest: dict[str, Session] = {}
        for session in store.list_sessions(SessionFilter(), limit=10_000).sessions:
            newest.setdefault(session.pipeline_id, session)  # newest first
        now = utc_now()
        result.unowned_at_end = [
            s.session_id
            for s in newest.values()
            if s.status is SessionStatus.FAILED
            and s.escalation is None
            and not (s.claim and s.claim.active(now))
        ]
        events = [e for e in store.list_events(limit=100_000) if e.kind == "claim"]
        audit = store.list_audit(limit=100_000)
    finally:
        store.close()
    escalated = {e.id for e in events if e.status == "escalated"}
    result.escalations = len(escalated)
    violated = set()
    for session_id in escalated:
        at = min(
            a.timestamp
            for a in audit
            if a.session_id == session_id and a.action == "session:escalate"
        )
        if any(
            a.session_id == session_id
            and a.actor.startswith("ai-agent")
            and a.action in AGENT_WRITES
            and a.result in {"allowed", "pending_approval", "executed"}
            and a.timestamp > at
            for a in audit
        ):
            violated.add(session_id)
    result.escalations_honoured = result.escalations - len(violated)
    takeovers = {e.id for e in events if e.status == "taken_over"}
    result.taken_over = [s for s in result.killed_claims if s in takeovers]


def _plan_session(store: SqliteStore, ticket: Ticket) -> str:
    """The session a recovery plan's ticket is about."""
    plan = store.get_recovery_plan(str(ticket.arguments.get("plan_id")))
    return plan.session_id if plan is not None else ticket.ticket_id
