"""The `store` fixture of the contract suite: one parameter per Store backend.

Every test in tests/contract runs once per backend. A backend is a context manager that
opens an empty store for one test and closes it afterwards; adding DynamoDB means writing
`dynamodb_store` (a moto `mock_aws()` table, for example) and listing it in BACKENDS.
"""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from bunsui_core.store.base import Store
from bunsui_core.store.sqlite import SqliteStore


@contextmanager
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """The embedded store on a fresh SQLite file."""
    store = SqliteStore(tmp_path / "contract.db")
    try:
        yield store
    finally:
        store.close()


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[Store]]] = {
    "sqlite": sqlite_store,
}


@pytest.fixture(params=list(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend in turn (overrides the SQLite-only fixture of tests/)."""
    with BACKENDS[request.param](tmp_path) as opened:
        yield opened
