"""MCP `session_list` (status=failed, limit 50) on 100k stored sessions vs a no-op tool call.

Why: an agent lists failed sessions all the time. Over MCP, that call should cost about what
any tool call costs, however many sessions are stored: the listing walks one index
(bench_session_list.py checks that at the store), so what is left is the tool-call path,
which every tool pays. Measured end to end: the real `bunsui-mcp --home H` on stdio, driven
by the official client (`mcp.Client`), both calls interleaved on one connection, once per
protocol era (`mode="auto"` negotiates 2026-07-28, `mode="legacy"` the 2025-11-25 handshake).

Baseline: bunsui has no no-op tool. `policy_check {"actor": "ai-agent", "action":
"session:list"}` is the cheapest tool that still takes the whole path (JSON-RPC over stdio,
the server's worker thread, the gateway: store open, input validation, policy decision,
handler, audit append (a write transaction), store close; JSON encoding of the result; the
client's validation of it against the tool's output schema), and its handler reads nothing
from the store: it answers from the policy already loaded. The ratio is therefore what
listing 50 of 100k sessions adds to a tool call.

Target: p50(session_list) / p50(policy_check) <= 2 in both modes (the p99 ratio is reported).
When it is missed (or with --profile) the script says where the difference goes: the
gateway in-process under cProfile; each stage in-process (gateway, result encoding, the
client's output-schema validation, also against rewritten schemas: two that accept exactly
the same documents, checked on broken copies of the result, and one looser); how many
subschema visits a validation makes; then end to end on fresh connections: CPU per call of
the client (the SDK's check timed inside the calls) and of the server (event-loop thread vs
worker threads, from /proc), and the ratio with the client's check skipped and with each
rewritten schema validated instead.

Run: .venv/bin/python tests/benchmarks/bench_mcp_session_list.py [--profile | --no-explain]
     (exit 1 when the target is missed; --no-explain: ratios only, for repeated runs)
"""

from __future__ import annotations

import cProfile
import os
import platform
import pstats
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import anyio
from bench_session_list import LIMIT, STATUS_WEIGHTS, cli_environment, populate
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from mcp import Client, ClientSession, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult
from referencing import Registry

from bunsui_core.actions import REGISTRY, Gateway
from bunsui_core.config import POLICY_ENV, READ_ONLY_ENV, Settings
from bunsui_core.store import open_store
from bunsui_mcp import tools

SIZE = 100_000
CALLS = 300
WARMUP = 30
DIAGNOSTIC_CALLS = 150
DIAGNOSTIC_WARMUP = 20
IN_PROCESS_CALLS = 200
VALIDATION_ROUNDS = 10
VALIDATION_CALLS = 20
TARGET_RATIO = 2.0
MODES = {"auto": "2026-07-28", "legacy": "2025-11-25"}
ACTOR = "ai-agent"  # bunsui-mcp's default actor; the shipped policy allows both calls

LIST = "session_list"
NOOP = "policy_check"
PING = "ping"
"""MCP's own `ping` request (2025-11-25; the 2026-07-28 protocol has none): the protocol's
round trip with no tool, gateway or store."""
TOOLS: dict[str, tuple[str, dict[str, Any]]] = {
    LIST: ("session:list", {"filter": {"status": "failed"}, "limit": LIMIT}),
    NOOP: ("policy:check", {"actor": ACTOR, "action": "session:list"}),
}
"""Tool name -> (gateway action, arguments) of the two measured calls."""


