"""Session lifecycle rules, retry delays, operation config helpers and untrusted text."""

import re

import pytest
from pydantic import ValidationError

from bunsui_core.errors import ConflictError, ErrorCode, InvalidTransitionError
from bunsui_core.model.pipeline import OperationConfig, RetryPolicy
from bunsui_core.model.session import (
    TRANSITIONS,
    RunStatus,
    SessionStatus,
    check_transition,
    new_id,
    utc_now,
)
from bunsui_core.model.untrusted import UNTRUSTED_MAX_CHARS, UntrustedText

S = SessionStatus

# The lifecycle as specified, written out independently of the implementation's table.
LEGAL = {
    (S.CREATED, S.QUEUED),
    (S.CREATED, S.RUNNING),
    (S.CREATED, S.CANCELLED),
    (S.CREATED, S.FAILED),
    (S.QUEUED, S.RUNNING),
    (S.QUEUED, S.CANCELLED),
    (S.QUEUED, S.FAILED),
    (S.RUNNING, S.PAUSED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.TIMEOUT),
    (S.PAUSED, S.RUNNING),
    (S.PAUSED, S.CANCELLED),
    (S.PAUSED, S.FAILED),
}
TERMINAL = {S.COMPLETED, S.FAILED, S.CANCELLED, S.TIMEOUT}
ALL_PAIRS = [(a, b) for a in S for b in S]
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]


class TestTransitionTable:
    def test_table_matches_the_specified_lifecycle(self):
        """TRANSITIONS allows exactly the specified status changes, for every status."""
        assert set(TRANSITIONS) == set(S)
        assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL

    @pytest.mark.parametrize("status", list(S))
    def test_terminal_states_have_no_exits(self, status):
        """A status is terminal exactly when the table lists no way out of it."""
        assert status.is_terminal == (status in TERMINAL)
        if status in TERMINAL:
            assert TRANSITIONS[status] == frozenset()

    @pytest.mark.parametrize(("current", "target"), sorted(LEGAL))
    def test_legal_transitions_pass(self, current, target):
        """Every change the table allows passes check_transition silently."""
        check_transition("ses-1", current, target)

    @pytest.mark.parametrize(("current", "target"), ILLEGAL)
    def test_illegal_transitions_raise(self, current, target):
        """Every change the table forbids raises INVALID_TRANSITION."""
        with pytest.raises(InvalidTransitionError) as caught:
            check_transition("ses-1", current, target)
        assert caught.value.code == ErrorCode.INVALID_TRANSITION

    def test_completed_to_running_error_carries_details(self):
        """completed -> running is a coded conflict naming the session, both states and exits."""
        with pytest.raises(InvalidTransitionError) as caught:
            check_transition("ses-42", S.COMPLETED, S.RUNNING)
        error = caught.value
        assert isinstance(error, ConflictError)
        assert error.code == ErrorCode.INVALID_TRANSITION
        assert "ses-42" in error.message
        assert error.to_dict() == {
            "code": "INVALID_TRANSITION",
            "message": error.message,
            "details": {
                "session_id": "ses-42",
                "from": "completed",
                "to": "running",
                "allowed": [],
            },
        }

    def test_allowed_list_is_sorted(self):
        """The error lists the legal targets of the current state, sorted."""
        with pytest.raises(InvalidTransitionError) as caught:
            check_transition("ses-1", S.QUEUED, S.COMPLETED)
        assert caught.value.details["allowed"] == ["cancelled", "failed", "running"]

    @pytest.mark.parametrize("status", list(RunStatus))
    def test_run_status_terminality(self, status):
        """Only pending and running job/operation runs are still in progress."""
        assert status.is_terminal == (status not in {RunStatus.PENDING, RunStatus.RUNNING})


class TestIdsAndTimes:
    def test_utc_now_is_fixed_width_iso(self):
        """utc_now is fixed-width ISO 8601 with microseconds and Z, so text order is time order."""
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", utc_now())

    def test_new_id_has_prefix_and_random_part(self):
        """new_id is the prefix, a dash and 12 hex digits, different each time."""
        ids = {new_id("ses") for _ in range(50)}
        assert len(ids) == 50
        assert all(re.fullmatch(r"ses-[0-9a-f]{12}", i) for i in ids)


class TestRetryPolicy:
    def test_defaults(self):
        """By default an operation is tried once, with 1 s doubling waits capped at 300 s."""
        policy = RetryPolicy()
        assert (
            policy.max_attempts,
            policy.interval_seconds,
            policy.backoff_rate,
            policy.max_delay_seconds,
        ) == (1, 1.0, 2.0, 300.0)

    @pytest.mark.parametrize("attempt", [-1, 0, 1])
    def test_first_attempt_starts_at_once(self, attempt):
        """Attempt 1 (and anything below) has no delay."""
        assert RetryPolicy(interval_seconds=5).delay_before(attempt) == 0.0

    def test_exponential_backoff(self):
        """Attempt n waits interval * rate^(n-2)."""
        policy = RetryPolicy(max_attempts=5, interval_seconds=1.5, backoff_rate=3)
        assert [policy.delay_before(n) for n in range(2, 6)] == [1.5, 4.5, 13.5, 40.5]

    def test_rate_one_is_a_constant_wait(self):
        """A backoff rate of 1 waits the same interval every time."""
        policy = RetryPolicy(interval_seconds=2, backoff_rate=1)
        assert {policy.delay_before(n) for n in range(2, 50)} == {2.0}

    def test_delay_is_capped(self):
        """No single wait exceeds max_delay_seconds."""
        policy = RetryPolicy(interval_seconds=10, backoff_rate=4, max_delay_seconds=60)
        assert [policy.delay_before(n) for n in range(2, 6)] == [10.0, 40.0, 60.0, 60.0]

    def test_largest_allowed_attempt_does_not_overflow(self):
        """The biggest attempt number and rate allowed still give the capped delay, as a float."""
        policy = RetryPolicy(max_attempts=100, interval_seconds=3600, backoff_rate=10)
        delay = policy.delay_before(100)
        assert delay == 300.0
        assert isinstance(delay, float)

    @pytest.mark.parametrize(
        "bad",
        [
            {"max_attempts": 0},
            {"max_attempts": 101},
            {"interval_seconds": -1},
            {"backoff_rate": 0.5},
            {"backoff_rate": 11},
            {"max_delay_seconds": -0.1},
            {"attempts": 3},
        ],
    )
    def test_out_of_range_or_unknown_fields_are_rejected(self, bad):
        """Limits outside their bounds and unknown keys fail validation."""
        with pytest.raises(ValidationError):
            RetryPolicy.model_validate(bad)


