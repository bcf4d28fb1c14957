"""The policy a user writes: how it loads (failing closed, line by line) and what it decides."""

from __future__ import annotations

import fnmatch
import getpass
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import yaml
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st

from bunsui_core.actions import REGISTRY
from bunsui_core.actions.gateway import Gateway
from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError, ErrorCode, PermissionDeniedError
from bunsui_core.governance.policy import (
    RESERVED_ACTIONS,
    ActorKind,
    Decision,
    Outcome,
    Policy,
)
from bunsui_core.governance.policy_file import (
    LivePolicy,
    PolicyCache,
    PolicyInvalidError,
    compile_policy,
    load_policy,
)
from bunsui_core.governance.policy_reader import parse_policy
from bunsui_core.resources import shipped_file

KNOWN = [a.name for a in REGISTRY]
EVERY_ACTION = sorted({*KNOWN, *RESERVED_ACTIONS})
DEFAULT_POLICY = Path(__file__).resolve().parents[3] / "policies" / "default.yaml"
OS_USER = getpass.getuser()

DESIGN_FILE = """\
ai_agent:
  allowed_actions:
    - session:list
    - session:describe
    - error:analyze
    - job:rerun
    - recovery:suggest
  denied_actions:
    - pipeline:delete
    - config:modify_critical
  approval_required:
    - job:rerun
    - session:rerun
"""


def parse(text: str) -> Policy:
    """Parse a policy document against the actions bunsui offers."""
    return parse_policy(textwrap.dedent(text), source="test.yaml", known_actions=KNOWN)


def problems_of(text: str) -> list[dict[str, Any]]:
    """The problems a policy document is refused with (it must be refused)."""
    with pytest.raises(PolicyInvalidError) as caught:
        parse(text)
    assert caught.value.code == ErrorCode.POLICY_INVALID
    assert caught.value.details["source"] == "test.yaml"
    return caught.value.details["problems"]


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing `needle`."""
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def outcome(policy: Policy, actor: str, action: str) -> Outcome:
    """Just the outcome of one decision."""
    return policy.decide(actor, action).outcome


# --- 1. the design's file -----------------------------------------------------------------


class TestDesignFile:
    @pytest.fixture
    def policy(self, tmp_path: Path) -> Policy:
        path = tmp_path / "ai_permissions.yaml"
        path.write_text(DESIGN_FILE, encoding="utf-8")
        return load_policy(path, KNOWN)

    def test_loads_as_written(self, policy: Policy):
        """The design's file loads unchanged: one agent role held by the actor `ai-agent`."""
        assert list(policy.roles) == ["ai_agent"]
        assert policy.roles["ai_agent"].kind is ActorKind.AGENT
        assert policy.read_only is False
        assert [(b.pattern, b.roles) for b in policy.actors] == [("ai-agent", ["ai_agent"])]
        assert policy.kind_of("ai-agent") is ActorKind.AGENT
        rules = [(r.outcome, r.pattern, r.line) for r in policy.roles["ai_agent"].rules]
        assert rules == [
            (Outcome.ALLOW, "session:list", 3),
            (Outcome.ALLOW, "session:describe", 4),
            (Outcome.ALLOW, "error:analyze", 5),
            (Outcome.ALLOW, "job:rerun", 6),
            (Outcome.ALLOW, "recovery:suggest", 7),
            (Outcome.DENY, "pipeline:delete", 9),
            (Outcome.DENY, "config:modify_critical", 10),
            (Outcome.APPROVAL_REQUIRED, "job:rerun", 12),
            (Outcome.APPROVAL_REQUIRED, "session:rerun", 13),
        ]

    @pytest.mark.parametrize(
        ("action", "expected"),
        [
            ("job:rerun", Outcome.APPROVAL_REQUIRED),
            ("session:rerun", Outcome.APPROVAL_REQUIRED),
            ("session:list", Outcome.ALLOW),
            ("session:describe", Outcome.ALLOW),
            ("error:analyze", Outcome.ALLOW),
            ("recovery:suggest", Outcome.ALLOW),
            ("pipeline:delete", Outcome.DENY),
            ("config:modify_critical", Outcome.DENY),
            ("approval:approve", Outcome.DENY),
            ("approval:reject", Outcome.DENY),
            ("recovery:execute", Outcome.DENY),
        ],
    )
    def test_decisions_for_ai_agent(self, policy: Policy, action: str, expected: Outcome):
        """ai-agent: listed reads allowed, reruns need approval, the rest is denied."""
        assert outcome(policy, "ai-agent", action) is expected

    def test_approval_required_beats_allow_in_the_same_role(self, policy: Policy):
        """job:rerun is both allowed and approval_required: approval wins; both rules shown."""
        decision = policy.decide("ai-agent", "job:rerun")
        assert decision.rule == "ai_agent.approval_required 'job:rerun' (line 12)"
        assert decision.considered == [
            "ai_agent.approval_required 'job:rerun' (line 12)",
            "ai_agent.allowed_actions 'job:rerun' (line 6)",
        ]

    def test_unlisted_action_is_default_deny(self, policy: Policy):
        """approval:approve matches no rule: denied, saying so."""
        decision = policy.decide("ai-agent", "approval:approve")
        assert decision.outcome is Outcome.DENY
        assert decision.rule == "default deny: no rule of ai_agent matches approval:approve"
        assert decision.considered == []

    def test_other_actors_hold_nothing(self, policy: Policy):
        """Only `ai-agent` holds the role; anyone else, even `ai_agent`, is denied."""
        for actor in ("ai_agent", "alice", OS_USER):
            decision = policy.decide(actor, "session:list")
            assert decision.outcome is Outcome.DENY
            assert decision.roles == []
            assert decision.kind is None
            assert decision.rule == f"default deny: actor {actor!r} has no role"