@dataclass(frozen=True)
class Run:
    """One connection's measurements."""

    label: str
    protocol: str
    ready_seconds: float
    times: dict[str, list[float]]
    client_cpu: dict[str, list[float]]
    """CPU seconds of this (the client's) process per call, all its threads."""
    reply_bytes: dict[str, int]
    server_split: dict[str, tuple[float, float]] | None = None
    """Server CPU seconds per call, per tool: (event-loop thread, other threads); blocked
    runs only."""
    blocked: bool = False

    def server_cpu(self, tool: str) -> float | None:
        return sum(self.server_split[tool]) if self.server_split else None

    def p50(self, tool: str) -> float:
        return statistics.median(self.times[tool])

    def p99(self, tool: str) -> float:
        return statistics.quantiles(self.times[tool], n=100, method="inclusive")[98]

    def ratios(self) -> tuple[float, float]:
        """p50 and p99 of session_list over those of the baseline."""
        return self.p50(LIST) / self.p50(NOOP), self.p99(LIST) / self.p99(NOOP)

    def ping_ratio(self) -> float | None:
        """p50 of session_list over that of a bare ping (interleaved runs only)."""
        return self.p50(LIST) / self.p50(PING) if self.times.get(PING) else None


def server_executable() -> str:
    """The `bunsui-mcp` script installed next to this interpreter (the venv's)."""
    beside = Path(sys.executable).parent / "bunsui-mcp"
    if not beside.exists():
        raise RuntimeError(f"{beside} not found: install bunsui into this interpreter's venv")
    return str(beside)


def server_environment(pycache: Path) -> dict[str, str]:
    """This process's environment (the SDK passes only a minimal one unless given), minus
    what would change the measured path: another policy file, or read-only mode (no audit)."""
    env = cli_environment(pycache)
    for name in (POLICY_ENV, READ_ONLY_ENV):
        env.pop(name, None)
    return env


def check_reply(tool: str, result: CallToolResult) -> None:
    """The call did what it should: a full page of failed sessions / an allow decision."""
    data = result.structured_content or {}
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {data}")
    if tool == LIST:
        sessions = data.get("sessions", [])
        if (
            len(sessions) != LIMIT
            or data.get("next_cursor") is None
            or any(s["status"] != "failed" for s in sessions)
        ):
            raise RuntimeError(f"{tool}: not a full page of failed sessions")
    elif data.get("outcome") != "allow":
        raise RuntimeError(f"{tool}: expected allow, got {data}")


