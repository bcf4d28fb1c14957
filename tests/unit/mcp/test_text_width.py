"""Text measured in terminal columns: wide characters take two, and wrapping keeps every
line within the width a person's terminal has, without losing a character."""

from __future__ import annotations

import re
import textwrap
import unicodedata

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from bunsui_mcp._cli_layout import layout
from bunsui_mcp._cli_render import OutputFormat, print_error, render
from bunsui_mcp._text_width import cells, clip, wrap


def columns(text: str) -> int:
    """The oracle, independent of the code under test: East Asian Wide and Fullwidth
    characters take two columns, combining marks none, the rest one."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


CHARACTERS = st.one_of(
    st.characters(min_codepoint=0x61, max_codepoint=0x7A),  # a-z
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),  # CJK ideographs
    st.characters(min_codepoint=0x3041, max_codepoint=0x3096),  # hiragana
    st.characters(min_codepoint=0x1F600, max_codepoint=0x1F64F),  # emoticons
    st.characters(min_codepoint=0xFF21, max_codepoint=0xFF3A),  # fullwidth A-Z
    st.just("e\u0301"),  # e and a combining acute accent
)
WORDS = st.lists(CHARACTERS, min_size=1, max_size=50).map("".join)
TEXT = st.lists(st.tuples(WORDS, st.sampled_from([" ", "  ", "\n"])), max_size=30).map(
    lambda pairs: "".join(word + gap for word, gap in pairs)
)
FAST = settings(max_examples=150, deadline=None)


def test_wide_and_combining_characters_are_measured_in_columns():
    assert cells("abc") == 3
    assert cells("データ") == 6
    assert cells("😀x") == 3
    assert cells("e\u0301") == 1


@FAST
@given(text=TEXT, width=st.integers(2, 100), indent=st.sampled_from(["", "  ", "    "]))
def test_wrapped_lines_fit_and_lose_no_character(text, width, indent):
    """Every line fits the width in columns; the words, read back, are the text's words."""
    lines = wrap(text, width, subsequent_indent=indent if len(indent) < width - 1 else "")
    assert all(columns(line) <= width for line in lines), lines
    assert "".join("".join(line.split()) for line in lines) == "".join(text.split())


@FAST
@given(text=TEXT, width=st.integers(2, 100))
def test_unbroken_words_overflow_only_their_own_line(text, width):
    """With long words kept whole (ids, paths) a line is wider only when it is one word."""
    lines = wrap(text, width, break_long_words=False)
    assert [w for line in lines for w in line.split()] == text.split()
    assert all(columns(line) <= width or len(line.split()) == 1 for line in lines)


@FAST
@given(text=WORDS, width=st.integers(1, 60))
def test_a_clipped_title_fits_and_says_it_was_cut(text, width):
    shown = clip(text, width)
    assert columns(shown) <= width
    assert shown == text or shown.endswith("…")


@FAST
@given(
    summaries=st.lists(TEXT, min_size=1, max_size=4),
    message=TEXT,
    key=st.lists(CHARACTERS, min_size=1, max_size=30).map("".join),
)
def test_tables_and_blocks_of_wide_text_fit_80_columns(summaries, message, key):
    """A session list whose failures are in Japanese or emoji, and records whose message or
    keys are, fit an 80-column terminal; the ids stay whole."""
    rows = [
        {
            "session_id": f"ses-{n:012x}",
            "pipeline_id": "etl",
            "status": "failed",
            "failed_jobs": ["load"],
            "created_at": "2026-11-29T16:27:45Z",
            "error_summary": summary,
        }
        for n, summary in enumerate(summaries)
    ]
    for data in (
        {"sessions": rows},
        {"error_id": "err-0123456789ab", "message": message},
        {"parameters": {key: message, "list": [key] * 3}},
    ):
        text = layout(data, width=80, wide=True)
        assert all(columns(line) <= 80 for line in text.splitlines()), text
    assert all(row["session_id"] in layout({"sessions": rows}, width=80) for row in rows)