def command_config(**parameters: object) -> OperationConfig:
    """A command operation config with these parameters."""
    return OperationConfig(operation_type="command", parameters=parameters)


class TestOperationConfig:
    def test_argv_list_is_kept_and_stringified(self):
        """An argv list is used as is, numbers turned into text."""
        config = command_config(command=["python3", "job.py", "--rows", 20000, 1.5])
        assert config.command_argv() == ["python3", "job.py", "--rows", "20000", "1.5"]

    def test_string_is_split_like_a_shell(self):
        """A command string is split with shell quoting rules."""
        config = command_config(command='python3 -c \'print("hi there")\' "two words"')
        assert config.command_argv() == ["python3", "-c", 'print("hi there")', "two words"]

    def test_string_is_never_interpreted_by_a_shell(self):
        """Shell syntax in a command string stays literal text: no pipes, globs or variables."""
        config = command_config(command="echo $HOME *.py; rm -rf / | cat && `id`")
        assert config.command_argv() == [
            "echo",
            "$HOME",
            "*.py;",
            "rm",
            "-rf",
            "/",
            "|",
            "cat",
            "&&",
            "`id`",
        ]

    def test_memory_limit(self):
        """memory_limit_mb is the integer `memory` parameter, or None when unset."""
        assert command_config(command=["x"], memory=512).memory_limit_mb == 512
        assert command_config(command=["x"]).memory_limit_mb is None

    def test_process_parameters_exclude_reserved_keys(self):
        """The process sees every parameter except command, memory and env."""
        config = command_config(
            command=["x"], memory=64, env={"A": "1"}, rows=10, nested={"k": [1, 2]}
        )
        assert config.process_parameters() == {"rows": 10, "nested": {"k": [1, 2]}}
        assert set(config.parameters) == {"command", "memory", "env", "rows", "nested"}

    def test_config_is_frozen_and_strict(self):
        """Configs reject unknown keys and cannot be changed after validation."""
        with pytest.raises(ValidationError):
            OperationConfig.model_validate({"operation_type": "command", "comand": ["x"]})
        config = command_config(command=["x"])
        with pytest.raises(ValidationError):
            config.timeout_seconds = 5


class TestUntrustedText:
    def test_labelled_as_untrusted(self):
        """Every excerpt carries the untrusted-pipeline-output label."""
        assert UntrustedText.of("hello").trust == "untrusted_pipeline_output"

    def test_control_characters_are_stripped(self):
        """C0/C1 controls, DEL, bidi overrides and whole ANSI escape sequences (not only their
        ESC) are removed; visible text remains."""
        raw = "a\x00b\x07c\x1b[31md\x7fe\x85f\x9fg\u202eh\u2066i\u2069j\x0bk\x0cl"
        assert UntrustedText.of(raw).text == "abcdefghijkl"

    def test_newlines_and_tabs_are_kept(self):
        """Newlines and tabs survive, CRLF becomes LF and a lone CR is dropped."""
        assert UntrustedText.of("a\tb\nc\r\nd\re").text == "a\tb\nc\nde"

    def test_ordinary_unicode_is_kept(self):
        """Non-ASCII printable text is untouched."""
        assert UntrustedText.of("données ✓ 日本語").text == "données ✓ 日本語"

    def test_short_text_is_not_truncated(self):
        """Text within the limit is kept whole and not flagged."""
        excerpt = UntrustedText.of("x" * 10, limit=10)
        assert (excerpt.text, excerpt.truncated) == ("x" * 10, False)

    def test_long_text_keeps_its_end(self):
        """Text over the limit keeps its last `limit` characters and is flagged truncated."""
        excerpt = UntrustedText.of("head-" + "x" * 20 + "-tail", limit=10)
        assert excerpt.text == "xxxxx-tail"
        assert excerpt.truncated is True

    def test_limit_counts_cleaned_text(self):
        """Stripped control characters do not count against the limit."""
        excerpt = UntrustedText.of("\x00" * 100 + "abc", limit=5)
        assert (excerpt.text, excerpt.truncated) == ("abc", False)

    def test_default_limit(self):
        """The default cap is UNTRUSTED_MAX_CHARS."""
        excerpt = UntrustedText.of("y" * (UNTRUSTED_MAX_CHARS + 1))
        assert len(excerpt.text) == UNTRUSTED_MAX_CHARS
        assert excerpt.truncated is True
