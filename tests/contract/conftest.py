"""The `store` fixture of the contract suite: one parameter per Store backend.

Every test in tests/contract runs once per backend. A backend is a context manager that
opens an empty store for one test and closes it afterwards.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cache
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from bunsui_core.store.base import Store
from bunsui_core.store.dynamodb import DynamoDBStore
from bunsui_core.store.sqlite import SqliteStore

FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # moto 5.2 does not route botocore's account-id endpoints
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@cache
def aws_session() -> boto3.session.Session:
    """One boto3 session for all tests: it loads the DynamoDB service model only once."""
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials
        region_name="us-east-1",
    )


@contextmanager
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """The embedded store on a fresh SQLite file."""
    store = SqliteStore(tmp_path / "contract.db")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def dynamodb_store(tmp_path: Path) -> Iterator[Store]:
    """The AWS store on freshly created tables in moto's in-process DynamoDB."""
    del tmp_path  # nothing on disk
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_AWS_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        with mock_aws():
            store = DynamoDBStore(table_prefix="contract", session=aws_session())
            store.create_tables()
            try:
                yield store
            finally:
                store.close()


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Store]]] = {
    "sqlite": sqlite_store,
    "dynamodb": dynamodb_store,
}


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend in turn (overrides the SQLite-only fixture of tests/)."""
    with BACKENDS[request.param](tmp_path) as opened:
        yield opened
