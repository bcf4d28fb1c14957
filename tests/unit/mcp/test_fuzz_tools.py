"""Fuzz every MCP tool from the input schema it advertises, as the agent and as the OS user.

hypothesis-jsonschema is not available here, so `from_schema` below turns the JSON schemas
the server lists into hypothesis strategies (string, integer, number, boolean, null, object,
array, anyOf, enum, $ref), and `HOSTILE` supplies what no schema allows: ~1 MiB strings,
NUL and control characters, lone surrogates (JSON can carry them as `\\ud800` escapes), deep
nesting, huge and negative integers, wrong types, extra keys and a forged `actor`.

Each test drives one in-process `Client` (through a blocking portal, so hypothesis runs
synchronously) against a home with one real failed ETL session, and checks after every call:
- the call returned a CallToolResult: a success, or a tool error whose structured content is
  exactly `{"code", "message", "details"}` with a code from `ErrorCode`;
- the server still answers `session_list` with the failed session in it;
- sessions, job runs and operation runs are unchanged unless the call legitimately changed
  them (tickets, overrides, resolutions and audit entries may be added).

Five bugs the fuzz found are fixed and kept as regression tests at the end: lone surrogates
escaped the gateway uncoded and unaudited; integers beyond int64 were INTERNAL; a NUL byte in
a pipeline path was INTERNAL; pipeline_validate read FIFOs and devices without bound; a file
name over 255 bytes was INTERNAL. No call may now end uncoded or INTERNAL.

Nothing here starts a process: the OS user never gets the tools that run or rerun pipelines
or that execute tickets, never sees the real recovery plan id, and its command lines only
name read actions; the agent's writes only ever create tickets.
"""

from __future__ import annotations

import getpass
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.from_thread
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mcp import Client

from bunsui_core.actions import REGISTRY, Gateway
from bunsui_core.actions.registry import Effect
from bunsui_core.config import Settings
from bunsui_core.errors import ErrorCode
from bunsui_core.governance.policy import Outcome
from bunsui_core.model.pipeline_loader import MAX_PIPELINE_BYTES
from bunsui_core.store.base import SessionFilter
from bunsui_core.store.sqlite import SqliteStore
from bunsui_mcp.server import build_server
from tests.conftest import etl_pipeline
from tests.unit.insights import recorded

AGENT = "ai-agent"
OS_USER = getpass.getuser()
PROTOCOLS = {"auto": "2026-07-28", "legacy": "2025-11-25"}
COMMAND_TOOL = "command_execute"
ERROR_KEYS = {"code", "message", "details"}
CODES = {str(code) for code in ErrorCode}

EXAMPLES = int(os.environ.get("BUNSUI_FUZZ_EXAMPLES", "25"))
"""Per (actor, tool group, protocol era): 50 calls per tool group and actor by default; set
BUNSUI_FUZZ_EXAMPLES higher for a longer hunt."""

SPAWNING = frozenset(
    {"job_rerun", "session_rerun", "session_rerun_many", "pipeline_run", "approval_approve"}
)
"""Tools that, called by the OS user (allowed to act), start pipeline processes, directly
or by executing a ticket. Fuzzing them would run real workloads: the OS user never gets
them. The agent gets them all: for it they only create tickets."""

NETWORKED = frozenset({"aws", "notify"})
"""Resources whose tools reach the network: AWS through boto3 (to a caller-given endpoint,
even) and webhook receivers (tests/unit/notify runs them against a local receiver). This
sandbox has no network, so the OS user never gets them (the agent's policy denies them)."""

LEGITIMATE_RUN_CHANGES = frozenset(
    {
        "job_mark",
        "session_cancel",
        "session_claim",
        "session_escalate",
        "session_release",
        "session_resolve_escalation",
    }
)
"""Tools whose success may change a stored session or job run (claims and escalations live
on the session record)."""


GROUPS = sorted({action.resource for action in REGISTRY} - NETWORKED | {"command"})
"""Tool groups by resource (`job_rerun` is in `job`), and `command` for command_execute."""


# --- the home -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Home:
    """A bunsui home with one failed ETL session and ids that reach past lookups."""

    settings: Settings
    session_id: str
    plan_id: str
    ticket_id: str
    error_id: str
    fingerprint: str
    pipeline_file: str
    insight_id: str


