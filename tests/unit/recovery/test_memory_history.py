"""Memory history reads each earlier failure the way the analysis reads it, so a rerun's
plan escalates on exactly the failures the person or agent was shown as memory failures."""

from __future__ import annotations

import getpass

from bunsui_core.actions import Gateway
from bunsui_core.model.session import ErrorRecord, FailureKind, Session
from bunsui_core.recovery.memory_history import memory_history
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data, queue_session

HUMAN = getpass.getuser()
MESSAGE = "Command exited with code 1\nstage hungry: worker pool drained at shard {n}, giving up"


def _failed(store: SqliteStore, shard: int, parent: Session | None = None) -> ErrorRecord:
    """A session of the `hungry` job failing with MESSAGE, a rerun of `parent` when given."""
    session = queue_session(store, pipeline_data(command_job("hungry", "pass"), name="hungry"))
    if parent is not None:
        store.update_session(
            session.model_copy(update={"parent_session_id": parent.session_id}),
            expected_version=session.version,
        )
    error = ErrorRecord(
        session_id=session.session_id,
        job_id="hungry",
        kind=FailureKind.EXIT_NONZERO,
        message=MESSAGE.format(n=shard),
    )
    store.add_error(error)
    return error


def test_a_failure_people_labelled_as_memory_counts_toward_escalation(settings):
    """No rule reads this message as memory; a person labelled its shape RESOURCE /
    increase_memory. The analysis then shows the rerun's failure as a memory failure, and the
    history counts the first run's failure too: two in a row, which escalates the next step."""
    gateway = Gateway(settings)
    gateway.invoke(HUMAN, "session:list", {})
    store = SqliteStore(settings.database_path)
    try:
        first = _failed(store, 3)
        first_session = store.get_session(first.session_id)
        assert first_session is not None
        rerun = _failed(store, 4, parent=first_session)
        rerun_session = store.get_session(rerun.session_id)
        assert rerun_session is not None
        assert memory_history(store, rerun_session, "hungry").failures_in_a_row == 1

        gateway.invoke(
            HUMAN,
            "error:label",
            {"error_id": first.error_id, "category": "RESOURCE", "action": "increase_memory"},
        )
        [analysed] = gateway.invoke(HUMAN, "error:analyze", {"session_id": rerun.session_id}).errors
        assert (analysed.layer.value, analysed.category.value) == ("learned_template", "RESOURCE")
        shown = gateway.invoke(HUMAN, "error:classify", {"message": rerun.message})
        assert shown.recovery_suggestions[0].action.value == "increase_memory"
        assert memory_history(store, rerun_session, "hungry").failures_in_a_row == 2
    finally:
        store.close()
