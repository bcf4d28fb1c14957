"""The recovery scorecard: every library scenario and every chaos kind, R runs from a seed.

    python -m tests.ai.scorecard --seed 1 --runs 3 [--json out.json] [--only NAME ...]

Each run gets a fresh bunsui home and its own `bunsui-mcp` servers (two, for the concurrent
agents case); invariants are checked after every run. Prints one row per scenario: runs,
recovered, escalated, wrong decisions, invariant violations, median time to recovery.
Then (unless --only) the team card: one agent, then three agents (one more killed after
claiming two failures), each clearing the same ten-failure queue (tests/ai/team.py).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

from tests.ai.chaos import CHAOS_KINDS, ChaosCase, chaos_cases, check_invariants, run_case
from tests.ai.scenarios import SCENARIOS
from tests.ai.simulator import AIAgentSimulator, Lab, Outcome, ScenarioRun
from tests.ai.team import run_team

COLUMNS = ["scenario", "runs", "recovered", "escalated", "wrong", "violations", "median_ttr_s"]


def cases_for_run(seed: int, run: int, only: list[str] | None = None) -> list[ChaosCase]:
    """The library scenarios, then one random case per chaos kind, for run `run`."""
    library = [ChaosCase(name, scenario) for name, scenario in SCENARIOS.items()]
    cases = library + chaos_cases(seed * 1000 + run)
    return [c for c in cases if not only or c.kind in only]


async def one_run(seed: int, run: int, root: Path, only: list[str] | None = None) -> list[Outcome]:
    """All cases of one run in one fresh home, invariants checked at the end."""
    lab = Lab(root / f"run-{run}" / "home", root / f"run-{run}" / "work")
    cases = cases_for_run(seed, run, only)
    agents_needed = 2 if any(c.bunsui_fault == "concurrent_agents" for c in cases) else 1
    done: list[tuple[ScenarioRun, Outcome]] = []
    async with AsyncExitStack() as stack:
        agents = [
            await stack.enter_async_context(AIAgentSimulator.connect(lab))
            for _ in range(agents_needed)
        ]
        for case in cases:
            try:
                scenario_run, outcome = await run_case(agents, lab, case)
            except Exception as exc:  # a crash is a result too: record it, keep going
                outcome = Outcome(scenario=case.kind, status="crashed")
                outcome.notes.append(f"{type(exc).__name__}: {exc}")
                outcome.wrong_decisions.append(f"crashed: {exc}")
                continue
            done.append((scenario_run, outcome))
    await anyio.to_thread.run_sync(check_invariants, lab, done)
    return [outcome for _, outcome in done]


def tabulate(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for outcome in outcomes:
        row = rows.setdefault(
            outcome.scenario,
            {"runs": 0, "recovered": 0, "escalated": 0, "wrong": 0, "violations": 0, "_ttr": []},
        )
        row["runs"] += 1
        row["recovered"] += outcome.status == "recovered"
        row["escalated"] += outcome.status == "escalated"
        row["wrong"] += len(outcome.wrong_decisions)
        row["violations"] += len(outcome.invariant_violations)
        if outcome.time_to_recovery is not None:
            row["_ttr"].append(outcome.time_to_recovery)
    for row in rows.values():
        times = row.pop("_ttr")
        row["median_ttr_s"] = round(statistics.median(times), 2) if times else None
    return rows


def run_scorecard(
    seed: int, runs: int, *, only: list[str] | None = None, root: Path | None = None
) -> dict[str, Any]:
    """Run everything; the scorecard as a JSON-ready dict."""
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="bunsui-chaos-") as tmp:
        base = root or Path(tmp)
        for run in range(runs):
            outcomes += anyio.run(one_run, seed, run, base, only)
    rows = tabulate(outcomes)
    totals = {
        key: sum(r[key] for r in rows.values())
        for key in ["runs", "recovered", "escalated", "wrong", "violations"]
    }
    return {
        "seed": seed,
        "runs": runs,
        "seconds": round(time.monotonic() - started, 1),
        "scenarios": rows,
        "totals": totals,
        "problems": [
            {
                "scenario": o.scenario,
                "wrong": o.wrong_decisions,
                "violations": o.invariant_violations,
                "notes": o.notes,
            }
            for o in outcomes
            if o.wrong_decisions or o.invariant_violations
        ],
    }


TEAM_COLUMNS = [
    "agents",
    "failures",
    "seconds_to_clear",
    "recovered",
    "escalated",
    "duplicated_work",
    "unowned_at_end",
    "escalations_honoured",
    "killed_claims_taken_over",
]


def team_card(root: Path) -> list[dict[str, Any]]:
    """The same queue cleared by one agent and by three (plus one killed mid-work)."""
    cards = []
    for agents, kill in ((1, 0), (3, 2)):
        lab = Lab(root / f"team-{agents}" / "home", root / f"team-{agents}" / "work")
        cards.append(
            anyio.run(lambda lab=lab, a=agents, k=kill: run_team(lab, a, kill=k)).scorecard()
        )
    return cards


def render_team(rows: list[dict[str, Any]]) -> str:
    cells = [TEAM_COLUMNS, *[[str(row[c]) for c in TEAM_COLUMNS] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(TEAM_COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(["bunsui team scorecard (tests/ai/team.py)", *lines])


def team_problems(rows: list[dict[str, Any]]) -> list[str]:
    """What a team run got wrong: duplicated or orphaned work, dishonoured escalations,
    killed agents' claims nobody took over."""
    problems = []
    for row in rows:
        if row["duplicated_work"] or row["unowned_at_end"]:
            problems.append(f"{row['agents']} agents: duplicated or unowned work")
        done, total = row["escalations_honoured"].split("/")
        taken, killed = row["killed_claims_taken_over"].split("/")
        if done != total or taken != killed:
            problems.append(f"{row['agents']} agents: escalation or takeover missed")
    return problems


def render(card: dict[str, Any]) -> str:
    rows = [[name, *(row[c] for c in COLUMNS[1:])] for name, row in card["scenarios"].items()]
    totals = card["totals"]
    rows.append(["TOTAL", *(totals.get(c, "") for c in COLUMNS[1:-1]), ""])
    cells = [COLUMNS, *[["-" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.insert(len(lines) - 1, "  ".join("-" * w for w in widths))
    header = (
        f"bunsui recovery scorecard: seed {card['seed']}, {card['runs']} run(s), "
        f"{card['seconds']} s"
    )
    out = [header, *lines]
    for problem in card["problems"]:
        out.append(f"! {problem['scenario']}: {problem['wrong'] + problem['violations']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.ai.scorecard", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", dest="json_path", default=None, help="Also write JSON here.")
    parser.add_argument(
        "--only", nargs="*", default=None, help=f"Scenario names: {[*SCENARIOS, *CHAOS_KINDS]}"
    )
    args = parser.parse_args(argv)
    card = run_scorecard(args.seed, args.runs, only=args.only)
    print(render(card))
    problems: list[str] = []
    if not args.only:
        with tempfile.TemporaryDirectory(prefix="bunsui-team-") as tmp:
            card["teams"] = team_card(Path(tmp))
        print(render_team(card["teams"]))
        problems = team_problems(card["teams"])
        for problem in problems:
            print(f"! {problem}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(card, indent=2) + "\n")
    clean = not card["totals"]["wrong"] and not card["totals"]["violations"] and not problems
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