def make_home(tmp_path: Path) -> Home:
    settings_ = Settings.resolve(tmp_path / "home")
    gateway = Gateway(settings_)
    pipeline_file = etl_pipeline(tmp_path)
    session = gateway.invoke(OS_USER, "pipeline:run", {"pipeline": pipeline_file, "wait": True})
    assert str(session.status) == "failed"
    session_id = session.session_id
    analysis = gateway.invoke(AGENT, "error:analyze", {"session_id": session_id})
    [error] = analysis.errors
    plans = gateway.invoke(AGENT, "recovery:suggest", {"session_id": session_id})
    ticket = gateway.invoke(
        AGENT,
        "job:update-config",
        {"job_id": "transform", "session_id": session_id, "memory": 320},
    )
    store = SqliteStore(settings_.database_path)
    try:  # a recorded history whose peak memory climbs towards its limit: one insight
        grow = recorded.Recorder(store, "grow", recorded.job("load", memory=512))
        for peak in (200, 240, 280, 320, 360):
            grow.run(load=recorded.Ran(peak=peak, limit=512))
    finally:
        store.close()
    [insight] = gateway.invoke(OS_USER, "insight:list", {"pipeline": "grow"}).insights
    return Home(
        settings=settings_,
        session_id=session_id,
        plan_id=plans.recovery_plans[0].plan_id,
        ticket_id=ticket.ticket_id,
        error_id=error.error_id,
        fingerprint=error.fingerprint,
        pipeline_file=pipeline_file,
        insight_id=insight.insight_id,
    )


def snapshot(settings_: Settings) -> dict[str, Any]:
    """Every session with its job and operation runs, as stored."""
    store = SqliteStore(settings_.database_path)
    try:
        sessions = store.list_sessions(SessionFilter(), limit=1000).sessions
        return {
            s.session_id: {
                "session": s.model_dump(mode="json"),
                "jobs": sorted(
                    (r.model_dump(mode="json") for r in store.list_job_runs(s.session_id)),
                    key=lambda r: r["job_id"],
                ),
                "operations": sorted(
                    (r.model_dump(mode="json") for r in store.list_operation_runs(s.session_id)),
                    key=lambda r: (r["job_id"], r["operation_id"]),
                ),
            }
            for s in sessions
        }
    finally:
        store.close()


# --- JSON schema -> strategies ------------------------------------------------------------

HUGE = "A" * (1 << 20)
CONTROL = "".join(map(chr, range(32))) + "\x7f\x80\x9f"
HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "ses-\x00",
    CONTROL,
    "\ud800",
    "x\udfffy",
    "\udbff",
    "\u202e\u2066evil\u2069",
    "\ufeff\ufffe",
    "💥" * 1000,
    "../../../../../../etc/passwd",
    "'; DROP TABLE sessions; --",
    "%s%n%x{0}{session_id}",
    "${HOME}$(id)`id`",
    "bunsui://sessions/../audit/head",
    "ses-000000000000",
    "tkt-000000000000",
    "\n\r\t\v\f",
    "\x1b[2J\x1b]0;title\x07",
    HUGE,
    "ses-" + "9" * (1 << 20),
]
HOSTILE_INTS = [0, -1, 1, -(2**31), 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 2**64 + 1, 10**100]
HOSTILE_FLOATS = [float("nan"), float("inf"), float("-inf"), -0.0, 1e308, 5e-324, 1.5]


def nested(depth: int, as_list: bool) -> Any:
    """A value nested `depth` levels (kept under the client's 254-level serialization limit)."""
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if as_list else {"a": value}
    return value


KEYS = st.text(max_size=12)  # never surrogates: the client cannot serialize such a key
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=12,
)
HOSTILE = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.sampled_from(HOSTILE_INTS),
    st.sampled_from(HOSTILE_FLOATS),
    st.builds(nested, st.integers(1, 200), st.booleans()),
    st.just([0] * 10_000),
    st.just({f"k{i}": i for i in range(2_000)}),
    JSON,
)


Known = dict[str, list[Any]]
"""Real values for string fields, by field name."""


def strings_of(schema: dict[str, Any], _defs: dict[str, Any], known: Known, name: Any) -> Any:
    if "pattern" in schema:
        text = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        low = schema.get("minLength", 0)
        text = st.text(min_size=low, max_size=max(low, min(schema.get("maxLength", 30), 30)))
    if not known.get(name or ""):
        return text
    real = st.sampled_from(known[name or ""])
    return st.one_of(real, real, text)