# --- 2. the shipped default policy ---------------------------------------------------------


class TestDefaultPolicy:
    @pytest.fixture
    def policy(self) -> Policy:
        return load_policy(DEFAULT_POLICY, KNOWN)

    def test_the_gateway_uses_this_file(self):
        """With no policy given, the gateway reads the repository's policies/default.yaml."""
        assert shipped_file("policies/default.yaml").read_text(
            encoding="utf-8"
        ) == DEFAULT_POLICY.read_text(encoding="utf-8")

    @pytest.mark.parametrize(
        "action",
        ["job:update-config", "job:rerun", "session:rerun", "recovery:execute", "job:mark"],
    )
    def test_ai_agent_needs_approval_for_changes(self, policy: Policy, action: str):
        """Changing jobs, reruns and recovery need a human's approval for ai-agent."""
        decision = policy.decide("ai-agent", action)
        assert decision.outcome is Outcome.APPROVAL_REQUIRED
        assert decision.rule.startswith(f"ai_agent.approval_required {action!r} (line ")

    @pytest.mark.parametrize(
        "action", ["session:list", "error:analyze", "recovery:suggest", "approval:show"]
    )
    def test_ai_agent_may_read(self, policy: Policy, action: str):
        """Reads are allowed to ai-agent outright."""
        assert outcome(policy, "ai-agent", action) is Outcome.ALLOW

    @pytest.mark.parametrize(
        "action",
        ["pipeline:delete", "config:modify_critical", "approval:approve", "approval:reject"],
    )
    def test_ai_agent_is_denied_destruction_and_approving(self, policy: Policy, action: str):
        """Deleting, critical config and deciding tickets are denied to ai-agent."""
        decision = policy.decide("ai-agent", action)
        assert decision.outcome is Outcome.DENY
        assert decision.kind is ActorKind.AGENT
        assert f"ai_agent.denied_actions {action!r}" in decision.considered[0]

    def test_ai_agent_is_never_allowed_to_decide_tickets_by_any_rule(self, policy: Policy):
        """No action ai-agent may run (or request) is a ticket decision."""
        reachable = {a for a in KNOWN if outcome(policy, "ai-agent", a) is not Outcome.DENY}
        assert not reachable & {"approval:approve", "approval:reject"}

    @pytest.mark.parametrize("action", ["job:rerun", "approval:approve", "session:rerun"])
    def test_os_user_is_a_human_operator(self, policy: Policy, action: str):
        """The local user (`$OS_USER`) is human and may rerun and approve without a ticket."""
        decision = policy.decide(OS_USER, action)
        assert decision.outcome is Outcome.ALLOW
        assert decision.kind is ActorKind.HUMAN
        assert decision.roles == ["operator", "approver"]

    def test_os_user_still_cannot_do_reserved_actions(self, policy: Policy):
        """Even the operator role ("*") cannot delete pipelines or modify critical config."""
        for action in sorted(RESERVED_ACTIONS):
            assert outcome(policy, OS_USER, action) is Outcome.DENY

    def test_unknown_actor_is_denied_everything(self, policy: Policy):
        """An actor no entry names is denied every action, by default deny."""
        for action in EVERY_ACTION:
            decision = policy.decide("mallory", action)
            assert decision.outcome is Outcome.DENY, action
            assert decision.kind is None
            assert decision.roles == []
        for action in KNOWN:
            assert policy.decide("mallory", action).rule.startswith("default deny"), action


# --- 3. load errors -----------------------------------------------------------------------


