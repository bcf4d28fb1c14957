"""Notifications against a real local webhook receiver, fed by the real event feed."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from bunsui_core.actions import Gateway
from bunsui_core.config import Settings
from bunsui_core.errors import InvalidArgumentError
from bunsui_core.governance.tickets import TicketStatus
from bunsui_core.model.event import Event, EventKind
from bunsui_core.notify import (
    Notice,
    NoticeKind,
    NotificationSettings,
    Notifier,
    WebhookFormat,
    host_of,
    notice_kind,
)
from tests.conftest import command_job, pipeline_data, queue_session
from tests.webhook import receiver

POLICY = """
ai_agent:
  kind: agent
  approval_required: ["session:cancel"]
  allowed_actions: ["session:escalate"]
approver:
  kind: human
  allowed_actions: ["approval:*", "session:cancel"]
actors:
  ai-agent: ai_agent
  carol: approver
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A fresh home governed by a policy with one agent and one human approver."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return Settings.resolve(tmp_path / "home", policy=policy)


def notifier_for(settings: Settings, targets: list[dict], **options: object) -> Notifier:
    config = NotificationSettings.model_validate(
        {"base_url": "https://inbox.example", "targets": targets, **options}
    )
    return Notifier(config, Gateway(settings).open_store)


def request_ticket(settings: Settings, store) -> tuple[str, float]:
    """An agent asks to cancel a queued session (approval required); returns the ticket id
    and how long the gateway call took."""
    session = queue_session(store, pipeline_data(command_job("a", "pass")))
    started = time.monotonic()
    arguments = {"session_id": session.session_id}
    pending = Gateway(settings).invoke("ai-agent", "session:cancel", arguments)
    return pending.ticket_id, time.monotonic() - started


class TestNoticeKinds:
    @pytest.mark.parametrize(
        ("kind", "status", "expected"),
        [
            (EventKind.TICKET, "pending", NoticeKind.TICKET_CREATED),
            (EventKind.TICKET, "approved", None),
            (EventKind.TICKET, "executed", NoticeKind.TICKET_DECIDED),
            (EventKind.TICKET, "rejected", NoticeKind.TICKET_DECIDED),
            (EventKind.TICKET, "expired", NoticeKind.TICKET_EXPIRED),
            (EventKind.SESSION, "failed", NoticeKind.SESSION_FAILED),
            (EventKind.SESSION, "running", None),
        ],
    )
    def test_feed_events_map_to_what_an_approver_hears_of(self, kind, status, expected):
        """Only creation, outcome, expiry and failures notify; intermediate states do not."""
        event = Event(seq=1, at="2026-01-01T00:00:00.000000Z", kind=kind, id="x", status=status)
        assert notice_kind(event) is expected

    def test_only_an_escalated_claim_notifies(self):
        """Claim events notify only when a session is escalated to a person."""
        stamp = "2026-01-01T00:00:00.000000Z"
        escalated = Event(seq=1, at=stamp, kind=EventKind.CLAIM, id="s", status="escalated")
        claimed = escalated.model_copy(update={"status": "claimed"})
        assert notice_kind(escalated) is NoticeKind.SESSION_ESCALATED
        assert notice_kind(claimed) is None

    def test_slack_format_is_escaped_text_and_json_carries_the_notice(self):
        """Slack-compatible targets get `{"text"}` with Slack's control characters escaped
        (no mentions or disguised links from ticket text); generic JSON the whole notice."""
        notice = Notice(kind=NoticeKind.TEST, id="t", status="test", at="now", text="hi")
        assert notice.body(WebhookFormat.SLACK) == {"text": "hi"}
        loud = notice.model_copy(update={"text": "<!channel> <http://evil|docs> & more"})
        assert loud.body(WebhookFormat.SLACK) == {
            "text": "&lt;!channel&gt; &lt;http://evil|docs&gt; &amp; more"
        }
        assert notice.body(WebhookFormat.JSON)["kind"] == "test"


class TestSettings:
    def test_a_url_that_is_not_http_is_invalid_argument_without_echoing_it(self, tmp_path):
        """Bad config is a coded error naming the field, never the (secret) URL."""
        settings = Settings(
            home=tmp_path,
            notifications={"targets": [{"name": "x", "url": "file:///etc/secret-token"}]},
        )
        with pytest.raises(InvalidArgumentError) as caught:
            NotificationSettings.of(settings)
        assert caught.value.details["errors"][0]["field"] == "targets.0.url"
        assert "secret-token" not in str(caught.value.to_dict())

    def test_config_yaml_notifications_reach_the_settings(self, tmp_path):
        """`notifications:` in the home's config.yaml is read like every other setting."""
        home = tmp_path / "home"
        home.mkdir()
        (home / "config.yaml").write_text(
            "notifications:\n  targets:\n    - {name: ops, url: 'https://h.example/x'}\n"
        )
        parsed = NotificationSettings.of(Settings.resolve(home))
        assert [t.name for t in parsed.targets] == ["ops"]

    def test_host_of_keeps_only_scheme_host_and_port(self):
        """What logs may show of a webhook URL."""
        assert host_of("https://hooks.example:8443/services/T0/B0/SECRET?x=1") == (
            "https://hooks.example:8443"
        )