def integers_of(schema: dict[str, Any], _defs: dict[str, Any], _known: Known, _name: Any) -> Any:
    low, high = schema.get("minimum"), schema.get("maximum")
    edges = [v for v in (low, high) if v is not None]
    ints = st.integers(min_value=low, max_value=high)
    return st.one_of(ints, st.sampled_from(edges)) if edges else ints


def numbers_of(schema: dict[str, Any], _defs: dict[str, Any], _known: Known, _name: Any) -> Any:
    return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)


def arrays_of(schema: dict[str, Any], defs: dict[str, Any], known: Known, _name: Any) -> Any:
    return st.lists(from_schema(schema.get("items", {}), defs, known), max_size=3)


def objects_of(schema: dict[str, Any], defs: dict[str, Any], known: Known, _name: Any) -> Any:
    """Required properties always, optional ones sometimes, and schema-typed extra keys."""
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    fields = {p: from_schema(s, defs, known, p) for p, s in properties.items()}
    fixed = st.fixed_dictionaries(
        {p: s for p, s in fields.items() if p in required},
        optional={p: s for p, s in fields.items() if p not in required},
    )
    extra = schema.get("additionalProperties")
    if not isinstance(extra, dict):
        return fixed
    more = st.dictionaries(KEYS, from_schema(extra, defs, known), max_size=3)
    return st.tuples(fixed, more).map(lambda pair: {**pair[1], **pair[0]})


BY_TYPE = {
    "string": strings_of,
    "integer": integers_of,
    "number": numbers_of,
    "boolean": lambda *_: st.booleans(),
    "null": lambda *_: st.none(),
    "array": arrays_of,
    "object": objects_of,
}


def from_schema(
    schema: dict[str, Any], defs: dict[str, Any], known: Known, name: str | None = None
) -> st.SearchStrategy[Any]:
    """Values of a JSON schema; string fields named like stored ids also draw the real ids."""
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, known, name)
    if "anyOf" in schema:
        return st.one_of([from_schema(s, defs, known, name) for s in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, defs, known, name) for k in kind])
    build = BY_TYPE.get(kind)
    return build(schema, defs, known, name) if build else JSON


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]], fields: list[str]) -> Any:
    """A schema-valid argument object, then one hostile change."""
    arguments = dict(draw(valid))
    change = draw(st.sampled_from(["replace", "replace", "extra", "drop", "forge"]))
    if change == "replace" and fields:
        arguments[draw(st.sampled_from(fields))] = draw(HOSTILE)
    elif change == "extra":
        arguments[draw(KEYS)] = draw(HOSTILE)
    elif change == "drop" and arguments:
        del arguments[draw(st.sampled_from(sorted(arguments)))]
    elif change == "forge":
        arguments["actor"] = OS_USER
    return arguments


def arguments_for(schema: dict[str, Any], known: Known) -> st.SearchStrategy[Any]:
    """Valid arguments, valid ones with one hostile change, or any JSON object at all."""
    valid = from_schema(schema, schema.get("$defs", {}), known)
    fields = sorted(schema.get("properties", {}))
    return st.one_of(
        valid,
        valid,
        mutated(valid, fields),
        mutated(valid, fields),
        st.dictionaries(KEYS, HOSTILE, max_size=4),
    )


def command_lines(home: Home, actor: str) -> st.SearchStrategy[str]:
    """`bunsui ...` lines: printed suggestions, lines assembled from real actions and
    tokens, and garbage. The OS user's lines only name read actions (its writes act), and
    nobody's name a networked one."""
    names = [
        a.name
        for a in REGISTRY
        if (actor == AGENT or a.effect is Effect.READ) and a.resource not in NETWORKED
    ]
    sid = home.session_id
    tokens = st.one_of(
        st.sampled_from(
            [
                sid,
                "transform",
                "etl",
                home.ticket_id,
                home.error_id,
                home.pipeline_file,
                "--session-id",
                "--job-id",
                "--limit",
                "--stream",
                "stderr",
                "--no-dry-run",
                "--dry-run",
                "--memory",
                "--version",
                "--after-seq",
                "--param",
                "k=v",
                "=",
                "5",
                "0",
                "-1",
                "99999999999999999999",
                "'",
                '"',
                "\\",
                "--",
                "--actor",
                OS_USER,
            ]
        ),
        st.text(max_size=10),
    )
    assembled = st.builds(
        lambda name, words: " ".join(["bunsui", *name.split(":"), *words]),
        st.sampled_from(names),
        st.lists(tokens, max_size=6),
    )
    printed = [
        f"bunsui session describe {sid}",
        f"bunsui job logs transform --session-id {sid} --stream stderr --tail-lines 3",
        f"bunsui error analyze --session-id {sid}",
        f"bunsui recovery suggest --session-id {sid}",
        "bunsui session list --filter status=failed --limit 5",
    ]
    if actor == AGENT:
        printed += [
            f"bunsui job update-config transform --session-id {sid} --memory 320",
            f"bunsui recovery execute {home.plan_id}",
            f"bunsui recovery execute {home.plan_id} --no-dry-run",
            f"bunsui job rerun transform --session-id {sid} --skip-successful",
            f"bunsui approval approve {home.ticket_id}",
        ]
    garbage = st.one_of(st.sampled_from(HOSTILE_STRINGS), st.text(max_size=60))
    return st.one_of(st.sampled_from(printed), st.sampled_from(printed), assembled, garbage)


