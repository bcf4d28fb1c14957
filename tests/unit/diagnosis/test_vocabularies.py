"""Standard error vocabularies decoded by the taxonomy layer: category, first action, transient.

Every message here is written for this test in the format the vendor's binding prints, from
the vendor's own reference (its URL above each group); none comes from the evaluation corpus.
"""

from __future__ import annotations

import pytest

from bunsui_core.diagnosis import sqlite_codes, taxonomy
from bunsui_core.diagnosis.catalog import definition
from bunsui_core.diagnosis.classifier import classify
from bunsui_core.diagnosis.vocabulary import Category as C
from bunsui_core.diagnosis.vocabulary import Layer
from bunsui_core.diagnosis.vocabulary import RecoveryAction as A

# (message, category, first action, transient)
VOCABULARIES = [
    # ---- SQLite result codes: https://www.sqlite.org/rescode.html (texts: sqlite3_errstr) ----
    # SQLITE_BUSY: another connection holds the lock past busy_timeout; it is released.
    ("sqlite3.OperationalError: database is locked", C.TIMEOUT, A.RETRY_WITH_BACKOFF, True),
    ("Error: SQLITE_BUSY: database is locked", C.TIMEOUT, A.RETRY_WITH_BACKOFF, True),
    # SQLITE_LOCKED (shared cache), as the JDBC driver prints it
    (
        "org.sqlite.SQLiteException: [SQLITE_LOCKED_SHAREDCACHE] A table in the database is "
        "locked (database table is locked)",
        C.TIMEOUT,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # SQLITE_BUSY_SNAPSHOT: the read transaction's snapshot is stale; restart it
    (
        "SqliteError: database is locked\n    code: 'SQLITE_BUSY_SNAPSHOT'",
        C.APPLICATION,
        A.RETRY_WITH_BACKOFF,
        True,
    ),
    # SQLITE_CANTOPEN: a path that does not exist is never transient
    (
        "sqlite3.OperationalError: unable to open database file",
        C.DEPENDENCY,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "[Error: SQLITE_CANTOPEN: unable to open database file] { errno: 14, code: "
        "'SQLITE_CANTOPEN' }",
        C.DEPENDENCY,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # SQLITE_CORRUPT / SQLITE_NOTADB: the database file itself is bad data
    (
        "sqlite3.DatabaseError: database disk image is malformed",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    ("sqlite3.DatabaseError: file is not a database", C.DATA, A.FIX_CODE_OR_DATA, False),
    # SQLITE_FULL
    (
        "sqlite3.OperationalError: database or disk is full",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    # SQLITE_READONLY / SQLITE_PERM / SQLITE_AUTH: no write permission, never transient
    (
        "sqlite3.OperationalError: attempt to write a readonly database",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    (
        "SQLITE_READONLY_DIRECTORY: attempt to write a readonly database",
        C.PERMISSION,
        A.FIX_PERMISSIONS,
        False,
    ),
    ("sqlite3.DatabaseError: not authorized (SQLITE_AUTH)", C.PERMISSION, A.FIX_PERMISSIONS, False),
    # SQLITE_CONSTRAINT_*: the data broke a constraint
    (
        "sqlite3.IntegrityError: UNIQUE constraint failed: customers.email",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    (
        "SqliteError: NOT NULL constraint failed: orders.total\n    code: "
        "'SQLITE_CONSTRAINT_NOTNULL'",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    ("Error: FOREIGN KEY constraint failed", C.DATA, A.FIX_CODE_OR_DATA, False),
    (
        "sqlite3.IntegrityError: CHECK constraint failed: quantity > 0",
        C.DATA,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # SQLITE_IOERR_*: the storage under the file failed
    ("sqlite3.OperationalError: disk I/O error", C.RESOURCE, A.FIX_CONFIGURATION, False),
    (
        "database is corrupt or I/O failed (SQLITE_IOERR_SHORT_READ)",
        C.RESOURCE,
        A.FIX_CONFIGURATION,
        False,
    ),
    ("out of memory (SQLITE_IOERR_NOMEM)", C.RESOURCE, A.INCREASE_MEMORY, False),
    # SQLITE_NOMEM: SQLite allocates in the job's own process
    ("Error: SQLITE_NOMEM: out of memory", C.RESOURCE, A.INCREASE_MEMORY, False),
    # SQLITE_ERROR's messages that say what is missing or wrong
    (
        "sqlite3.OperationalError: no such table: daily_totals",
        C.DEPENDENCY,
        A.FIX_CONFIGURATION,
        False,
    ),
    ("sqlite3.OperationalError: no such module: fts5", C.DEPENDENCY, A.FIX_CONFIGURATION, False),
    (
        'sqlite3.OperationalError: near "FORM": syntax error',
        C.APPLICATION,
        A.FIX_CODE_OR_DATA,
        False,
    ),
    # SQLITE_MISUSE / SQLITE_RANGE: the caller used the API wrongly
    ("Error: SQLITE_RANGE: column index out of range", C.APPLICATION, A.FIX_CODE_OR_DATA, False),
    ("sqlite3.DataError: string or blob too big", C.DATA, A.FIX_CODE_OR_DATA, False),
]


@pytest.mark.parametrize(("message", "category", "action", "transient"), VOCABULARIES)
def test_vocabulary_code_is_decoded(message, category, action, transient):
    """The taxonomy layer answers with the family the vendor's reference describes."""
    result = classify(message, use_model=False)
    assert (result.category, result.priors[0].action, result.transient) == (
        category,
        action,
        transient,
    ), (result.error_code, result.evidence)
    assert result.layer is Layer.TAXONOMY, result.evidence


@pytest.mark.parametrize(
    "prose",
    [
        "SELECT count(*) FROM busy_hours WHERE locked_at IS NULL",  # names, not codes
        "copied sqlite_busy_retries.csv; the row is locked_by=etl",
        "MYSQLITE_BUSY_FLAG and SQLITE_BUSYNESS are not SQLite's",
        "the Database Is Locked screen",  # SQLite prints its texts in lower case
        "there is no such table in the report",  # no `no such table: name`
        "the disk I/O errors chart",
    ],
)
def test_words_that_only_look_like_sqlite_codes_decode_nothing(prose):
    """SQLite's names and texts match with their own spelling, case and boundaries."""
    assert taxonomy.decode(prose) is None


def test_every_sqlite_code_has_a_defined_family():
    """Each named code (primary and extended) answers a family the catalog defines."""
    assert {code for code in sqlite_codes.CODES.values() if definition(code) is None} == set()
    assert sqlite_codes.CODES["SQLITE_CONSTRAINT_UNIQUE"] == "INVALID_DATA"
    assert "SQLITE_ERROR" not in sqlite_codes.CODES  # generic: its message decides