class TestLoadErrors:
    def test_unknown_key_in_role(self):
        """A misspelt key in a role block is refused at its line."""
        problems = problems_of(
            """\
            viewer:
              kind: human
              allowed_action: [session:list]
            """
        )
        assert len(problems) == 1
        assert problems[0]["line"] == 3
        assert "unknown key 'allowed_action' in role 'viewer'" in problems[0]["message"]

    def test_pattern_matching_no_action(self):
        """A pattern no bunsui action matches (a typo) is refused at its line."""
        problems = problems_of(
            """\
            viewer:
              kind: human
              allowed_actions:
                - session:list
                - session:explode
            """
        )
        assert problems == [{"line": 5, "message": "'session:explode' matches no bunsui action"}]

    @pytest.mark.parametrize("pattern", ["sessionlist", "list", "session"])
    def test_pattern_without_colon(self, pattern: str):
        """A pattern that is not `resource:verb` (nor `*`) is refused at its line."""
        problems = problems_of(f"viewer:\n  kind: human\n  denied_actions: [{pattern}]\n")
        assert problems == [{"line": 3, "message": f"{pattern!r} is not `resource:verb` (or `*`)"}]

    def test_unknown_role_in_actors(self):
        """An actor granted a role that is not defined is refused at the actor's line."""
        problems = problems_of(
            """\
            viewer:
              kind: human
              allowed_actions: [session:list]
            actors:
              alice: viewer
              bob: [viewer, admin]
            """
        )
        assert problems == [{"line": 6, "message": "actor 'bob' names unknown role 'admin'"}]

    def test_duplicate_role(self):
        """A role defined twice is refused at the second definition."""
        problems = problems_of(
            """\
            viewer:
              kind: human
              allowed_actions: [session:list]
            viewer:
              kind: human
              allowed_actions: ["*"]
            """
        )
        assert problems == [{"line": 4, "message": "duplicate key 'viewer' (first at line 1)"}]

    @pytest.mark.parametrize("kind", ["robot", "Human", "admin", "[human]"])
    def test_kind_is_human_or_agent(self, kind: str):
        """Any kind but human or agent is refused at its line."""
        problems = problems_of(f"viewer:\n  allowed_actions: [session:list]\n  kind: {kind}\n")
        assert problems == [{"line": 3, "message": "kind must be human or agent"}]

    @pytest.mark.parametrize(
        ("text", "line"),
        [
            ("viewer:\n  kind: human: x\n", 2),
            ("viewer:\n  kind: human\n allowed_actions: [session:list]\n", 3),
            ("viewer:\n  kind: human\n  allowed_actions: [session:list\n  denied_actions: []\n", 4),
        ],
    )
    def test_malformed_yaml(self, text: str, line: int):
        """YAML that does not parse is refused, naming where the parser stopped."""
        problems = problems_of(text)
        assert len(problems) == 1
        assert problems[0]["line"] == line
        assert problems[0]["message"].startswith("malformed YAML: ")

    @pytest.mark.parametrize(
        ("text", "line"),
        [("- viewer\n- operator\n", 1), ("just text\n", 1), ("", 0), ("# only a comment\n", 0)],
    )
    def test_document_must_be_a_mapping(self, text: str, line: int):
        """A list, a scalar or an empty file is not a policy: refused, not an allow-nothing."""
        assert problems_of(text) == [
            {"line": line, "message": "a policy is a mapping of role blocks (and `actors:`)"}
        ]

    @pytest.mark.parametrize(
        ("text", "line", "message"),
        [
            ("viewer: [session:list]\n", 1, "role 'viewer' must be a mapping of rule lists"),
            (
                "viewer:\n  allowed_actions: session:list\n",
                2,
                "a rule list must be a list of action patterns",
            ),
            ("v: {}\nread_only: maybe\n", 2, "read_only must be true or false"),
            ("v: {}\nactors: [alice]\n", 2, "actors must map actor names (or patterns) to roles"),
            (
                "v: {}\nactors:\n  alice: {role: v}\n",
                3,
                "an actor's roles are a role name or a list of role names",
            ),
            (
                "'bad role':\n  allowed_actions: [session:list]\n",
                1,
                "'bad role' is not a role name",
            ),
        ],
    )
    def test_other_shapes_are_refused(self, text: str, line: int, message: str):
        """Wrong shapes anywhere are refused with a line, never silently ignored."""
        assert problems_of(text) == [{"line": line, "message": message}]

    def test_every_problem_reported_at_once(self):
        """Six problems in one file are all listed, in file order, each with its line."""
        text = """\
            viewer:
              allowed_actions: [session:list]
              bogus: 1
              denied_actions: [session:explode, jobrerun]
              kind: robot
            viewer:
              kind: human
            actors:
              alice: [viewer, nope]
            """
        with pytest.raises(PolicyInvalidError) as caught:
            parse(text)
        problems = caught.value.details["problems"]
        assert [(p["line"], p["message"]) for p in problems] == [
            (
                3,
                "unknown key 'bogus' in role 'viewer' (known: ['allowed_actions', "
                "'approval_required', 'denied_actions', 'description', 'kind', 'limits'])",
            ),
            (4, "'session:explode' matches no bunsui action"),
            (4, "'jobrerun' is not `resource:verb` (or `*`)"),
            (5, "kind must be human or agent"),
            (6, "duplicate key 'viewer' (first at line 1)"),
            (9, "actor 'alice' names unknown role 'nope'"),
        ]
        assert len(problems) == 6
        assert str(caught.value).startswith("test.yaml: 6 problems in policy; first at line 3: ")

    def test_unreadable_file_fails_closed(self, tmp_path: Path):
        """A missing policy file is POLICY_INVALID too, not an empty policy."""
        missing = tmp_path / "nope.yaml"
        with pytest.raises(PolicyInvalidError) as caught:
            load_policy(missing, KNOWN)
        assert caught.value.code == ErrorCode.POLICY_INVALID
        assert caught.value.details == {"source": str(missing), "problems": []}


