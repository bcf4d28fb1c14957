"""Chaos: seeded random faults in operations and in bunsui itself, with invariants checked
after every run.

Operation faults (exit codes, signals, memory blow-ups, hangs past the timeout, flaky network
to a closed local port, slow steps) are scenarios with random parameters drawn from a seeded
`random.Random`. bunsui faults: the runner killed with SIGKILL mid-session, two agents
(two MCP servers) recovering the same failed session at once, and bunsui's own store busy:
another process holding `$BUNSUI_HOME/bunsui.db` locked (`BEGIN EXCLUSIVE`, 1-7 s, once or
twice; the first one taken as the agent asks for its plan's execution) while the agent
recovers, so calls wait out the 5 s busy timeout and get STORE_LOCKED.

Invariants (`check_invariants`): no session left queued/running, no succeeded job run twice
(effects.log), no ticket executed twice (audit), `audit verify` passes, every failure ended
recovered or escalated - never both, never neither.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from bunsui_core.store.sqlite import SqliteStore
from tests.ai.scenarios import FAULTY_JOB, TRANSIENT, Scenario, general_judgement
from tests.ai.simulator import (
    CLI_STORE_LOCKED,
    AIAgentSimulator,
    Lab,
    Outcome,
    ScenarioRun,
    run_cli_sync,
)

BunsuiFault = Literal["runner_killed", "concurrent_agents", "store_locked"] | None


@dataclass(frozen=True)
class ChaosCase:
    """One random fault: the scenario it becomes, plus an optional fault in bunsui."""

    kind: str
    scenario: Scenario
    bunsui_fault: BunsuiFault = None
    locks: tuple[tuple[float, float], ...] = ()
    """store_locked: (delay, seconds held). The first lock is taken when the agent asks to
    execute its plan (its first write), and the request goes `delay` seconds into the lock,
    however fast the calls before it were; each later lock is taken `delay` seconds after
    the one before ended."""

    def describe(self) -> str:
        text = f"{self.kind}: {self.scenario.fault} {self.scenario.params} {self.scenario.config}"
        return f"{text} locks={list(self.locks)}" if self.locks else text


def _slow(rng: random.Random) -> float:
    """A slow upstream step half of the time."""
    return round(rng.uniform(0.2, 0.6), 2) if rng.random() < 0.5 else 0.0


def chaos_case(kind: str, rng: random.Random) -> ChaosCase:
    """A random instance of one kind of fault."""
    slow = _slow(rng)
    if kind == "exit_code":
        code = rng.choice([1, 2, 3, 42, 99])
        scenario = Scenario(
            kind,
            "exit",
            "escalated",
            params={"exit_code": code, "fail_times": -1},
            escalation_reasons=frozenset({"escalation_ranked_first", "unknown_error"}),
            reruns=0,
            upstream_sleep=slow,
        )
    elif kind == "signal":
        sig = rng.choice([signal.SIGKILL, signal.SIGTERM, signal.SIGSEGV])
        scenario = Scenario(
            kind,
            "signal",
            "recovered",
            frozenset({"increase_memory", "retry"}),
            params={"signal": int(sig), "fail_times": 1},
            reruns=1,
            upstream_sleep=slow,
        )
    elif kind == "memory_blowup":
        batch = rng.choice([80, 96, 128, 160])
        scenario = Scenario(
            kind,
            "oom",
            "recovered",
            frozenset({"increase_memory"}),
            params={"batch_size": batch, "memory": 64},
            # An OOM kill does not say how much was wanted: plans at least double the limit
            # and double again on a second OOM, so every batch here recovers within two.
            max_reruns=2,
            upstream_sleep=slow,
        )
    elif kind == "hang":
        scenario = Scenario(
            kind,
            "hang",
            "recovered",
            frozenset({"increase_timeout"}),
            params={"sleep": round(rng.uniform(1.2, 2.0), 2)},
            config={"timeout_seconds": 1},
            reruns=1,
            upstream_sleep=slow,
        )
    elif kind == "flaky_network":
        times = rng.choice([1, 1, 2])
        scenario = Scenario(
            kind,
            "network",
            "recovered",
            TRANSIENT,
            params={"fail_times": times},
            reruns=times,
            upstream_sleep=slow,
        )
    elif kind == "throttled":
        times = rng.choice([1, 2])
        scenario = Scenario(
            kind,
            "throttle",
            "recovered",
            TRANSIENT,
            params={"fail_times": times},
            reruns=times,
            upstream_sleep=slow,
        )
    elif kind == "slow_step":  # slow but within its timeout, then a flaky network once
        scenario = Scenario(
            kind,
            "network",
            "recovered",
            TRANSIENT,
            params={"fail_times": 1},
            reruns=1,
            upstream_sleep=round(rng.uniform(0.5, 1.0), 2),
        )
    elif kind == "runner_killed":
        scenario = Scenario(
            kind,
            "slow",
            "recovered",
            TRANSIENT,
            params={"sleep": round(rng.uniform(1.0, 1.5), 2)},
            reruns=1,
        )
        return ChaosCase(kind, scenario, "runner_killed")
    elif kind == "concurrent_agents":
        scenario = Scenario(
            kind,
            "network",
            "recovered",
            TRANSIENT,
            params={"fail_times": 1},
            reruns=1,
            upstream_sleep=slow,
        )
        return ChaosCase(kind, scenario, "concurrent_agents")
    elif kind == "store_locked":  # a flaky network once, recovered under a busy store
        scenario = Scenario(
            kind,
            "network",
            "recovered",
            TRANSIENT,
            params={"fail_times": 1},
            reruns=1,
        )
        # once, or twice 40% of the time; the longest hold first, while the agent is at work
        drawn = [
            (round(rng.uniform(0.0, 0.6), 2), round(rng.uniform(1.0, 7.0), 2))
            for _ in range(1 + (rng.random() < 0.4))
        ]
        locks = tuple(sorted(drawn, key=lambda lock: -lock[1]))
        return ChaosCase(kind, scenario, "store_locked", locks)
    else:
        raise ValueError(f"unknown chaos kind {kind!r}")
    return ChaosCase(kind, scenario)


OPERATION_KINDS = [
    "exit_code",
    "signal",
    "memory_blowup",
    "hang",
    "flaky_network",
    "throttled",
    "slow_step",
]
BUNSUI_KINDS = ["runner_killed", "concurrent_agents", "store_locked"]
CHAOS_KINDS = OPERATION_KINDS + BUNSUI_KINDS


def chaos_cases(seed: int, kinds: list[str] | None = None) -> list[ChaosCase]:
    """One random case per kind, the same for the same seed."""
    rng = random.Random(seed)
    return [chaos_case(kind, rng) for kind in (kinds or CHAOS_KINDS)]


# ---- running the bunsui faults ------------------------------------------------------------


async def kill_runner_mid_session(lab: Lab, scenario: Scenario, timeout: float = 20) -> ScenarioRun:
    """Start the pipeline detached, wait until `step` runs, SIGKILL the session's runner."""
    run = lab.prepare(scenario)
    _, session = await lab.cli(
        "pipeline", "run", str(run.state_dir / "pipeline.yaml"), "--pipeline-id", run.pipeline_id
    )
    run.session_id = session["session_id"]
    started = run.state_dir / f"{FAULTY_JOB}.attempts"
    deadline = time.monotonic() + timeout
    while not started.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{FAULTY_JOB} of {run.tag} never started")
        await anyio.sleep(0.05)
    store = SqliteStore(lab.home / "bunsui.db")
    try:
        current = store.get_session(run.session_id)
    finally:
        store.close()
    if current is None or current.runner is None:
        raise RuntimeError(f"session {run.session_id} has no runner to kill")
    os.kill(current.runner.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _alive(current.runner.pid) and time.monotonic() < deadline:
        await anyio.sleep(0.02)
    return run


def _alive(pid: int) -> bool:
    """True until the process is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


async def concurrent_recovery(
    agents: list[AIAgentSimulator], lab: Lab, scenario: Scenario
) -> tuple[ScenarioRun, list[Outcome]]:
    """Several agents recover the same failed session at once."""
    run = await lab.launch(scenario)
    outcomes: list[Outcome | None] = [None] * len(agents)

    async def one(index: int, agent: AIAgentSimulator) -> None:
        outcomes[index] = await agent.recover(run.pipeline_id, name=scenario.name)

    async with anyio.create_task_group() as tasks:
        for index, agent in enumerate(agents):
            tasks.start_soon(one, index, agent)
    return run, [o for o in outcomes if o is not None]


LOCK_HOLDER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print(time.time(), flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
print(time.time(), flush=True)
"""
"""Another process holding the store's write lock (WAL: readers still read, every write -
an audit entry of every call included - waits, then fails STORE_LOCKED)."""


async def hold_store_locks(
    lab: Lab,
    locks: tuple[tuple[float, float], ...],
    held: list,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Take and hold the lock of the lab's database per `locks` (see `ChaosCase.locks`), one
    after another; started once the first lock is held and its delay has passed. Every window
    actually held (wall-clock start, end) is appended to `held`."""
    for index, (delay, seconds) in enumerate(locks):
        if index:
            await anyio.sleep(delay)
        async with await anyio.open_process(
            [sys.executable, "-c", LOCK_HOLDER, str(lab.home / "bunsui.db"), str(seconds)]
        ) as holder:
            assert holder.stdout is not None
            lines = BufferedByteReceiveStream(holder.stdout)
            start = float(await lines.receive_until(b"\n", 100))
            if not index:
                await anyio.sleep(delay)
                task_status.started()
            end = float(await lines.receive_until(b"\n", 100))
            assert await holder.wait() == 0
        held.append((start, end))


async def busy_store_recovery(
    agent: AIAgentSimulator, lab: Lab, case: ChaosCase
) -> tuple[ScenarioRun, Outcome]:
    """Recover a failure while another process holds the store locked, once or more."""
    run = await lab.launch(case.scenario)
    held: list[tuple[float, float]] = []
    approvals_before = len(lab.approval_attempts)
    outcome: Outcome | None = None
    async with anyio.create_task_group() as tasks:

        async def lock_at_the_first_write(tool: str, arguments: dict[str, Any]) -> None:
            if tool == "recovery_execute" and not arguments.get("dry_run"):
                agent.before_call = None
                await tasks.start(hold_store_locks, lab, case.locks, held)

        agent.before_call = lock_at_the_first_write
        try:
            outcome = await agent.recover(run.pipeline_id, name=case.kind)
        finally:
            agent.before_call = None
        tasks.cancel_scope.cancel()  # the agent is done: locks not taken yet are moot
    assert outcome is not None
    outcome.human_busy_retries = sum(
        a["exit"] == CLI_STORE_LOCKED for a in lab.approval_attempts[approvals_before:]
    )
    outcome.notes.append(
        f"locks held: {[round(end - start, 2) for start, end in held]} s; after STORE_LOCKED "
        f"the agent retried {outcome.busy_retries} call(s), the human "
        f"{outcome.human_busy_retries} approval(s)"
    )
    scenario = case.scenario
    if outcome.status == "escalated" and outcome.escalation_reason == "store_locked":
        # giving up on a store that stays locked past the agent's bound is sound too
        scenario = replace(
            scenario, expected="escalated", escalation_reasons=frozenset({"store_locked"})
        )
        scenario = replace(scenario, reruns=None)
    outcome.wrong_decisions.extend(scenario.judge(outcome))
    return run, outcome


async def run_case(
    agents: list[AIAgentSimulator], lab: Lab, case: ChaosCase
) -> tuple[ScenarioRun, Outcome]:
    """Run one chaos case; the outcome of a concurrent case merges its agents' outcomes."""
    agent = agents[0]
    if case.bunsui_fault == "runner_killed":
        run = await kill_runner_mid_session(lab, case.scenario)
        outcome = await agent.recover(run.pipeline_id, name=case.kind)
        outcome.wrong_decisions.extend(case.scenario.judge(outcome))
        return run, outcome
    if case.bunsui_fault == "concurrent_agents":
        run, outcomes = await concurrent_recovery(agents, lab, case.scenario)
        return run, merge_concurrent(case, outcomes)
    if case.bunsui_fault == "store_locked":
        return await busy_store_recovery(agent, lab, case)
    run = await lab.launch(case.scenario)
    outcome = await agent.recover(run.pipeline_id, name=case.kind)
    outcome.wrong_decisions.extend(case.scenario.judge(outcome))
    return run, outcome


def merge_concurrent(case: ChaosCase, outcomes: list[Outcome]) -> Outcome:
    """Agents racing on one failure: the failure is recovered when one agent recovered it;
    every agent must still have ended (recovered or escalated) and decided soundly."""
    merged = replace(outcomes[0], scenario=case.kind)
    merged.actions = [a for o in outcomes for a in o.actions]
    merged.tickets = [t for o in outcomes for t in o.tickets]
    merged.reruns = list(dict.fromkeys(r for o in outcomes for r in o.reruns))
    merged.chosen_actions = [c for o in outcomes for c in o.chosen_actions]
    merged.wrong_decisions = []
    for index, outcome in enumerate(outcomes):
        if outcome.status not in {"recovered", "escalated"}:
            merged.wrong_decisions.append(f"agent {index} ended {outcome.status}")
        for action in outcome.chosen_actions:
            if action not in case.scenario.expected_actions:
                merged.wrong_decisions.append(f"agent {index} requested {action}")
        merged.wrong_decisions.extend(general_judgement(outcome))
    recovered = [o for o in outcomes if o.status == "recovered"]
    merged.status = "recovered" if recovered else "escalated"
    merged.escalation_reason = None if recovered else outcomes[0].escalation_reason
    times = [o.time_to_recovery for o in recovered if o.time_to_recovery is not None]
    merged.time_to_recovery = min(times) if times else None
    merged.notes = [f"agent {i}: {o.status} {o.escalation_reason}" for i, o in enumerate(outcomes)]
    if case.scenario.reruns is not None and len(merged.reruns) != case.scenario.reruns:
        merged.wrong_decisions.append(
            f"{len(merged.reruns)} distinct reruns of one failure: {merged.reruns}"
        )
    if case.scenario.expected != merged.status:
        merged.wrong_decisions.append(f"expected {case.scenario.expected}, got {merged.status}")
    return merged


# ---- invariants ----------------------------------------------------------------------------


def check_invariants(lab: Lab, runs: list[tuple[ScenarioRun, Outcome]]) -> dict[str, list[str]]:
    """Violations by scenario tag (empty lists when all hold). Also fills each outcome's
    invariant_violations."""
    listed = run_cli_sync(lab.home, "session", "list", "--limit", "1")  # reaps lost runners
    global_violations = [] if listed.returncode == 0 else [f"session list: {listed.stderr}"]
    verify = run_cli_sync(lab.home, "audit", "verify")
    if verify.returncode != 0 or '"ok": true' not in verify.stdout:
        global_violations.append(f"audit verify failed: {verify.stdout} {verify.stderr}")
    store = SqliteStore(lab.home / "bunsui.db")
    try:
        executed = Counter(
            (entry.ticket_id, entry.action)
            for entry in _all_audit(store)
            if entry.result == "executed" and entry.ticket_id
        )
        result: dict[str, list[str]] = {}
        for run, outcome in runs:
            violations = list(global_violations)
            violations += [
                f"ticket {ticket} executed {action} {n} times"
                for (ticket, action), n in executed.items()
                if ticket in outcome.tickets and n > 1
            ]
            violations += _session_violations(store, run, outcome)
            violations += _effect_violations(run)
            if outcome.status not in {"recovered", "escalated"}:
                violations.append(
                    f"failure ended neither recovered nor escalated: {outcome.status}"
                )
            outcome.invariant_violations.extend(violations)
            result[run.tag] = violations
        return result
    finally:
        store.close()


def _all_audit(store: SqliteStore) -> list[Any]:
    entries: list[Any] = []
    after = 0
    while batch := store.list_audit(after_seq=after, limit=1000):
        entries.extend(batch)
        after = batch[-1].seq
    return entries


def _session_violations(store: SqliteStore, run: ScenarioRun, outcome: Outcome) -> list[str]:
    if run.session_id is None:
        return [f"{run.tag}: no session"]
    page = store.list_sessions(_filter(run.pipeline_id), limit=1000)
    violations = []
    statuses = {s.session_id: str(s.status.value) for s in page.sessions}
    if run.session_id not in statuses:
        violations.append(f"session {run.session_id} lost")
    stuck = [sid for sid, status in statuses.items() if status in {"queued", "running"}]
    if stuck:
        violations.append(f"sessions stuck active: {stuck}")
    completed = [sid for sid, status in statuses.items() if status == "completed"]
    if outcome.status == "recovered" and not completed:
        violations.append("recovered, yet no session of the pipeline completed")
    if outcome.status == "escalated" and completed:
        violations.append(f"escalated, yet {completed} completed: both recovered and escalated")
    return violations


def _filter(pipeline_id: str) -> Any:
    from bunsui_core.store.base import SessionFilter  # noqa: PLC0415 - keeps imports light

    return SessionFilter(pipeline_id=pipeline_id)


def _effect_violations(run: ScenarioRun) -> list[str]:
    effects = run.state_dir / "effects.log"
    if not effects.exists():
        return []
    counts = Counter(line for line in effects.read_text().splitlines() if line)
    return [f"job {job} succeeded {n} times" for job, n in sorted(counts.items()) if n > 1]


def effect_counts(run: ScenarioRun) -> dict[str, int]:
    """How often each job of a run succeeded (its side effects)."""
    effects = Path(run.state_dir / "effects.log")
    if not effects.exists():
        return {}
    return dict(Counter(line for line in effects.read_text().splitlines() if line))
