"""Patterns learned from people: `error label` stores a template; its next message is known."""

from __future__ import annotations

import getpass

import pytest

from bunsui_core.actions import Gateway
from bunsui_core.diagnosis.classifier import classify
from bunsui_core.diagnosis.templates import LabelVote, label_template, recognise, template_of
from bunsui_core.diagnosis.vocabulary import Category, Layer
from bunsui_core.errors import BunsuiError
from bunsui_core.governance.approvals import PendingApproval
from bunsui_core.model.session import ErrorRecord, FailureKind
from bunsui_core.store.sqlite import SqliteStore

HUMAN = getpass.getuser()
WIDGET = "Widget frobnication failed for batch {n} at /data/in/{name}.csv (run {uuid})"


def widget(n: int, name: str) -> str:
    return WIDGET.format(n=n, name=name, uuid=f"8f5c1a2e-3b4d-4e6f-9a0b-1c2d3e4f5a{n % 100:02d}")


class TestTemplates:
    def test_variable_parts_are_masked(self):
        """Numbers, paths, uuids, quoted values and URLs become <*>; the words stay."""
        assert template_of(widget(1234, "x")) == (
            "Widget frobnication failed for batch <*> at <*> (run <*>)"
        )
        assert template_of("GET https://api.example/v1/x?id=3 returned 'nope'") == (
            "GET <*> returned <*>"
        )

    def test_same_shape_same_template(self):
        """Two runs of one failure share a template; a different failure does not."""
        assert template_of(widget(1, "a")) == template_of(widget(99, "b"))
        assert template_of(widget(1, "a")) != template_of("Gadget alignment failed for batch 1")

    def test_the_engines_outcome_is_kept_exactly(self):
        """A label given to an exit 1 cannot answer for an exit 137 or a timeout kill of the
        same job printing the same words."""
        output = "\nWidget frobnication failed for batch 3"
        exit_1 = template_of(f"Command exited with code 1{output}")
        assert exit_1 != template_of(f"Command exited with code 137{output}")
        assert exit_1 != template_of(f"Command timed out after 30.0 seconds and was killed{output}")
        votes = [LabelVote(exit_1, "DATA", "fix_code_or_data")]
        assert recognise(f"Command exited with code 1{output}", votes) is not None
        assert recognise(f"Command exited with code 137{output}", votes) is None

    @pytest.mark.parametrize(
        "message",
        ["Command exited with code 1", "Error: 42", "Command exited with code 2\n'x' at /a/b/c"],
    )
    def test_a_message_that_keeps_too_few_words_has_no_label_template(self, message):
        """Once masked, these say nothing of their own: a label on one would answer for every
        unrelated failure of the same bare shape, so none is kept or matched."""
        assert label_template(message) is None
        votes = [LabelVote(template_of(message), "DATA", "fix_code_or_data")]
        assert recognise(message, votes) is None

    def test_quoted_prose_is_kept(self):
        """Only quoted single values are masked: two JSON errors do not share `{<*>: <*>}`."""
        assert template_of('{"error": "disk quota exceeded"}') != template_of(
            '{"error": "token has expired"}'
        )
        assert template_of("KeyError: 'id'") == template_of("KeyError: 'name'")

    def test_agreement_and_disagreement_move_the_confidence(self):
        """One label gives 0.867; a second agreeing label raises it; a dissent lowers it."""
        template = template_of(widget(1, "a"))
        one = [LabelVote(template, "DATA", "fix_code_or_data")]
        first = recognise(widget(2, "b"), one)
        agreed = recognise(widget(2, "b"), one * 2)
        disputed = recognise(widget(2, "b"), [*one, *one, LabelVote(template, "NETWORK", "retry")])
        assert first is not None
        assert agreed is not None
        assert disputed is not None
        assert first.confidence == 0.867
        assert agreed.confidence > first.confidence > disputed.confidence
        assert (disputed.category, disputed.agreeing, disputed.disagreeing) == ("DATA", 2, 1)

    def test_a_label_outranks_the_other_layers(self):
        """A person's label for this shape wins over what the rules would say."""
        message = "ValueError: widget size 3 out of range"
        votes = (LabelVote(template_of(message), "CONFIGURATION", "fix_configuration"),)
        assert classify(message).category is Category.DATA
        learned = classify("ValueError: widget size 17 out of range", learned=votes)
        assert (learned.layer, learned.category) == (Layer.LEARNED_TEMPLATE, Category.CONFIGURATION)


