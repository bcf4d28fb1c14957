"""Insights on the AWS store: the same findings as on SQLite, from indexed reads only."""

from __future__ import annotations

import pytest
from moto import mock_aws

from bunsui_core.insights.history import load_history
from bunsui_core.insights.review import pipeline_insights
from bunsui_core.model.insight import InsightState, InsightStatus
from bunsui_core.store.dynamodb import DynamoDBStore
from tests.contract.conftest import FAKE_AWS_ENV
from tests.unit.insights.recorded import Ran, Recorder, job
from tests.unit.store.test_dynamodb import Recorder as Operations
from tests.unit.store.test_dynamodb import new_session


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch):
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    operations = Operations()
    with mock_aws():
        store = DynamoDBStore(
            table_prefix="ins", session=new_session(("before-call.dynamodb", operations))
        )
        store.create_tables()
        yield store, operations
        store.close()


def test_insights_read_dynamodb_without_a_scan(calls):
    """A recorded history on DynamoDB gives the cost insight and the stored dismissal, and
    computing it sends GetItem and Query only."""
    store, operations = calls
    rec = Recorder(store, "fat", job("small", memory=1024))
    for n in range(6):
        rec.run(small=Ran(peak=40, limit=1024, attempts=1 + n % 2, error="timeout after 5s"))
    insight_id = next(
        i.insight_id
        for i in pipeline_insights(store, load_history(store, "fat"))
        if i.rule == "memory_overprovisioned"
    )
    store.put_insight_state(
        InsightState(
            insight_id=insight_id,
            pipeline_id="fat",
            rule="memory_overprovisioned",
            status=InsightStatus.DISMISSED,
            actor="alice",
            reason="pooled memory",
        )
    )
    operations.operations.clear()
    found = {i.rule: i for i in pipeline_insights(store, load_history(store, "fat"))}
    assert found["memory_overprovisioned"].status is InsightStatus.DISMISSED
    assert found["memory_overprovisioned"].suggestion.change["memory_mb"]["after"] == 64
    assert "recurring_error" in found  # errors were read for the retried runs
    assert operations.operations
    assert set(operations.operations) <= {"GetItem", "Query"}