def known_values(home: Home, actor: str) -> Known:
    """Real values for fields by name, so generated calls get past the lookups."""
    return {
        "session_id": [home.session_id],
        "job_id": ["extract", "transform", "load"],
        "from_job": ["transform"],
        "pipeline_id": ["etl"],
        "pipeline": [home.pipeline_file, "etl"],
        "file": [home.pipeline_file],
        # the OS user executing the real plan with dry_run false would rerun the pipeline
        "plan_id": [home.plan_id] if actor == AGENT else [],
        "ticket_id": [home.ticket_id],
        "error_id": [home.error_id],
        "fingerprint": [home.fingerprint],
        "error_code": ["LOCAL_MEMORY_LIMIT", "PYTHON_MEMORY_ERROR"],
        "actor": [AGENT, OS_USER],
        "requested_by": [AGENT],
        "action": ["session:list", "approval:approve", "job:rerun"],
        "message": ["MemoryError: Unable to allocate 150. MiB for the batch", "Killed"],
        "insight_id": [home.insight_id],
    }


# --- checks -------------------------------------------------------------------------------


def is_special_path(value: Any) -> bool:
    """Device and procfs paths: reading them could block or never end."""
    return isinstance(value, str) and value.lstrip().startswith(("/dev", "/proc", "/sys"))


@dataclass
class Fuzzer:
    """One client, one home, one actor; `call` checks a call and the server afterwards."""

    home: Home
    actor: str
    client: Client
    portal: anyio.from_thread.BlockingPortal
    outcomes: Counter[str] = field(default_factory=Counter)
    """Per tool and outcome (`ok` or the error code): what the fuzz reached."""

    def call(self, tool: str, arguments: Any) -> None:
        before = snapshot(self.home.settings)
        result = self.portal.call(self.client.call_tool, tool, arguments)
        body = result.structured_content
        assert body is not None, (tool, arguments, result.content)  # nothing escapes uncoded
        if result.is_error:
            self.outcomes[f"{tool}:{body.get('code')}"] += 1
            assert isinstance(body, dict), (tool, result.content)
            assert set(body) == ERROR_KEYS, body
            assert body["code"] in CODES, body
            assert isinstance(body["message"], str)
            assert isinstance(body["details"], dict)
            assert body["code"] != ErrorCode.INTERNAL, (tool, arguments, body)
            if body["message"].startswith("invalid arguments for"):
                # a schema validation failure names every bad field
                assert body["code"] == ErrorCode.INVALID_ARGUMENT, body
                assert body["details"]["errors"], body
                for error in body["details"]["errors"]:
                    assert set(error) == {"field", "message"}, error
        else:
            self.outcomes[f"{tool}:ok"] += 1
            assert isinstance(body, dict), (tool, result.content)
        listed = self.portal.call(self.client.call_tool, "session_list", {})
        assert not listed.is_error, listed.structured_content
        listed_ids = {s["session_id"] for s in listed.structured_content["sessions"]}
        assert self.home.session_id in listed_ids
        after = snapshot(self.home.settings)
        if after != before:
            assert not result.is_error, (tool, body)
            assert tool in LEGITIMATE_RUN_CHANGES, (tool, arguments)
            assert after.keys() == before.keys(), "a session was created or removed"