ASCII_TEXT = st.lists(
    st.sampled_from(["a", "job", "memory-limit", "x" * 12, " ", "  ", "\t", "\n", "a\u00a0b"]),
    max_size=40,
).map("".join)


@FAST
@given(text=ASCII_TEXT, width=st.integers(14, 60), indent=st.sampled_from(["", "  ", "    "]))
def test_where_every_word_fits_a_line_it_wraps_as_textwrap_did(text, width, indent):
    """The measure changed, not the wrapping: a traceback keeps its indentation, tabs expand,
    a no-break space stays inside its word, as they did with textwrap."""
    assume(all(len(word) <= width - len(indent) for word in re.split(r"[\t\n ]+", text)))
    expanded = text.expandtabs()
    assume(len(expanded) - len(expanded.lstrip()) < width)  # the indentation fits too
    ours = wrap(text, width, subsequent_indent=indent)
    theirs = textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False)
    assert ours == [line.rstrip() for line in theirs]


def test_an_error_with_control_characters_is_measured_as_shown(monkeypatch, capsys):
    """A coded error's message is escaped before it is wrapped: `\x1b` shows as six columns
    (`\u001b`), so the escaped line still fits."""
    monkeypatch.setenv("COLUMNS", "80")
    message = "データ" * 5 + "\x1b[2J\x1c" * 6 + "データ" * 20
    print_error({"code": "INVALID_ARGUMENT", "message": message}, OutputFormat.TABLE)
    shown = capsys.readouterr().err
    assert "\x1b" not in shown
    assert "\\u001b[2J" in shown
    assert all(columns(line) <= 80 for line in shown.splitlines()), shown


def test_a_wide_key_is_measured_too():
    """A parameter named in Japanese (60 columns) leaves no room beside it for a 25-column
    value: the value goes below its key instead of past the edge."""
    for data in ({"parameters": {"メモリ" * 10: "x" * 25}}, {"メモリ" * 10: ["y" * 10] * 2}):
        text = layout(data, width=80)
        assert all(columns(line) <= 80 for line in text.splitlines()), text


def test_a_result_with_control_characters_is_measured_as_shown(monkeypatch):
    """The same for a table: a description holding escape sequences fits once escaped."""
    monkeypatch.setenv("COLUMNS", "80")
    text = "データ" * 5 + "\x1b[31m\x07" * 6 + "データ" * 20
    shown = render({"pipeline_id": "etl", "description": text}, OutputFormat.TABLE)
    assert "\x1b" not in shown
    assert all(columns(line) <= 80 for line in shown.splitlines()), shown


DRAWN = st.sampled_from(
    [
        "a",
        "デ",
        "e\u0301",  # a letter and its combining accent
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family: three emoji joined
        "\U0001f44d\U0001f3fd",  # a thumb and its skin tone
        "\U0001f1ef\U0001f1f5",  # a flag: two regional indicators
        "\u2764\ufe0f",  # a heart and its emoji presentation selector
    ]
)


@FAST
@given(drawn=st.lists(DRAWN, min_size=1, max_size=60), width=st.integers(3, 30))
def test_a_long_word_is_cut_only_between_the_characters_a_terminal_draws(drawn, width):
    """An id or message of emoji and accented letters wider than a line is split (and a title
    clipped) between drawn characters, never inside one: no accent moves to the next line
    and no joined emoji falls apart."""
    word = "".join(drawn)
    boundaries = {sum(len(d) for d in drawn[:i]) for i in range(len(drawn) + 1)}
    lines = wrap(word, width)
    assert "".join(lines) == word
    offsets = [sum(len(line) for line in lines[:i]) for i in range(len(lines) + 1)]
    assert set(offsets) <= boundaries, lines
    shown = clip(word, width)
    assert shown == word or len(shown) - 1 in boundaries