class TestLivePolicy:
    """A running server's policy: a stat per call, the bytes again only when it changed;
    with the home's cache of compiled policies (as the gateway has it) and without."""

    ALLOW = "ai_agent:\n  allowed_actions: [session:list]\n"
    DENY = "ai_agent:\n  denied_actions:  [session:list]\n"

    @pytest.fixture(params=["cached", "uncached"])
    def make_live(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        cache = (
            PolicyCache(tmp_path / "cache", writable=True) if request.param == "cached" else None
        )
        return lambda path: LivePolicy(path, lambda: KNOWN, cache)

    def decision(self, live: LivePolicy) -> Outcome:
        return live.current().decide("ai-agent", "session:list").outcome

    def test_an_unchanged_file_is_not_compiled_again(self, tmp_path: Path, make_live: Any):
        """An old file whose stat is unchanged: the very same compiled policy each call."""
        path = tmp_path / "policy.yaml"
        path.write_text(self.ALLOW)
        os.utime(path, ns=(10**18, 10**18))
        live = make_live(path)
        first = live.current()
        assert live.current() is first
        assert first.decide("ai-agent", "session:list").outcome is Outcome.ALLOW

    def test_a_same_size_edit_with_its_old_mtime_still_applies(
        self, tmp_path: Path, make_live: Any
    ):
        """An edit that keeps the size and puts the old mtime back (touch -r) is seen: the
        change time, which no user can set, is part of what is compared."""
        assert len(self.ALLOW) == len(self.DENY)
        path = tmp_path / "policy.yaml"
        path.write_text(self.ALLOW)
        os.utime(path, ns=(10**18, 10**18))
        live = make_live(path)
        assert self.decision(live) is Outcome.ALLOW
        path.write_text(self.DENY)
        os.utime(path, ns=(10**18, 10**18))
        assert self.decision(live) is Outcome.DENY

    def test_a_fresh_same_size_edit_applies_even_within_one_timestamp_tick(
        self, tmp_path: Path, make_live: Any
    ):
        """Two writes within one filesystem timestamp tick can share every stat field; a file
        changed in the last seconds is therefore hashed on each use, not trusted by stat."""
        path = tmp_path / "policy.yaml"
        live = make_live(path)
        for _ in range(20):
            path.write_text(self.ALLOW)
            assert self.decision(live) is Outcome.ALLOW
            path.write_text(self.DENY)
            assert self.decision(live) is Outcome.DENY

    def test_a_broken_or_missing_file_fails_every_use_until_fixed(
        self, tmp_path: Path, make_live: Any
    ):
        """Invalid, then deleted: POLICY_INVALID each time (never the last good policy)."""
        path = tmp_path / "policy.yaml"
        path.write_text(self.ALLOW)
        live = make_live(path)
        assert self.decision(live) is Outcome.ALLOW
        path.write_text(self.ALLOW + "  bogus: [\n")
        for _ in range(2):
            with pytest.raises(PolicyInvalidError):
                live.current()
        path.unlink()
        with pytest.raises(PolicyInvalidError) as caught:
            live.current()
        assert caught.value.details == {"source": str(path), "problems": []}
        path.write_text(self.ALLOW)
        assert self.decision(live) is Outcome.ALLOW


class TestPolicyCache:
    """Compiled policies kept in the home: a CLI call whose policy did not change skips the
    YAML parser, and nothing about the cache can make a policy other than its file says."""

    def compile(self, text: str, cache: PolicyCache, source: str = "p.yaml") -> Policy:
        return compile_policy(text, source=source, known_actions=KNOWN, cache=cache)

    def test_a_process_with_a_cached_compile_never_imports_yaml(self, tmp_path: Path):
        """The second process finds the first one's compile and never loads the parser."""
        policy = tmp_path / "policy.yaml"
        policy.write_text(TestLivePolicy.ALLOW)
        code = (
            "import sys\n"
            "from pathlib import Path\n"
            "from bunsui_core.actions import REGISTRY\n"
            "from bunsui_core.governance.policy_file import LivePolicy, PolicyCache\n"
            f"cache = PolicyCache(Path({str(tmp_path / 'cache')!r}), writable=True)\n"
            f"live = LivePolicy(Path({str(policy)!r}), REGISTRY.names, cache)\n"
            "print(live.current().decide('ai-agent', 'session:list').outcome, "
            "'yaml' in sys.modules)\n"
        )
        runs = [
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
            for _ in range(2)
        ]
        assert [run.stdout.split() for run in runs] == [["allow", "True"], ["allow", "False"]]

    def test_an_edit_is_compiled_again(self, tmp_path: Path):
        """Same path, new text: the cached compile of the old text is not used."""
        cache = PolicyCache(tmp_path / "cache", writable=True)
        assert (
            self.compile(TestLivePolicy.ALLOW, cache).decide("ai-agent", "session:list").outcome
            is Outcome.ALLOW
        )
        denied = self.compile(TestLivePolicy.DENY, cache)
        assert denied.decide("ai-agent", "session:list").outcome is Outcome.DENY
        assert self.compile(TestLivePolicy.DENY, cache) == denied

    def test_an_entry_for_another_text_or_a_broken_one_is_ignored(self, tmp_path: Path):
        """A cache entry left by the allowing text, copied over the denying text's key, or
        garbage: the denying file still denies."""
        cache = PolicyCache(tmp_path / "cache", writable=True)
        self.compile(TestLivePolicy.ALLOW, cache)
        [entry] = (tmp_path / "cache").iterdir()
        for content in (entry.read_bytes(), b"{not json", b'{"key": 1}', b"[]"):
            entry.write_bytes(content)
            outcome = self.compile(TestLivePolicy.DENY, cache).decide("ai-agent", "session:list")
            assert outcome.outcome is Outcome.DENY

    def test_the_cache_is_the_owners_alone(self, tmp_path: Path):
        cache = PolicyCache(tmp_path / "cache", writable=True)
        self.compile(TestLivePolicy.ALLOW, cache)
        [entry] = (tmp_path / "cache").iterdir()
        assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700
        assert entry.stat().st_mode & 0o777 == 0o600

    def test_read_only_mode_and_a_read_only_policy_write_nothing(self, tmp_path: Path):
        """Read-only mode (flag or the policy's own `read_only: true`) writes nothing at all,
        not even a cache entry."""
        self.compile(TestLivePolicy.ALLOW, PolicyCache(tmp_path / "ro", writable=False))
        writable = PolicyCache(tmp_path / "cache", writable=True)
        self.compile("read_only: true\n" + TestLivePolicy.ALLOW, writable)
        assert not (tmp_path / "ro").exists()
        assert not (tmp_path / "cache").exists()

    def test_an_invalid_policy_is_never_cached(self, tmp_path: Path):
        """It fails every use until fixed, never served from an earlier compile."""
        cache = PolicyCache(tmp_path / "cache", writable=True)
        for _ in range(2):
            with pytest.raises(PolicyInvalidError):
                self.compile(TestLivePolicy.ALLOW + "  bogus: [\n", cache)
        assert not (tmp_path / "cache").exists()


class TestAgentsCannotApprove:
    def test_agent_with_everything_is_refused(self):
        """An agent role allowed "*" without denying approval:* could approve: refused."""
        problems = problems_of(
            """\
            bot:
              kind: agent
              allowed_actions: ["*"]
            """
        )
        assert [p["line"] for p in problems] == [2, 2]
        assert [p["message"] for p in problems] == [
            f"role 'bot' is of kind agent but bot.allowed_actions '*' (line 3) lets it reach "
            f"{action}; agents can never approve (deny it or make the role human)"
            for action in ("approval:approve", "approval:reject")
        ]

    def test_kind_defaults_to_agent(self):
        """A role without `kind` is an agent, so it too may not reach approval:approve."""
        problems = problems_of("bot:\n  allowed_actions: [approval:approve]\n")
        assert len(problems) == 1
        assert "reach approval:approve" in problems[0]["message"]

    @pytest.mark.parametrize("listing", ["approval_required", "allowed_actions"])
    @pytest.mark.parametrize("pattern", ["approval:*", "approval:re*", "*"])
    def test_requesting_approval_to_approve_is_refused_too(self, listing: str, pattern: str):
        """Only a deny makes approval:* safe for an agent; approval_required is not enough."""
        problems = problems_of(f"bot:\n  kind: agent\n  {listing}: ['{pattern}']\n")
        assert any("reach approval:reject" in p["message"] for p in problems)

    def test_agent_with_everything_but_approval_loads(self):
        """The same role with `denied_actions: ["approval:*"]` loads and is never let approve."""
        policy = parse(
            """\
            bot:
              kind: agent
              allowed_actions: ["*"]
              denied_actions: ["approval:*"]
            """
        )
        assert policy.kind_of("bot") is ActorKind.AGENT
        assert outcome(policy, "bot", "approval:approve") is Outcome.DENY
        assert outcome(policy, "bot", "approval:reject") is Outcome.DENY
        assert outcome(policy, "bot", "approval:list") is Outcome.DENY
        assert outcome(policy, "bot", "job:rerun") is Outcome.ALLOW

    def test_human_with_everything_loads(self):
        """A human role with "*" loads and may approve (reserved actions stay denied)."""
        policy = parse('admin:\n  kind: human\n  allowed_actions: ["*"]\n')
        assert policy.kind_of("admin") is ActorKind.HUMAN
        for action in KNOWN:
            assert outcome(policy, "admin", action) is Outcome.ALLOW, action
        for action in sorted(RESERVED_ACTIONS):
            decision = policy.decide("admin", action)
            assert decision.outcome is Outcome.DENY
            assert decision.rule == f"{action} is never allowed through bunsui"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # the reviewer sees `kind: agent`; the role loads as human and may approve
        ("bot:\n  kind: agent\n  allowed_actions: ['*']\n  kind: human\n", 4),
        # the reviewer sees `read_only: true`; the policy is not read-only
        (
            "read_only: true\nv:\n  kind: human\n  allowed_actions: [session:list]\n"
            "read_only: false\n",
            5,
        ),
        # the first `actors:` block is dropped without a word
        (
            "v:\n  kind: human\n  allowed_actions: [session:list]\nactors:\n  alice: v\n"
            "actors:\n  bob: v\n",
            6,
        ),
    ],
    ids=["kind", "read_only", "actors"],
)
def test_duplicate_keys_are_refused(text: str, line: int):
    """A key written twice in one mapping is refused at the second, like a duplicate role
    (the `kind` case is also an agent role reaching approval: both are reported)."""
    problems = problems_of(text)
    duplicates = [p for p in problems if p["message"].startswith("duplicate key")]
    assert [p["line"] for p in duplicates] == [line]


