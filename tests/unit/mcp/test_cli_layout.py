"""The table layout's two promises, as properties: every line fits, nothing copyable is cut."""

from __future__ import annotations

import re
import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bunsui_mcp._cli_layout import layout, wrap_command

IDS = st.builds(
    "{}-{:012x}".format, st.sampled_from(["ses", "tkt", "plan", "err"]), st.integers(0, 2**48 - 1)
)
VOCABULARY = ["a", "job", "memory", "limit", "exceeded", "transformation", "x" * 30, "of"]
PROSE = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=30).map(" ".join)
ARGUMENT = st.sampled_from(["--session-id", "--memory", "--skip-successful", "--reason"])
NAMES = st.sampled_from(["etl", "transform", "nightly-orders-etl", "load", "x" * 20])
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _unwrapped(lines: list[str]) -> str:
    return re.sub(r" \\\n\s+", " ", "\n".join(lines))


class TestWrapCommand:
    @FAST
    @given(words=st.lists(st.one_of(IDS, ARGUMENT, PROSE), min_size=1, max_size=20))
    def test_wrapped_command_is_the_same_command(self, words):
        """Continuation lines fit (unless one shell word alone is longer) and, pasted into a
        shell, give back the same argv."""
        command = shlex.join(["bunsui", *words])
        lines = wrap_command(command, 60)
        for line in lines:
            assert len(line) <= 60 or len(shlex.split(line.removesuffix(" \\"))) == 1
        assert shlex.split(_unwrapped(lines)) == shlex.split(command)


class TestLayout:
    @FAST
    @given(
        rows=st.lists(
            st.fixed_dictionaries(
                {
                    "session_id": IDS,
                    "pipeline_id": NAMES,
                    "status": st.sampled_from(["failed", "completed", "upstream_failed"]),
                    "failed_jobs": st.lists(NAMES, max_size=3),
                    "created_at": st.just("2026-11-29T16:27:45.176521Z"),
                    "error_summary": PROSE,
                }
            ),
            min_size=1,
            max_size=5,
        ),
        cursor=st.integers(40, 70).map(lambda n: "W" * n),
        wide=st.booleans(),
    )
    def test_lines_fit_and_ids_stay_whole(self, rows, cursor, wide):
        """At 80 columns no line is wider, and every id and the cursor appear whole."""
        text = layout({"sessions": rows, "next_cursor": cursor}, width=80, wide=wide)
        assert all(len(line) <= 80 for line in text.splitlines())
        for row in rows:
            assert row["session_id"] in text
        assert cursor in text.splitlines()[-1]

    @FAST
    @given(
        command=st.lists(st.one_of(IDS, ARGUMENT), min_size=3, max_size=25).map(
            lambda words: shlex.join(["bunsui", "job", "rerun", *words])
        ),
        reason=PROSE,
        flag=st.booleans(),
    )
    def test_nested_commands_wrap_as_continuations(self, command, reason, flag):
        """A command inside nested records fits and still unwraps to the same command."""
        data = {
            "errors": [
                {
                    "error_id": "err-0123456789ab",
                    "transient": flag,
                    "recovery_suggestions": [{"command": command, "reason": reason}],
                }
            ]
        }
        text = layout(data, width=80)
        assert all(len(line) <= 80 for line in text.splitlines())
        assert ("transient: yes" if flag else "transient: no") in text
        unwrapped = _unwrapped(text.splitlines())
        found = re.search(r"bunsui job rerun.*", unwrapped)
        assert found is not None
        assert shlex.split(found[0]) == shlex.split(command)