@pytest.fixture
def stored_error(settings) -> ErrorRecord:
    Gateway(settings).invoke(HUMAN, "session:list", {})
    store = SqliteStore(settings.database_path)
    error = ErrorRecord(
        session_id="ses-1", job_id="parse", kind=FailureKind.EXIT_NONZERO, message=widget(7, "q")
    )
    store.add_error(error)
    store.close()
    return error


class TestLabelsThroughTheGateway:
    def test_a_label_is_stored_and_recognises_the_next_message(self, settings, stored_error):
        """`error:label` answers with the template and the new classification; the next
        message of that shape is learned_template with a posterior confidence."""
        gateway = Gateway(settings)
        before = gateway.invoke(HUMAN, "error:classify", {"message": widget(8, "r")})
        assert before.layer is not Layer.LEARNED_TEMPLATE
        labelled = gateway.invoke(
            HUMAN,
            "error:label",
            {
                "error_id": stored_error.error_id,
                "category": "DATA",
                "action": "fix_code_or_data",
                "note": "upstream sends bad batches",
            },
        )
        assert labelled.template == template_of(stored_error.message)
        assert labelled.label.actor == HUMAN
        assert labelled.now_classified_as.layer is Layer.LEARNED_TEMPLATE
        after = gateway.invoke(HUMAN, "error:classify", {"message": widget(9, "s")})
        assert (after.layer, after.category, after.transient) == (
            Layer.LEARNED_TEMPLATE,
            Category.DATA,
            False,
        )
        assert after.category_confidence == 0.867
        assert after.recovery_suggestions[0].action.value == "fix_code_or_data"

    def test_an_agent_label_needs_approval(self, settings, stored_error):
        """Under the default policy an agent's label is a pending ticket, not a change."""
        gateway = Gateway(settings)
        pending = gateway.invoke(
            "ai-agent",
            "error:label",
            {"error_id": stored_error.error_id, "category": "DATA", "action": "retry"},
        )
        assert isinstance(pending, PendingApproval)
        store = SqliteStore(settings.database_path)
        assert store.list_error_labels() == []
        store.close()

    def test_a_label_that_would_answer_for_unrelated_failures_is_refused(self, settings):
        """An error whose text is only the engine's exit line cannot be labelled: the label
        would be recognised on every silent exit 1. Refused with a code; nothing stored."""
        gateway = Gateway(settings)
        gateway.invoke(HUMAN, "session:list", {})
        store = SqliteStore(settings.database_path)
        bare = ErrorRecord(
            session_id="ses-1",
            job_id="quiet",
            kind=FailureKind.EXIT_NONZERO,
            message="Command exited with code 1",
        )
        store.add_error(bare)
        store.close()
        with pytest.raises(BunsuiError) as caught:
            gateway.invoke(
                HUMAN,
                "error:label",
                {"error_id": bare.error_id, "category": "DATA", "action": "fix_code_or_data"},
            )
        assert caught.value.code == "INVALID_ARGUMENT"
        assert caught.value.details["error_id"] == bare.error_id
        store = SqliteStore(settings.database_path)
        assert store.list_error_labels() == []
        store.close()

    @pytest.mark.parametrize(
        ("args", "code"),
        [
            ({"error_id": "err-nope", "category": "DATA", "action": "retry"}, "NOT_FOUND"),
            ({"error_id": "x", "category": "UNKNOWN", "action": "retry"}, "INVALID_ARGUMENT"),
            ({"error_id": "x", "category": "DATA", "action": "pray"}, "INVALID_ARGUMENT"),
        ],
    )
    def test_bad_labels_are_refused_with_a_code(self, settings, args, code):
        """An unknown error, UNKNOWN as a label or an action outside the vocabulary is a coded
        error, and nothing is stored."""
        with pytest.raises(BunsuiError) as caught:
            Gateway(settings).invoke(HUMAN, "error:label", args)
        assert caught.value.code == code