# --- 4. wildcards and precedence ----------------------------------------------------------


class TestPrecedence:
    def test_resource_wildcard(self):
        """`session:*` covers every session action and nothing else."""
        policy = parse("v:\n  kind: human\n  allowed_actions: ['session:*']\n")
        allowed = {a for a in KNOWN if outcome(policy, "v", a) is Outcome.ALLOW}
        assert allowed == {a for a in KNOWN if a.startswith("session:")}
        assert "session:list" in allowed

    def test_star_covers_everything(self):
        """`*` covers every action bunsui offers."""
        policy = parse("v:\n  kind: human\n  approval_required: ['*']\n")
        assert {outcome(policy, "v", a) for a in KNOWN} == {Outcome.APPROVAL_REQUIRED}

    def test_deny_wildcard_beats_exact_allow(self):
        """Deny `job:*` beats allow `job:rerun` in the same role."""
        policy = parse(
            """\
            v:
              kind: human
              allowed_actions: [job:rerun, session:list]
              denied_actions: ['job:*']
            """
        )
        decision = policy.decide("v", "job:rerun")
        assert decision.outcome is Outcome.DENY
        assert decision.rule == "v.denied_actions 'job:*' (line 4)"
        assert decision.considered == [
            "v.denied_actions 'job:*' (line 4)",
            "v.allowed_actions 'job:rerun' (line 3)",
        ]
        assert outcome(policy, "v", "session:list") is Outcome.ALLOW

    POLICY_TWO_ROLES = """\
        runner:
          kind: human
          allowed_actions: ['job:*', 'session:*']
        careful:
          kind: human
          approval_required: [job:rerun]
          denied_actions: [session:cancel]
        actors:
          alice: [runner, careful]
          bob: runner
        """

    def test_approval_required_beats_allow_across_roles(self):
        """An actor holding two roles: one's approval_required beats the other's allow."""
        policy = parse(self.POLICY_TWO_ROLES)
        decision = policy.decide("alice", "job:rerun")
        assert decision.roles == ["runner", "careful"]
        assert decision.outcome is Outcome.APPROVAL_REQUIRED
        assert decision.rule == "careful.approval_required 'job:rerun' (line 6)"
        assert outcome(policy, "alice", "job:list") is Outcome.ALLOW
        assert outcome(policy, "bob", "job:rerun") is Outcome.ALLOW

    def test_deny_in_one_role_beats_allow_in_another(self):
        """Deny in one role beats allow in another role of the same actor."""
        policy = parse(self.POLICY_TWO_ROLES)
        decision = policy.decide("alice", "session:cancel")
        assert decision.outcome is Outcome.DENY
        assert decision.rule == "careful.denied_actions 'session:cancel' (line 7)"
        assert outcome(policy, "bob", "session:cancel") is Outcome.ALLOW

    def test_deny_beats_approval_required(self):
        """Deny beats approval_required, in one role and across roles."""
        policy = parse(
            """\
            asks:
              kind: human
              approval_required: ['session:*']
              denied_actions: [session:cancel]
            blocks:
              kind: human
              denied_actions: [session:rerun]
            actors:
              alice: [asks, blocks]
            """
        )
        assert outcome(policy, "alice", "session:cancel") is Outcome.DENY
        assert outcome(policy, "alice", "session:rerun") is Outcome.DENY
        assert outcome(policy, "alice", "session:list") is Outcome.APPROVAL_REQUIRED

    def test_roles_from_several_matching_actor_patterns_add_up(self):
        """Actor keys are fnmatch patterns; every matching entry grants its roles."""
        policy = parse(
            """\
            reader:
              kind: agent
              allowed_actions: ['session:*']
            no_cancel:
              kind: agent
              denied_actions: [session:cancel]
            actors:
              bot-*: reader
              bot-7: [no_cancel, reader]
            """
        )
        assert policy.decide("bot-7", "session:list").roles == ["reader", "no_cancel"]
        assert outcome(policy, "bot-7", "session:cancel") is Outcome.DENY
        assert outcome(policy, "bot-1", "session:cancel") is Outcome.ALLOW
        assert outcome(policy, "bot", "session:list") is Outcome.DENY

    def test_mixed_kinds_make_an_agent(self):
        """An actor holding any agent role is of kind agent."""
        policy = parse(
            """\
            reader:
              allowed_actions: [session:list]
            admin:
              kind: human
              allowed_actions: [session:list]
            actors:
              alice: admin
              bot: [admin, reader]
            """
        )
        assert policy.kind_of("alice") is ActorKind.HUMAN
        assert policy.kind_of("bot") is ActorKind.AGENT
        assert policy.kind_of("carol") is None

    def test_os_user_placeholder(self):
        """`$OS_USER` stands for the local user, not for an actor literally named so."""
        policy = parse(
            "admin:\n  kind: human\n  allowed_actions: ['*']\nactors:\n  $OS_USER: admin\n"
        )
        assert outcome(policy, OS_USER, "job:rerun") is Outcome.ALLOW
        assert outcome(policy, "$OS_USER", "job:rerun") is Outcome.DENY

    def test_empty_actors_grants_nothing(self):
        """With `actors:` present, role names are no longer actors."""
        policy = parse("viewer:\n  kind: human\n  allowed_actions: [session:list]\nactors: {}\n")
        assert outcome(policy, "viewer", "session:list") is Outcome.DENY

    def test_reserved_actions_always_denied(self):
        """pipeline:delete may be allowed in a file, yet is always denied."""
        policy = parse("v:\n  kind: human\n  allowed_actions: [pipeline:delete, 'pipeline:*']\n")
        decision = policy.decide("v", "pipeline:delete")
        assert decision.outcome is Outcome.DENY
        assert decision.rule == "pipeline:delete is never allowed through bunsui"
        assert outcome(policy, "v", "pipeline:list") is Outcome.ALLOW

    def test_read_only_flag(self):
        """`read_only: true` is carried on the policy."""
        assert parse("read_only: true\nv: {}\n").read_only is True
        assert parse("read_only: false\nv: {}\n").read_only is False