def child_pids() -> set[int]:
    """Processes whose parent is this one (the stdio server, once started)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds so far of each thread of a process (clock-tick resolution)."""
    seconds = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        seconds[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf(
            "SC_CLK_TCK"
        )
    return seconds


def cpu_split(pid: int, before: dict[int, float], after: dict[int, float]) -> tuple[float, float]:
    """CPU seconds between two readings: (main thread, every other thread)."""
    delta = {tid: seconds - before.get(tid, 0.0) for tid, seconds in after.items()}
    main = delta.pop(pid, 0.0)
    return main, sum(delta.values())


async def measure(
    label: str,
    mode: str,
    params: StdioServerParameters,
    calls: int,
    warmup: int,
    *,
    blocked: bool = False,
) -> Run:
    """Start the server, list its tools, then interleave the two calls (alternating which
    goes first) on this one connection; per-call wall and client CPU seconds after the
    warm-up. Blocked: after the warm-up, all calls of one tool, then all of the other, so the
    server's CPU time can be read per tool around each block."""
    before = child_pids()
    started = time.perf_counter()
    async with Client(params, mode=mode) as client:
        ready = time.perf_counter() - started
        listed = {tool.name for tool in (await client.list_tools()).tools}
        missing = set(TOOLS) - listed
        if missing:
            raise RuntimeError(f"{ACTOR} does not see {sorted(missing)} under the policy")
        started_children = child_pids() - before
        server_pid = started_children.pop() if len(started_children) == 1 else None
        times: dict[str, list[float]] = {tool: [] for tool in (*TOOLS, PING)}
        cpu: dict[str, list[float]] = {tool: [] for tool in (*TOOLS, PING)}
        reply_bytes: dict[str, int] = {}

        try:  # the 2026-07-28 protocol has no ping: then the ratio is against policy_check only
            await client.send_ping()
            pings = not blocked
        except MCPError:
            pings = False

        async def ping(record: bool) -> None:
            c0, t0 = time.process_time(), time.perf_counter()
            await client.send_ping()
            if record:
                times[PING].append(time.perf_counter() - t0)
                cpu[PING].append(time.process_time() - c0)

        async def call(tool: str, record: bool) -> None:
            c0, t0 = time.process_time(), time.perf_counter()
            result = await client.call_tool(tool, TOOLS[tool][1])
            elapsed, used = time.perf_counter() - t0, time.process_time() - c0
            check_reply(tool, result)
            if record:
                times[tool].append(elapsed)
                cpu[tool].append(used)
            reply_bytes[tool] = len(result.model_dump_json(by_alias=True, exclude_none=True))

        for i in range(warmup + (0 if blocked else calls)):
            for tool in list(TOOLS) if i % 2 == 0 else list(reversed(TOOLS)):
                await call(tool, record=i >= warmup)
            if pings:
                await ping(record=i >= warmup)
        split: dict[str, tuple[float, float]] = {}
        for tool in TOOLS if blocked else ():
            start = thread_cpu_seconds(server_pid) if server_pid is not None else {}
            for _ in range(calls):
                await call(tool, record=True)
            if server_pid is not None:
                main, others = cpu_split(server_pid, start, thread_cpu_seconds(server_pid))
                split[tool] = (main / calls, others / calls)
        return Run(
            label, client.protocol_version, ready, times, cpu, reply_bytes, split or None, blocked
        )


def print_run(run: Run) -> bool:
    """Table of one connection; True when the p50 ratio is on target."""
    p50_ratio, p99_ratio = run.ratios()
    ok = p50_ratio <= TARGET_RATIO
    n = len(run.times[LIST])
    print(
        f"\n[{run.label}] protocol {run.protocol}, server ready in {run.ready_seconds:.2f} s, "
        f"{n} calls of each, {'in blocks' if run.blocked else 'interleaved'}"
    )
    print(
        f"  {'tool':<32}{'p50 ms':>8}{'p99 ms':>8}{'mean ms':>8}{'min ms':>8}"
        f"{'cli CPU':>8}{'srv CPU':>8}{'reply B':>8}"
    )
    names = {LIST: f"{LIST} (failed, limit {LIMIT})", NOOP: f"{NOOP} (baseline)"}
    if run.times[PING]:
        names[PING] = "ping (no tool)"
    for tool, name in names.items():
        xs = run.times[tool]
        server_cpu = run.server_cpu(tool)
        server = f"{server_cpu * 1e3:8.2f}" if server_cpu is not None else f"{'-':>8}"
        print(
            f"  {name:<32}{run.p50(tool) * 1e3:8.2f}{run.p99(tool) * 1e3:8.2f}"
            f"{statistics.fmean(xs) * 1e3:8.2f}{min(xs) * 1e3:8.2f}"
            f"{statistics.fmean(run.client_cpu[tool]) * 1e3:8.2f}{server}"
            f"{run.reply_bytes.get(tool, 0):8,}"
        )
    print(
        f"  ratio session_list/baseline: p50 {p50_ratio:.2f} (target <= {TARGET_RATIO})  "
        f"p99 {p99_ratio:.2f}  {'PASS' if ok else 'FAIL'}"
    )
    ping_ratio = run.ping_ratio()
    if ping_ratio is not None:
        print(
            f"  ratio session_list/ping: p50 {ping_ratio:.2f}   "
            f"policy_check/ping: p50 {run.p50(NOOP) / run.p50(PING):.2f}"
        )
    return ok


# --- where the time goes (when the target is missed, or --profile) -------------------------


ANNOTATIONS = frozenset({"title", "description", "default", "examples"})
"""Keywords that only annotate: no validator checks them, so removing them accepts the same
documents."""


def without_annotations(schema: dict[str, Any]) -> dict[str, Any]:
    """The same constraints without ANNOTATIONS in any subschema (property names kept)."""

    def walk(node: Any, names: bool = False) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if names:  # a `properties` mapping: its keys are field names, not keywords
            return {name: walk(sub) for name, sub in node.items()}
        return {k: walk(v, k == "properties") for k, v in node.items() if k not in ANNOTATIONS}

    return cast(dict[str, Any], walk(schema))


def as_draft7(schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema declared draft-07: the client then picks jsonschema's Draft7Validator.
    Equivalent here because the served schemas use only keywords both drafts define alike
    (type, properties, required, items as one schema, enum, const, anyOf,
    additionalProperties); `check_equivalence` confirms it on bad documents."""
    return {"$schema": "http://json-schema.org/draft-07/schema#", **schema}


def shallow_items(schema: dict[str, Any]) -> dict[str, Any]:
    """Each array of objects declared by its items' required keys only (their properties'
    schemas dropped, their descriptions kept in the array's description): NOT equivalent,
    it accepts items with fields of any type; the bound of what dropping checks would buy."""

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        items = node.get("items")
        if isinstance(items, dict) and "properties" in items:
            fields = "; ".join(
                f"{name}: {prop.get('description', '')}"
                for name, prop in items["properties"].items()
            )
            description = node.get("description", "")
            return {
                **node,
                "description": f"{description} Each item: {fields}".strip(),
                "items": {"type": "object", "required": items.get("required", [])},
            }
        return {k: walk(v) for k, v in node.items()}

    return cast(dict[str, Any], walk(schema))


SERVED = "as served"
SCHEMA_VARIANTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    SERVED: lambda schema: schema,
    "annotations removed (equivalent)": without_annotations,
    "declared draft-07 (equivalent)": as_draft7,
    "list items by required keys only (looser)": shallow_items,
}
"""Output schemas the client could be validating: bunsui's (already without `$ref`s, nullable
fields as type lists: see bunsui_mcp.tools), two rewrites accepting exactly the same documents,
and one that drops the checks of list items' fields."""
EQUIVALENT = [name for name in SCHEMA_VARIANTS if name.endswith("(equivalent)")]


def bad_documents(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Copies of a good result each broken in one place: the whole, each top-level key
    removed or given values of other types, and the same for the first item of each list
    (each of its fields, when it is an object)."""
    yield "not an object", [document]
    for key, value in document.items():
        yield f"{key} missing", {k: v for k, v in document.items() if k != key}
        for other in others(value):
            yield f"{key} = {other!r}", {**document, key: other}
        if not (isinstance(value, list) and value):
            continue
        first, rest = value[0], value[1:]
        for other in others(first):
            yield f"{key}[0] = {other!r}", {**document, key: [other, *rest]}
        for field, item in first.items() if isinstance(first, dict) else ():
            broken = [{k: v for k, v in first.items() if k != field}]
            broken += [{**first, field: other} for other in others(item)]
            for candidate in broken:
                yield f"{key}[0].{field} broken", {**document, key: [candidate, *rest]}


def others(value: Any) -> list[Any]:
    """JSON values of other types than value's."""
    samples: list[Any] = [12345, "text", None, [1], {"x": 1}, True, 1.5]
    return [other for other in samples if type(other) is not type(value)]


def check_equivalence(schema: dict[str, Any], document: dict[str, Any]) -> tuple[int, int]:
    """Each EQUIVALENT rewrite gives the served schema's verdict on the good document and on
    every bad_documents copy (RuntimeError otherwise). Returns (bad documents, of them
    rejected by the served schema)."""
    validators = {name: compiled(SCHEMA_VARIANTS[name](schema)) for name in (SERVED, *EQUIVALENT)}
    documents = [("good", document), *bad_documents(document)]
    rejected = 0
    for label, candidate in documents:
        verdicts = {name: v.is_valid(candidate) for name, v in validators.items()}
        if len(set(verdicts.values())) != 1:
            raise RuntimeError(f"schema rewrites disagree on {label}: {verdicts}")
        if label == "good" and not verdicts[SERVED]:
            raise RuntimeError("the served schema rejects the tool's own result")
        rejected += label != "good" and not verdicts[SERVED]
    return len(documents) - 1, rejected


def subschema_visits(validator: Validator, document: Any) -> int:
    """How many (instance, subschema) pairs one validation of document walks: jsonschema
    builds a new validator (`evolve`) and a `referencing` resource for each."""
    kind: Any = type(validator)  # `descend` is not part of jsonschema's Validator protocol
    original = kind.descend
    visits = 0

    def counting(self: Validator, *args: Any, **kwargs: Any) -> Any:
        nonlocal visits
        visits += 1
        return original(self, *args, **kwargs)

    kind.descend = counting
    try:
        list(validator.iter_errors(document))
    finally:
        kind.descend = original
    return visits + 1  # and the root


def compiled(schema: dict[str, Any]) -> Validator:
    """A validator built the way the SDK's ClientSession builds one for an output schema."""
    return validator_for(schema)(schema, registry=Registry())


def output_schemas(gateway: Gateway) -> dict[str, dict[str, Any]]:
    """The output schema bunsui-mcp lists for each measured tool (same code as the server)."""
    return {
        tool: tools.tool_for(gateway, ACTOR, REGISTRY.get(action)).output_schema or {}
        for tool, (action, _) in TOOLS.items()
    }


def median_ms(fn: Callable[[], object], calls: int = IN_PROCESS_CALLS) -> float:
    fn()
    xs = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs) * 1e3


def stage_times(gateway: Gateway) -> dict[str, dict[str, float]]:
    """Per-call medians (ms) of each stage a tool call goes through, per tool, in-process."""
    schemas = output_schemas(gateway)
    stages: dict[str, dict[str, float]] = {}
    for tool, (action, arguments) in TOOLS.items():

        def invoke(action: str = action, arguments: dict[str, Any] = arguments) -> Any:
            return gateway.invoke(ACTOR, action, arguments)

        output = invoke()
        result = tools._result(output)  # the server's encoding of a tool result
        wire = result.model_dump_json(by_alias=True, exclude_none=True)
        stages[tool] = {
            "gateway": median_ms(invoke),
            "encode": median_ms(lambda output=output: tools._result(output)),
            "wire": median_ms(
                lambda result=result, wire=wire: (
                    result.model_dump_json(by_alias=True, exclude_none=True),
                    CallToolResult.model_validate_json(wire),
                )
            ),
        }
        document = result.structured_content or {}
        validators = {
            variant: compiled(transform(schemas[tool]))
            for variant, transform in SCHEMA_VARIANTS.items()
        }
        for variant, validator in validators.items():
            if list(validator.iter_errors(document)):
                raise RuntimeError(f"{tool}: result does not match its {variant} output schema")
        stages[tool].update(validation_medians(validators, document))
        stages[tool]["visits"] = subschema_visits(validators[SERVED], document)
        stages[tool]["bad documents"], stages[tool]["rejected"] = check_equivalence(
            schemas[tool], document
        )
    return stages


def validation_medians(validators: dict[str, Validator], document: Any) -> dict[str, float]:
    """Median ms of one validation of document by each validator, measured in alternating
    rounds (so load drift hits them alike): the median of the rounds' medians."""
    rounds: dict[str, list[float]] = {name: [] for name in validators}
    for _ in range(VALIDATION_ROUNDS):
        for name, validator in validators.items():
            rounds[name].append(
                median_ms(lambda v=validator: list(v.iter_errors(document)), VALIDATION_CALLS)
            )
    return {name: statistics.median(values) for name, values in rounds.items()}


HANDLER = ("actions/sessions.py", "list_sessions")
PROFILE_ROWS: list[tuple[str, str, str, tuple[str, str] | None]] = [
    ("Gateway.invoke, total", "actions/gateway.py", "invoke", None),
    ("  open store (connect, WAL pragma, schema check)", "store/sqlite.py", "__init__", None),
    ("  policy decision", "governance/policy.py", "decide", None),
    ("  handler: session:list", *HANDLER, None),
    ("    reap_lost_runners (running + queued)", "engine/liveness.py", "reap_lost_runners", None),
    (
        "    store.list_sessions(failed): SQL + Session parses",
        "store/sqlite.py",
        "list_sessions",
        HANDLER,
    ),
    ("    SessionSummary.of x50 (dump + validate)", "actions/session_views.py", "of", None),
    ("  handler: policy:check", "actions/policies.py", "check", None),
    ("  audit append (hash chain, write transaction)", "actions/gateway.py", "_audit", None),
    ("  close store", "store/sqlite.py", "close", None),
]
"""(label, file suffix, function, only the share called from this (file suffix, function))."""


def profile_rows(stats: pstats.Stats, calls: int) -> list[float]:
    """Cumulative ms per call of each PROFILE_ROWS function in these stats."""
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    values = []
    for _, suffix, func, caller in PROFILE_ROWS:
        total = 0.0
        for (path, _, name), (_, _, _, cumulative, callers) in table.items():
            if not (path.endswith(suffix) and name == func):
                continue
            if caller is None:
                total += cumulative
            else:
                total += sum(
                    c[3]
                    for (cpath, _, cname), c in callers.items()
                    if cpath.endswith(caller[0]) and cname == caller[1]
                )
        values.append(total / calls * 1e3)
    return values


def profile_gateway(gateway: Gateway) -> None:
    """cProfile of Gateway.invoke for both actions, by part."""
    calls = IN_PROCESS_CALLS
    columns = {}
    for tool, (action, arguments) in TOOLS.items():
        gateway.invoke(ACTOR, action, arguments)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(calls):
            gateway.invoke(ACTOR, action, arguments)
        profiler.disable()
        columns[tool] = profile_rows(pstats.Stats(profiler), calls)
    print(
        f"\n  cProfile of Gateway(settings).invoke, {calls} calls each "
        "(ms per call, cumulative, inflated by profiling)"
    )
    print(f"  {'':<58}{LIST:>13}{NOOP:>13}")
    for (label, *_), a, b in zip(PROFILE_ROWS, columns[LIST], columns[NOOP], strict=True):
        print(f"  {label:<58}{a:13.3f}{b:13.3f}")


@contextmanager
def client_validation(
    replacement: Callable[[ClientSession, str, CallToolResult], Awaitable[None]] | None,
) -> Iterator[None]:
    """Swap the SDK's output-schema check of tool results for the length of a run."""
    original = ClientSession.validate_tool_result
    if replacement is not None:
        ClientSession.validate_tool_result = replacement  # type: ignore[method-assign]
    try:
        yield
    finally:
        ClientSession.validate_tool_result = original  # type: ignore[method-assign]


def validating_against(
    schemas: dict[str, dict[str, Any]],
) -> Callable[[ClientSession, str, CallToolResult], Awaitable[None]]:
    """A stand-in for the SDK's check that validates the measured tools against these
    schemas instead of the listed ones: a server serving them, simulated client-side."""
    validators = {tool: compiled(schema) for tool, schema in schemas.items()}
    original = ClientSession.validate_tool_result

    async def check(self: ClientSession, name: str, result: CallToolResult) -> None:
        if name not in validators:
            await original(self, name, result)
            return
        for error in validators[name].iter_errors(result.structured_content):
            raise RuntimeError(f"{name}: {error.message}")

    return check


def timed_check(
    spent: dict[str, list[float]],
) -> Callable[[ClientSession, str, CallToolResult], Awaitable[None]]:
    """The SDK's own check, its CPU seconds per call (it runs synchronously on the event
    loop's thread) collected into `spent` by tool name."""
    original = ClientSession.validate_tool_result

    async def check(self: ClientSession, name: str, result: CallToolResult) -> None:
        t0 = time.thread_time()
        try:
            await original(self, name, result)
        finally:
            spent.setdefault(name, []).append(time.thread_time() - t0)

    return check


async def confirm_end_to_end(
    params: StdioServerParameters, gateway: Gateway, spent: dict[str, list[float]]
) -> list[Run]:
    """Auto mode again on fresh connections: in blocks with CPU per process and thread, then
    interleaved with the client's validation skipped, then with each rewritten schema."""

    async def skipped(self: ClientSession, name: str, result: CallToolResult) -> None:
        return None

    served = output_schemas(gateway)
    variants: list[tuple[str, Any, bool]] = [
        ("auto, as shipped, CPU by process and thread", timed_check(spent), True),
        ("auto, client output-schema validation skipped", skipped, False),
    ]
    for variant, transform in list(SCHEMA_VARIANTS.items())[1:]:
        schemas = {tool: transform(schema) for tool, schema in served.items()}
        variants.append((f"auto, schemas {variant}", validating_against(schemas), False))
    runs = []
    for label, replacement, blocked in variants:
        with client_validation(replacement):
            runs.append(
                await measure(
                    label, "auto", params, DIAGNOSTIC_CALLS, DIAGNOSTIC_WARMUP, blocked=blocked
                )
            )
    return runs


def explain(settings: Settings, runs: list[Run], params: StdioServerParameters) -> None:
    """Split the measured p50 difference into stages, with cProfile and end-to-end evidence."""
    print("\nwhere the difference goes")
    gateway = Gateway(settings)
    # The server keeps one connection open (its event forwarder), so a gateway call's close
    # is never the last one and never checkpoints the WAL: the same here.
    forwarder = open_store(settings)
    try:
        stages = stage_times(gateway)
        profile_gateway(gateway)
    finally:
        forwarder.close()

    variants = list(SCHEMA_VARIANTS)
    rows = [
        ("server worker: Gateway.invoke (governed call)", "gateway"),
        ("server worker: tools._result (dump + json.dumps)", "encode"),
        ("wire: CallToolResult JSON dump + parse (approx.)", "wire"),
        ("client: SDK output-schema validation (jsonschema)", variants[0]),
    ]
    print(
        f"\n  in-process stages, median of {IN_PROCESS_CALLS} (ms per call)"
        f"\n  {'':<52}{LIST:>13}{NOOP:>13}{'extra':>9}"
    )
    extras = {}
    for label, key in rows:
        a, b = stages[LIST][key], stages[NOOP][key]
        extras[label] = a - b
        print(f"  {label:<52}{a:13.3f}{b:13.3f}{a - b:+9.3f}")
    print(f"  {'sum of extras':<52}{'':>26}{sum(extras.values()):+9.3f}")
    print(
        f"  the same validation against rewritten schemas ({VALIDATION_ROUNDS} alternating "
        "rounds; ms, and vs as served):"
    )
    for variant in variants[1:]:
        a, b = stages[LIST][variant], stages[NOOP][variant]
        change = a / stages[LIST][SERVED] - 1
        print(f"    {variant:<48}{a:13.3f}{b:13.3f}{a - b:+9.3f}{change:+8.0%}")
    for tool in TOOLS:
        visits = stages[tool]["visits"]
        print(
            f"  {tool}: {visits:.0f} subschema visits per validation, "
            f"{stages[tool][SERVED] * 1e3 / visits:.1f} us each; the equivalent rewrites "
            f"agreed with the served schema on {stages[tool]['bad documents']:.0f} broken "
            f"copies of the result ({stages[tool]['rejected']:.0f} rejected)"
        )

    print(
        "\n  end to end again, auto mode, fresh connections: first in blocks of one tool, with"
        "\n  CPU per call of the client and of the server process; then interleaved with the"
        "\n  client's check skipped, and with the rewritten schemas validated instead"
    )
    spent: dict[str, list[float]] = {}
    confirmations = anyio.run(confirm_end_to_end, params, gateway, spent)
    for run in confirmations:
        print_run(run)

    blocked = confirmations[0]
    calls = len(blocked.times[LIST])
    check = {tool: statistics.fmean(spent[tool][-calls:]) * 1e3 for tool in TOOLS}
    client = {tool: statistics.fmean(blocked.client_cpu[tool]) * 1e3 for tool in TOOLS}
    parts = {
        "client: the SDK's output-schema check (timed in the calls)": check,
        "client: everything else": {tool: client[tool] - check[tool] for tool in TOOLS},
    }
    if blocked.server_split:
        split = blocked.server_split
        parts["server event loop: SDK, JSON-RPC encoding, stdio"] = {
            tool: split[tool][0] * 1e3 for tool in TOOLS
        }
        parts["server worker threads: gateway + result encoding"] = {
            tool: split[tool][1] * 1e3 for tool in TOOLS
        }
    gap = (blocked.p50(LIST) - blocked.p50(NOOP)) * 1e3
    print(
        f"\n  accounting, blocked run: CPU, mean ms per call (p50 wall gap {gap:.2f} ms)"
        f"\n  {'':<64}{LIST:>13}{NOOP:>13}{'extra':>8}"
    )
    extra = {}
    for label, values in parts.items():
        extra[label] = values[LIST] - values[NOOP]
        print(f"  {label:<64}{values[LIST]:13.2f}{values[NOOP]:13.2f}{extra[label]:+8.2f}")
    total = sum(extra.values())
    top = max(extra, key=lambda label: extra[label])
    print(f"  {'sum':<64}{'':>26}{total:+8.2f}")
    print(f"  dominant: {top}: {extra[top]:.2f} of {total:.2f} ms extra ({extra[top] / total:.0%})")


def failed_share(settings: Settings) -> tuple[int, int]:
    with sqlite3.connect(settings.database_path) as db:
        ((failed, total),) = db.execute(
            "SELECT SUM(status = 'failed'), COUNT(*) FROM sessions"
        ).fetchall()
    return failed, total


def main() -> int:
    """Populate a home, measure both modes side by side; explain a miss; exit 1 on a miss."""
    force_profile = "--profile" in sys.argv[1:]
    load = os.getloadavg()
    print(
        f"MCP session_list {{filter: {{status: failed}}, limit: {LIMIT}}} on {SIZE:,} stored "
        f"sessions vs {NOOP} (baseline), bunsui-mcp over stdio, actor {ACTOR}"
    )
    print(
        "baseline: bunsui has no no-op tool; policy_check is the cheapest that takes the whole "
        "path\n  (stdio JSON-RPC, worker thread, gateway: store open, validation, policy, "
        "handler, audit append,\n  store close; JSON encoding; client output-schema check) "
        "while reading nothing from the store"
    )
    print(
        f"machine: {platform.platform()}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
        f"mcp {version('mcp')}, jsonschema {version('jsonschema')}, "
        f"sqlite {sqlite3.sqlite_version}"
    )
    with tempfile.TemporaryDirectory(prefix="bunsui-bench-mcp-list-") as tmp:
        settings = Settings.resolve(Path(tmp) / "home")
        seconds = populate(settings, SIZE)
        failed, total = failed_share(settings)
        print(
            f"populated {total:,} sessions in {seconds:.1f} s "
            f"({settings.database_path.stat().st_size / 1e6:.0f} MB); failed {failed:,} "
            f"({failed / total:.1%}); mix "
            + ", ".join(f"{s} {w}%" for s, w in STATUS_WEIGHTS.items())
        )
        params = StdioServerParameters(
            command=server_executable(),
            args=["--home", str(settings.home)],
            env=server_environment(Path(tmp) / "pycache"),
        )
        runs = [anyio.run(measure, f"mode={mode!r}", mode, params, CALLS, WARMUP) for mode in MODES]
        results = [print_run(run) for run in runs]
        for run, (mode, expected) in zip(runs, MODES.items(), strict=True):
            if run.protocol != expected:
                print(f"  note: mode={mode!r} negotiated {run.protocol}, expected {expected}")
        load = os.getloadavg()
        print(f"\nload average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        ok = all(results)
        if (not ok or force_profile) and "--no-explain" not in sys.argv[1:]:
            explain(settings, runs, params)
    print(
        f"\nverdict: {'target met' if ok else 'TARGET MISSED'} "
        f"(p50 ratio <= {TARGET_RATIO} in both modes: "
        + ", ".join(f"{r.label} {r.ratios()[0]:.2f}" for r in runs)
        + "; vs ping: "
        + ", ".join(f"{r.label} {r.ping_ratio():.2f}" for r in runs if r.ping_ratio())
        + ")"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
