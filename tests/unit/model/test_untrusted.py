"""Pipeline text on its way to an agent or a terminal: escapes stripped, secrets redacted."""

from __future__ import annotations

import pytest

from bunsui_core.governance.canonical import REDACTED, capped, redact_secrets
from bunsui_core.model.untrusted import labelled_context, strip_controls, terminal_safe


class TestStripControls:
    @pytest.mark.parametrize(
        ("raw", "clean"),
        [
            ("\x1b[31mred\x1b[0m", "red"),
            ("\x1b[2J\x1b[Hhome", "home"),
            ("\x1b]0;new title\x07text", "text"),
            ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
            ("\x9b31mred", "red"),
            ("abc\u202edef\u2066g\u200fh\u061ci", "abcdefghi"),
            ("keep\ttabs\nand lines\r\n", "keep\ttabs\nand lines\n"),
        ],
    )
    def test_escape_sequences_and_bidi_controls_are_removed_whole(self, raw, clean):
        """A colour, a screen clear, a window title, a hyperlink, 8-bit CSI and bidi
        overrides leave only their visible text."""
        assert strip_controls(raw) == clean

    def test_terminal_safe_shows_what_is_left_visibly(self):
        """For the CLI: control characters become visible escapes, newlines stay."""
        assert terminal_safe("a\x1b[2J\u202eb\nc") == "a\\u001b[2J\\u202eb\nc"

    def test_a_100k_adversarial_string_is_stripped_quickly(self):
        """Unterminated sequences do not make the stripping quadratic."""
        raw = "\x1b[" + "1;" * 50_000 + "\x1b]" * 10_000
        assert len(strip_controls(raw)) < len(raw)


class TestLabelledContext:
    def test_text_values_are_labelled_numbers_stay(self):
        """missing_key (read from the log) is labelled; memory_limit_mb stays a number."""
        context = labelled_context({"missing_key": "db\x1b[2J", "memory_limit_mb": 96})
        assert context["memory_limit_mb"] == 96
        assert context["missing_key"] == {
            "trust": "untrusted_pipeline_output",
            "text": "db",
            "truncated": False,
        }


class TestRedaction:
    def test_secret_keys_and_secret_looking_text_are_redacted(self):
        """Env values under secret-looking keys, AWS key ids and bearer tokens in argv."""
        definition = {
            "env": {"API_TOKEN": "t0ps3cret", "DB_PASSWORD": "p", "LOG_LEVEL": "info"},
            "command": [
                "curl",
                "-H",
                "Authorization: Bearer abcdefgh12345",
                "AKIAABCDEFGHIJKLMNOP",
            ],
            "memory": 256,
        }
        assert redact_secrets(definition) == {
            "env": {"API_TOKEN": REDACTED, "DB_PASSWORD": REDACTED, "LOG_LEVEL": "info"},
            "command": ["curl", "-H", f"Authorization: {REDACTED}", REDACTED],
            "memory": 256,
        }


class TestCapped:
    def test_long_text_keeps_its_start_length_and_hash(self):
        """The audit's copy of a 1 MB argument is a few hundred characters."""
        kept = capped({"session_id": "x" * 1_000_000, "items": list(range(1000))})
        assert kept["session_id"].startswith("x" * 256 + "...[1000000 chars, sha256 ")
        assert len(kept["session_id"]) < 400
        assert kept["items"][-1] == "... 936 more items"