# --- 5. properties ------------------------------------------------------------------------

ROLE_NAMES = ["alpha", "beta", "gamma", "delta"]
LISTS = ["allowed_actions", "denied_actions", "approval_required"]
PATTERNS = [
    "session:list",
    "session:rerun",
    "session:cancel",
    "job:rerun",
    "job:list",
    "approval:approve",
    "approval:show",
    "error:analyze",
    "pipeline:delete",
    "config:modify_critical",
    "session:*",
    "job:*",
    "approval:*",
    "error:*",
    "pipeline:*",
    "*:list",
    "job:re*",
    "*",
]
ACTOR_PATTERNS = ["alice", "bob", "bot-*", "bot-1"]
ACTORS = ["alice", "bob", "bot-1", "bot-2", "carol"]


@st.composite
def policy_data(draw: st.DrawFn) -> dict[str, Any]:
    """A random policy document as Python data: roles with rule lists, and actor bindings."""
    names = draw(st.lists(st.sampled_from(ROLE_NAMES), min_size=1, max_size=4, unique=True))
    data: dict[str, Any] = {}
    for name in names:
        block: dict[str, Any] = {}
        kind = draw(st.sampled_from([None, "human", "agent"]))
        if kind is not None:
            block["kind"] = kind
        for listing in LISTS:
            if draw(st.booleans()):
                block[listing] = draw(st.lists(st.sampled_from(PATTERNS), max_size=4))
        data[name] = block
    data["actors"] = draw(
        st.dictionaries(
            st.sampled_from(ACTOR_PATTERNS),
            st.one_of(
                st.sampled_from(names),
                st.lists(st.sampled_from(names), min_size=1, max_size=3),
            ),
            max_size=4,
        )
    )
    return data


def load_data(data: dict[str, Any]) -> Policy:
    """Dump the data to YAML and parse it; documents that are refused are skipped."""
    try:
        return parse_policy(
            yaml.safe_dump(data, sort_keys=False), source="prop.yaml", known_actions=KNOWN
        )
    except PolicyInvalidError:
        assume(False)
        raise  # unreachable: assume(False) raises


def held_roles(data: dict[str, Any], actor: str) -> list[str]:
    """The roles an actor holds, straight from the data."""
    held: list[str] = []
    for pattern, roles in data["actors"].items():
        if fnmatch.fnmatchcase(actor, pattern):
            held += [roles] if isinstance(roles, str) else roles
    return held


def patterns(data: dict[str, Any], roles: list[str], listing: str) -> list[str]:
    """Every pattern in one list of the given roles."""
    return [p for role in roles for p in data[role].get(listing, [])]


def matches(action: str, pats: list[str]) -> bool:
    """Whether any pattern covers the action."""
    return any(fnmatch.fnmatchcase(action, p) for p in pats)