def group_tools(settings_: Settings, actor: str, group: str) -> set[str]:
    """The group's tools the server lists for this actor, less those never fuzzed."""
    if group == "command":
        return {COMMAND_TOOL}
    policy = Gateway(settings_).policy
    names = {
        a.tool_name
        for a in REGISTRY
        if a.resource == group and policy.decide(actor, a.name).outcome is not Outcome.DENY
    }
    if actor == OS_USER:
        names -= SPAWNING
        names -= {a.tool_name for a in REGISTRY if a.resource in NETWORKED}
    return names


@pytest.fixture(params=list(PROTOCOLS))
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@contextmanager
def fuzzer(home: Home, actor: str, mode: str) -> Iterator[Fuzzer]:
    server = build_server(home.settings, actor)
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(server, mode=mode)) as client,
    ):
        assert client.protocol_version == PROTOCOLS[mode]
        yield Fuzzer(home, actor, client, portal)
    # the audit chain still holds after everything the fuzz sent
    verified = Gateway(home.settings).invoke(OS_USER, "audit:verify", {})
    assert verified.ok


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.parametrize("group", GROUPS)
@pytest.mark.parametrize("actor", [AGENT, OS_USER])
def test_every_tool_survives_arguments_from_its_own_schema(tmp_path, actor, group, mode):
    home = make_home(tmp_path)
    names = group_tools(home.settings, actor, group)
    if not names:
        pytest.skip(f"{actor} gets no {group} tool to fuzz")
    with fuzzer(home, actor, mode) as fuzz:
        listed = {t.name: t for t in fuzz.portal.call(fuzz.client.list_tools).tools}
        assert names <= listed.keys()
        tools = {name: listed[name] for name in names}
        known = known_values(fuzz.home, actor)
        strategies = {
            name: (
                st.one_of(
                    *[st.fixed_dictionaries({"command": command_lines(fuzz.home, actor)})] * 3,
                    arguments_for(tool.input_schema, known),
                )
                if name == COMMAND_TOOL
                else arguments_for(tool.input_schema, known)
            )
            for name, tool in tools.items()
        }
        call = st.sampled_from(sorted(tools)).flatmap(
            lambda name: st.tuples(st.just(name), strategies[name])
        )

        @FUZZ
        @given(call=call)
        def one_call(call: tuple[str, Any]) -> None:
            tool, arguments = call
            assume(not is_special_path(arguments.get("file")))
            fuzz.call(tool, arguments)

        one_call()
        outcomes = sorted(fuzz.outcomes.items())
        assert sum(fuzz.outcomes.values()) >= EXAMPLES, outcomes
        # the fuzz got past validation and lookups, not only into error paths
        assert any(key.endswith(":ok") for key in fuzz.outcomes), outcomes


# --- what the fuzz found: fixed bugs kept fixed, open ones pinned ----------------------------


def call_once(settings_: Settings, actor: str, mode: str, tool: str, arguments: Any) -> Any:
    """One call through a fresh in-process server and client."""

    async def main() -> Any:
        async with Client(build_server(settings_, actor), mode=mode) as client:
            result = await client.call_tool(tool, arguments)
            assert (await client.list_tools()).tools
            return result

    return anyio.run(main)


def audit_seq(settings_: Settings) -> int:
    store = SqliteStore(settings_.database_path)
    try:
        head = store.audit_head()
    finally:
        store.close()
    return head.seq if head else 0


@pytest.mark.parametrize(
    ("tool", "arguments", "field_"),
    [
        ("session_describe", {"session_id": "\ud800"}, "session_id"),
        ("error_classify", {"message": "MemoryError \udfff"}, "message"),
        ("approval_show", {"ticket_id": "tkt-\udbff"}, "ticket_id"),
        ("session_list", {"cursor": "\ud800"}, "cursor"),
        ("session_describe", {"session_id": 5, "reason": "\ud800"}, "reason"),
    ],
)
def test_lone_surrogates_are_field_errors_and_audited(settings, mode, tool, arguments, field_):
    """JSON may carry `\\ud800`; such text cannot be stored, hashed or looked up, so the
    gateway should refuse it as a field error (and still audit the refused call)."""
    before = audit_seq(settings)
    result = call_once(settings, AGENT, mode, tool, arguments)
    assert result.is_error
    body = result.structured_content
    assert body is not None, result.content
    assert body["code"] == ErrorCode.INVALID_ARGUMENT
    assert field_ in {e["field"] for e in body["details"]["errors"]}
    assert audit_seq(settings) == before + 1


