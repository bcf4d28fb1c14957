"""Persistence: the Store protocol and its backends."""

from __future__ import annotations

from bunsui_core.config import Settings
from bunsui_core.store.base import (
    PipelineVersion,
    SessionFilter,
    SessionPage,
    Store,
    update_session,
)


def open_store(settings: Settings) -> Store:
    """The store for these settings: DynamoDB for the aws backend, else the embedded SQLite
    file under the bunsui home. Backends load on demand (boto3 only for aws)."""
    if settings.backend == "aws":
        from bunsui_core.store.dynamodb import DynamoDBStore  # noqa: PLC0415

        return DynamoDBStore(
            table_prefix=settings.aws.table_prefix,
            region=settings.aws.region,
            endpoint_url=settings.aws.endpoint_url,
            read_only=settings.read_only,
        )
    from bunsui_core.store.sqlite import SqliteStore  # noqa: PLC0415

    return SqliteStore(settings.database_path, read_only=settings.read_only)


__all__ = [
    "PipelineVersion",
    "SessionFilter",
    "SessionPage",
    "Store",
    "open_store",
    "update_session",
]