def expected_outcome(data: dict[str, Any], roles: list[str], action: str) -> Outcome:
    """The documented decision, computed from the data alone."""
    if action in RESERVED_ACTIONS or not roles:
        return Outcome.DENY
    for listing, result in [
        ("denied_actions", Outcome.DENY),
        ("approval_required", Outcome.APPROVAL_REQUIRED),
        ("allowed_actions", Outcome.ALLOW),
    ]:
        if matches(action, patterns(data, roles, listing)):
            return result
    return Outcome.DENY


PROPERTY_SETTINGS = hypothesis.settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


class TestProperties:
    @PROPERTY_SETTINGS
    @given(policy_data())
    def test_allow_only_from_an_allow_rule_and_nothing_stronger(self, data: dict[str, Any]):
        """ALLOW => an allowed pattern of a held role matches, and no deny/approval pattern."""
        policy = load_data(data)
        for actor in ACTORS:
            roles = held_roles(data, actor)
            for action in EVERY_ACTION:
                if outcome(policy, actor, action) is not Outcome.ALLOW:
                    continue
                assert matches(action, patterns(data, roles, "allowed_actions"))
                assert not matches(action, patterns(data, roles, "denied_actions"))
                assert not matches(action, patterns(data, roles, "approval_required"))
                assert action not in RESERVED_ACTIONS

    @PROPERTY_SETTINGS
    @given(policy_data())
    def test_any_matching_deny_denies(self, data: dict[str, Any]):
        """A deny pattern of any held role matching the action => DENY."""
        policy = load_data(data)
        for actor in ACTORS:
            denied = patterns(data, held_roles(data, actor), "denied_actions")
            for action in EVERY_ACTION:
                if matches(action, denied):
                    assert outcome(policy, actor, action) is Outcome.DENY, (actor, action)

    @PROPERTY_SETTINGS
    @given(policy_data())
    def test_nothing_outside_the_allowed_lists_is_allowed(self, data: dict[str, Any]):
        """Everything allowed to anyone is covered by one of that actor's allowed lists."""
        policy = load_data(data)
        for actor in [*ACTORS, "mallory", "$OS_USER", ""]:
            allowed_lists = patterns(data, held_roles(data, actor), "allowed_actions")
            allowed = {a for a in EVERY_ACTION if outcome(policy, actor, a) is Outcome.ALLOW}
            assert allowed <= {a for a in EVERY_ACTION if matches(a, allowed_lists)}
            assert not allowed & RESERVED_ACTIONS
            if not held_roles(data, actor):
                assert allowed == set()

    @PROPERTY_SETTINGS
    @given(policy_data())
    def test_outcome_follows_the_precedence_rule(self, data: dict[str, Any]):
        """Reserved, no role or no match => deny; otherwise deny > approval_required > allow."""
        policy = load_data(data)
        for actor in ACTORS:
            roles = held_roles(data, actor)
            for action in EVERY_ACTION:
                expected = expected_outcome(data, roles, action)
                assert outcome(policy, actor, action) is expected, (actor, action)

    @PROPERTY_SETTINGS
    @given(policy_data(), st.randoms(use_true_random=False))
    def test_deterministic_and_independent_of_order(self, data: dict[str, Any], rnd: Any):
        """Same file, same decisions; reordering roles, lists, rules and actors changes none."""
        policy = load_data(data)
        again = load_data(data)
        shuffled: dict[str, Any] = {}
        role_names = [n for n in data if n != "actors"]
        rnd.shuffle(role_names)
        for name in role_names:
            items = list(data[name].items())
            rnd.shuffle(items)
            shuffled[name] = {
                k: rnd.sample(v, len(v)) if isinstance(v, list) else v for k, v in items
            }
        bindings = list(data["actors"].items())
        rnd.shuffle(bindings)
        shuffled["actors"] = {
            k: rnd.sample(v, len(v)) if isinstance(v, list) else v for k, v in bindings
        }
        if rnd.random() < 0.5:
            shuffled = {"actors": shuffled.pop("actors"), **shuffled}
        reordered = load_data(shuffled)
        for actor in [*ACTORS, "mallory"]:
            assert reordered.kind_of(actor) is policy.kind_of(actor)
            assert {r.name for r in reordered.roles_of(actor)} == {
                r.name for r in policy.roles_of(actor)
            }
            for action in EVERY_ACTION:
                first = policy.decide(actor, action)
                assert again.decide(actor, action) == first
                assert policy.decide(actor, action) == first
                assert reordered.decide(actor, action).outcome is first.outcome, (actor, action)


# --- 6. through the gateway ---------------------------------------------------------------