class TestDelivery:
    def test_a_new_ticket_arrives_with_its_summary_and_link(self, settings, store):
        """An agent's request reaches both a Slack-style and a generic JSON target."""
        with receiver() as slack, receiver() as generic:
            notifier = notifier_for(
                settings,
                [
                    {"name": "slack", "url": f"{slack.url}/hook", "format": "slack"},
                    {"name": "generic", "url": f"{generic.url}/hook", "format": "json"},
                ],
            )
            notifier.start()
            try:
                ticket_id, _ = request_ticket(settings, store)
                [text] = slack.wait_for(1)
                [body] = generic.wait_for(1)
            finally:
                notifier.stop()
        assert set(text) == {"text"}
        assert "ai-agent asks to run" in text["text"]
        assert text["text"].endswith(f"https://inbox.example/approvals/tickets/{ticket_id}")
        assert body["kind"] == "ticket_created"
        assert body["ticket"]["requested_by"] == "ai-agent"
        assert body["ticket"]["action"] == "session:cancel"

    def test_a_decision_is_sent_with_who_decided(self, settings, store):
        """Rejecting a ticket sends ticket_decided naming the decider and the reason."""
        with receiver() as hook:
            notifier = notifier_for(
                settings, [{"name": "h", "url": hook.url, "events": ["ticket_decided"]}]
            )
            notifier.start()
            try:
                ticket_id, _ = request_ticket(settings, store)
                Gateway(settings).invoke(
                    "carol", "approval:reject", {"ticket_id": ticket_id, "reason": "not now"}
                )
                [body] = hook.wait_for(1)
            finally:
                notifier.stop()
        assert (body["kind"], body["status"]) == ("ticket_decided", "rejected")
        assert body["ticket"]["decided_by"] == "carol"
        assert "rejected by carol (not now)" in body["text"]

    def test_a_receiver_answering_500_is_retried_until_it_accepts(self, settings, store):
        """Two 500s then 200: the same message is posted three times and counts delivered."""
        with receiver(statuses=[500, 500]) as hook:
            notifier = notifier_for(
                settings, [{"name": "flaky", "url": hook.url}], backoff_seconds=0.05
            )
            notifier.start()
            try:
                request_ticket(settings, store)
                bodies = hook.wait_for(3)
                deadline = time.monotonic() + 5
                while not notifier.couriers[0].outcomes and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                notifier.stop()
        assert len(bodies) == 3
        assert bodies[0] == bodies[1] == bodies[2]
        [outcome] = notifier.couriers[0].outcomes
        assert (outcome.delivered, outcome.attempts, outcome.status) == (True, 3, 200)

    def test_a_message_is_dropped_after_its_attempts_with_a_log_line_without_secrets(
        self, settings, store, caplog
    ):
        """A receiver that always fails gets `attempts` tries; the log names the host only."""
        caplog.set_level(logging.WARNING, logger="bunsui.notify")
        with receiver(statuses=[503] * 10) as hook:
            notifier = notifier_for(
                settings,
                [{"name": "down", "url": f"{hook.url}/services/SECRET-PATH?token=SECRET-Q"}],
                attempts=3,
                backoff_seconds=0.05,
            )
            notifier.start()
            try:
                request_ticket(settings, store)
                hook.wait_for(3)
                deadline = time.monotonic() + 5
                while not notifier.couriers[0].outcomes and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                notifier.stop()
        assert len(hook.requests) == 3
        dropped = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
        assert len(dropped) == 1
        assert hook.url in dropped[0]
        assert "SECRET" not in caplog.text

    def test_a_hanging_receiver_slows_neither_the_gateway_nor_other_targets(self, settings, store):
        """While one receiver hangs, requests return at once and another target still gets
        each message."""
        with receiver(hang_seconds=30) as stuck, receiver() as healthy:
            notifier = notifier_for(
                settings,
                [
                    {"name": "stuck", "url": stuck.url},
                    {"name": "healthy", "url": healthy.url},
                ],
                timeout_seconds=20,
            )
            notifier.start()
            try:
                durations = []
                for _ in range(3):
                    _, took = request_ticket(settings, store)
                    durations.append(took)
                healthy.wait_for(3)
                stuck.wait_for(1)
            finally:
                stuck.released.set()
                notifier.stop()
        assert max(durations) < 1.0, durations

    def test_an_escalation_is_sent_with_who_escalated_and_why(self, settings, store):
        """An agent hands a failure to a person: the message says who, why, and links to
        the inbox."""
        session = queue_session(store, pipeline_data(command_job("a", "pass")))
        with receiver() as hook:
            notifier = notifier_for(
                settings, [{"name": "h", "url": hook.url, "events": ["session_escalated"]}]
            )
            notifier.start()
            try:
                Gateway(settings).invoke(
                    "ai-agent",
                    "session:escalate",
                    {"session_id": session.session_id, "reason": "disk full on the warehouse"},
                )
                [body] = hook.wait_for(1)
            finally:
                notifier.stop()
        assert (body["kind"], body["id"]) == ("session_escalated", session.session_id)
        assert "escalated by ai-agent: disk full on the warehouse" in body["text"]
        assert body["link"] == "https://inbox.example/approvals"

    def test_an_overdue_ticket_is_expired_by_the_sweep_and_sent(self, settings, store):
        """Nobody reads an overdue ticket; the notifier expires it and says so."""
        ticket_id, _ = request_ticket(settings, store)
        ticket = store.get_ticket(ticket_id)
        store.update_ticket(
            ticket.model_copy(update={"expires_at": "2000-01-01T00:00:00.000000Z"}),
            expected_version=ticket.version,
        )
        with receiver() as hook:
            notifier = notifier_for(settings, [{"name": "h", "url": hook.url}])
            notifier.start()
            try:
                [body] = hook.wait_for(1)
            finally:
                notifier.stop()
        assert (body["kind"], body["id"]) == ("ticket_expired", ticket_id)
        assert store.get_ticket(ticket_id).status is TicketStatus.EXPIRED
