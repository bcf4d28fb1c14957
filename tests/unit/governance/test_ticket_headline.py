"""A ticket's one line: one core function, the same words in the CLI, the inbox and messages."""

from __future__ import annotations

import pytest

from bunsui_core.governance.previews import Preview
from bunsui_core.governance.tickets import Ticket, ticket_headline
from bunsui_core.model.event import Event, EventKind
from bunsui_core.notify import NoticeKind, build_notice
from bunsui_mcp._ticket_render import ticket_list_text
from bunsui_mcp.web.pages import pending_list
from bunsui_mcp.web.render import esc


def _ticket(preview: Preview | None) -> Ticket:
    return Ticket.request(
        action="session:cancel",
        arguments={"session_id": "ses-1"},
        arguments_hash="0" * 64,
        requested_by="ai-agent",
        rule="approval_required",
        policy_hash="0" * 64,
        preview=preview,
    )


class TestTicketHeadline:
    def test_the_preview_summary_is_the_line(self):
        """With a preview, its summary is what a person reads first."""
        preview = Preview(summary="cancel session ses-1 (2 jobs running)", effect={})
        assert ticket_headline(_ticket(preview).model_dump(mode="json")) == (
            "cancel session ses-1 (2 jobs running)"
        )

    def test_without_a_preview_the_action_and_its_arguments(self):
        """No preview: the action with its arguments, so two such tickets stay apart."""
        line = ticket_headline(_ticket(None).model_dump(mode="json"))
        assert line == 'session:cancel {"session_id": "ses-1"}'

    @pytest.mark.parametrize(
        "preview", [None, Preview(summary="cancel session ses-1 <now>", effect={})]
    )
    def test_cli_inbox_and_notice_show_the_same_line(self, preview):
        """`approval list`, the inbox's pending list and a notification carry one line."""
        ticket = _ticket(preview)
        line = ticket_headline(ticket.model_dump(mode="json"))
        assert f"  {line}" in ticket_list_text([ticket.model_dump(mode="json")], width=200)
        assert f">{esc(line)}</a>" in pending_list([ticket.model_dump(mode="json")])
        event = Event(
            seq=1,
            at=ticket.created_at,
            kind=EventKind.TICKET,
            id=ticket.ticket_id,
            status="pending",
        )
        notice = build_notice(event, NoticeKind.TICKET_CREATED, ticket, None)
        assert notice.ticket is not None
        assert notice.ticket["summary"] == line
        assert line in notice.text