class TestGateway:
    @pytest.fixture
    def gateway(self, tmp_path: Path) -> Gateway:
        return Gateway(Settings.resolve(tmp_path / "home", policy=DEFAULT_POLICY))

    def test_policy_check_names_the_deciding_rule(self, gateway: Gateway):
        """policy:check says approval_required for ai-agent's job:rerun, naming role/list/line."""
        line = line_of(DEFAULT_POLICY.read_text(encoding="utf-8"), '"job:rerun"')
        decision = gateway.invoke(
            OS_USER, "policy:check", {"actor": "ai-agent", "action": "job:rerun"}
        )
        assert isinstance(decision, Decision)
        assert decision.outcome is Outcome.APPROVAL_REQUIRED
        assert decision.actor == "ai-agent"
        assert decision.action == "job:rerun"
        assert decision.kind is ActorKind.AGENT
        assert decision.roles == ["ai_agent"]
        assert decision.rule == f"ai_agent.approval_required 'job:rerun' (line {line})"
        assert decision.considered == [decision.rule]

    def test_policy_check_of_a_reserved_action(self, gateway: Gateway):
        """policy:check answers for names bunsui does not offer, like pipeline:delete."""
        decision = gateway.invoke(
            OS_USER, "policy:check", {"actor": "ai-agent", "action": "pipeline:delete"}
        )
        assert decision.outcome is Outcome.DENY
        assert decision.rule == "pipeline:delete is never allowed through bunsui"

    def test_policy_explain_lists_every_action(self, gateway: Gateway):
        """policy:explain gives the decision for every registry action, in registry order."""
        explanation = gateway.invoke(OS_USER, "policy:explain", {"actor": "ai-agent"})
        policy = load_policy(DEFAULT_POLICY, KNOWN)
        assert explanation.source == str(DEFAULT_POLICY)
        assert explanation.policy_hash == policy.hash
        assert explanation.read_only is False
        assert explanation.actor == "ai-agent"
        assert explanation.kind == "agent"
        assert explanation.roles == ["ai_agent"]
        assert [d.action for d in explanation.decisions] == KNOWN
        assert explanation.decisions == [policy.decide("ai-agent", a) for a in KNOWN]
        by_action = {d.action: d.outcome for d in explanation.decisions}
        assert by_action["job:rerun"] is Outcome.APPROVAL_REQUIRED
        assert by_action["session:list"] is Outcome.ALLOW
        assert by_action["approval:approve"] is Outcome.DENY

    def test_policy_explain_defaults_to_the_caller(self, gateway: Gateway):
        """Without an actor, policy:explain explains the caller."""
        explanation = gateway.invoke(OS_USER, "policy:explain", {})
        assert explanation.actor == OS_USER
        assert explanation.kind == "human"
        assert explanation.roles == ["operator", "approver"]

    def test_denied_call_names_the_rule(self, gateway: Gateway):
        """ai-agent calling approval:approve is PERMISSION_DENIED by its deny rule."""
        line = line_of(DEFAULT_POLICY.read_text(encoding="utf-8"), '"approval:approve"')
        with pytest.raises(PermissionDeniedError) as caught:
            gateway.invoke("ai-agent", "approval:approve", {"ticket_id": "tkt_x"})
        assert caught.value.code == ErrorCode.PERMISSION_DENIED
        rule = f"ai_agent.denied_actions 'approval:approve' (line {line})"
        assert caught.value.details == {
            "actor": "ai-agent",
            "action": "approval:approve",
            "rule": rule,
        }

    def test_unknown_caller_is_denied_even_reads(self, gateway: Gateway):
        """An actor with no role cannot even run policy:check."""
        with pytest.raises(PermissionDeniedError) as caught:
            gateway.invoke("mallory", "policy:check", {"actor": "x", "action": "job:rerun"})
        assert caught.value.details["rule"] == "default deny: actor 'mallory' has no role"

    @pytest.mark.parametrize(
        ("actor", "action", "args"),
        [
            (OS_USER, "policy:check", {"actor": "ai-agent", "action": "job:rerun"}),
            (OS_USER, "policy:explain", {}),
            (OS_USER, "session:list", {}),
            (OS_USER, "approval:list", {}),
            ("ai-agent", "session:list", {}),
            (OS_USER, "no:such-action", {}),
        ],
    )
    def test_broken_policy_fails_every_call_closed(
        self, tmp_path: Path, actor: str, action: str, args: dict[str, Any]
    ):
        """With a broken policy file every call, reads included, is POLICY_INVALID."""
        path = tmp_path / "policy.yaml"
        path.write_text(
            DEFAULT_POLICY.read_text(encoding="utf-8").replace(
                '"session:list"', '"session:lst"', 1
            ),
            encoding="utf-8",
        )
        line = line_of(path.read_text(encoding="utf-8"), '"session:lst"')
        gateway = Gateway(Settings.resolve(tmp_path / "home", policy=path))
        for _ in range(2):  # still refused on a second call: a failure is not cached as a pass
            with pytest.raises(BunsuiError) as caught:
                gateway.invoke(actor, action, args)
            assert caught.value.code == ErrorCode.POLICY_INVALID
            assert caught.value.details["problems"] == [
                {"line": line, "message": "'session:lst' matches no bunsui action"}
            ]

    def test_missing_policy_file_fails_closed(self, tmp_path: Path):
        """A policy path that does not exist fails every call with POLICY_INVALID."""
        gateway = Gateway(Settings.resolve(tmp_path / "home", policy=tmp_path / "absent.yaml"))
        with pytest.raises(BunsuiError) as caught:
            gateway.invoke(OS_USER, "session:list", {})
        assert caught.value.code == ErrorCode.POLICY_INVALID


class TestLimits:
    def test_limits_load_and_the_strictest_role_wins(self):
        """An actor with two roles is held to the smaller budget of each kind."""
        policy = parse(
            """\
            a:
              allowed_actions: [session:list]
              limits: {reruns_per_hour: 10, claims_max: 3}
            b:
              allowed_actions: [session:list]
              limits: {reruns_per_hour: 4, tickets_pending_max: 2}
            actors:
              bot: [a, b]
            """
        )
        limits = policy.limits_of("bot")
        assert (limits.reruns_per_hour, limits.tickets_pending_max, limits.claims_max) == (4, 2, 3)
        assert policy.limits_of("nobody").reruns_per_hour is None

    def test_bad_limits_are_located_problems(self):
        """Unknown budget names and non-numbers fail closed at their line."""
        problems = problems_of(
            """\
            a:
              allowed_actions: [session:list]
              limits:
                reruns_per_day: 3
                claims_max: lots
            """
        )
        assert [(p["line"], p["message"]) for p in problems] == [
            (
                4,
                "unknown limit 'reruns_per_day' (known: ['claims_max', 'reruns_per_hour', "
                "'tickets_pending_max'])",
            ),
            (5, "limit 'claims_max' must be a whole number >= 0"),
        ]