@pytest.mark.parametrize(
    ("actor", "tool", "arguments"),
    [
        (AGENT, "pipeline_describe", {"pipeline_id": "etl", "version": 2**63}),
        (AGENT, COMMAND_TOOL, {"command": "bunsui pipeline describe etl --version 1" + "0" * 20}),
        (OS_USER, "audit_list", {"after_seq": 2**64}),
    ],
)
def test_integers_beyond_int64_are_invalid_arguments(settings, mode, actor, tool, arguments):
    result = call_once(settings, actor, mode, tool, arguments)
    assert result.is_error
    assert result.structured_content["code"] == ErrorCode.INVALID_ARGUMENT, result.content


@pytest.mark.parametrize(
    ("actor", "tool", "arguments"),
    [
        (AGENT, "pipeline_validate", {"file": "etl\x00.yaml"}),
        (OS_USER, "pipeline_register", {"file": "\x00"}),
        (AGENT, COMMAND_TOOL, {"command": "bunsui pipeline validate 'a\x00b'"}),
    ],
)
def test_a_nul_byte_in_a_pipeline_path_is_a_coded_error(settings, mode, actor, tool, arguments):
    """Found by the fuzz (open() raised ValueError: INTERNAL); fixed in load_pipeline_file."""
    result = call_once(settings, actor, mode, tool, arguments)
    assert result.is_error
    code = result.structured_content["code"]
    assert code in {ErrorCode.INVALID_ARGUMENT, ErrorCode.PIPELINE_INVALID}, result.content


def test_pipeline_files_are_read_no_further_than_the_size_limit(settings, tmp_path, mode):
    """`pipeline_validate` needs no approval: a FIFO (or /dev/zero) must not make the server
    read without bound. Found here; load_pipeline_file now reads regular files only, at most
    the size limit."""
    fifo = tmp_path / "endless.yaml"
    os.mkfifo(fifo)
    total = 4 * MAX_PIPELINE_BYTES
    written = 0

    def feed() -> None:
        nonlocal written
        chunk = b"#" * 65536 + b"\n"
        fd = os.open(fifo, os.O_WRONLY)  # until the server opens it for reading
        try:
            while written < total:
                written += os.write(fd, chunk)
        except BrokenPipeError:
            pass  # the reader stopped: what a bounded read does
        finally:
            os.close(fd)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    result = call_once(settings, AGENT, mode, "pipeline_validate", {"file": str(fifo)})
    if feeder.is_alive():  # the server never opened the FIFO: let the writer finish
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        os.close(reader)
    feeder.join(10)
    assert not feeder.is_alive()
    assert result.structured_content["code"] == ErrorCode.PIPELINE_INVALID
    assert written < 2 * MAX_PIPELINE_BYTES, f"read {written} bytes of an endless file"


LONG_NAME = "😀" * 100
"""One 400-byte path component: within the schema's bound, beyond every file system's."""


@pytest.mark.parametrize(
    "case",
    [
        (AGENT, "pipeline_validate", {"file": LONG_NAME}, ErrorCode.PIPELINE_INVALID),
        (AGENT, "pipeline_validate", {"file": "/var/" + "x" * 300}, ErrorCode.PERMISSION_DENIED),
        (AGENT, "pipeline_register", {"file": LONG_NAME}, ErrorCode.PIPELINE_INVALID),
        (AGENT, "pipeline_run", {"pipeline": LONG_NAME + ".yaml"}, ErrorCode.NOT_FOUND),
        (OS_USER, "pipeline_validate", {"file": LONG_NAME}, ErrorCode.PIPELINE_INVALID),
        (OS_USER, "pipeline_register", {"file": LONG_NAME}, ErrorCode.PIPELINE_INVALID),
        (OS_USER, "pipeline_run", {"pipeline": LONG_NAME + ".yaml"}, ErrorCode.NOT_FOUND),
    ],
    ids=[
        "agent-validate-under-a-root",
        "agent-validate-outside-the-roots",
        "agent-register",
        "agent-run",
        "os-user-validate",
        "os-user-register",
        "os-user-run",
    ],
)
def test_a_name_too_long_for_the_file_system_is_a_coded_error(settings, mode, case):
    """Found by the fuzz: a name within the schema's length but over 255 bytes made
    `Path.exists`/`is_dir` raise ENAMETOOLONG, and the call ended INTERNAL. Such a name now
    leads nowhere, like a missing file (`model.path_kind`)."""
    actor, tool, arguments, code = case
    result = call_once(settings, actor, mode, tool, arguments)
    assert result.is_error
    assert result.structured_content["code"] == code, result.content
