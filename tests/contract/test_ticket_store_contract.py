"""Tickets with their bound preview, stored and read back alike by every backend."""

from bunsui_core.governance.approvals import request_ticket
from bunsui_core.governance.previews import Preview
from bunsui_core.governance.tickets import TicketStatus

PREVIEW = Preview(
    summary="job:update-config transform @ ses-0123456789ab: command CHANGED, memory 96→320",
    effect={
        "diff": {"memory_mb": {"before": 96, "after": 320}},
        "after": {"command": {"transform-op": ["sh", "-c", "echo ünïcode | cat"]}},
    },
    files={"/pipelines/etl.yaml": "ab" * 32},
)


def _request(store, preview: Preview | None):
    return request_ticket(
        store,
        action="job:update-config",
        arguments={"job_id": "transform", "session_id": "ses-0123456789ab", "memory": 320},
        requested_by="ai-agent",
        rule="ai_agent.approval_required 'job:update-config'",
        policy_hash="0" * 64,
        correlation_id=None,
        preview=preview,
    )


class TestTicketPreviews:
    def test_the_preview_and_its_hash_round_trip(self, store):
        """What is stored is what is read, listed and found pending: the preview and the
        hash that binds it, through an update too."""
        ticket, created = _request(store, PREVIEW)
        assert created
        assert (ticket.preview, ticket.preview_hash) == (PREVIEW, PREVIEW.digest)
        for read in (
            store.get_ticket(ticket.ticket_id),
            store.list_tickets(status=TicketStatus.PENDING, requested_by=None, limit=10)[0],
            store.find_pending_ticket(ticket.action, ticket.arguments_hash, "ai-agent"),
        ):
            assert read is not None
            assert (read.preview, read.preview_hash) == (PREVIEW, PREVIEW.digest)
        approved = store.update_ticket(
            ticket.model_copy(update={"status": TicketStatus.APPROVED}),
            expected_version=ticket.version,
        )
        assert store.get_ticket(ticket.ticket_id) == approved
        assert approved.preview == PREVIEW

    def test_the_same_arguments_with_another_effect_are_another_ticket(self, store):
        """The pending-request guard keys on the preview too: a changed effect gets its own
        ticket, the identical request its existing one."""
        first, _ = _request(store, PREVIEW)
        again, created_again = _request(store, PREVIEW)
        other = PREVIEW.model_copy(update={"summary": "job:update-config: memory 128→320"})
        changed, created_changed = _request(store, other)
        assert (again.ticket_id, created_again) == (first.ticket_id, False)
        assert created_changed
        assert changed.ticket_id != first.ticket_id
        assert changed.preview_hash == other.digest != first.preview_hash
