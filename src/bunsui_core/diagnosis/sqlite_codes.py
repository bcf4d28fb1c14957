"""SQLite's result codes (sqlite.org/rescode.html), by name and by the text SQLite prints.

Every binding prints one or both: Node's sqlite3 `SQLITE_BUSY: database is locked`,
better-sqlite3 `code: 'SQLITE_CONSTRAINT_UNIQUE'`, the JDBC driver `[SQLITE_BUSY] ...`, Go's
modernc `(SQLITE_BUSY)`; Python's sqlite3 prints only sqlite3_errmsg's text under a DB-API
class (`sqlite3.OperationalError: database is locked`), which names no family by itself.
"""

from __future__ import annotations

# Each primary code's family, by the reference's own description of it. SQLITE_ERROR is
# generic (its message decides); ABORT, INTERRUPT and NOLFS depend on what the caller did.
PRIMARY: dict[str, str | None] = {
    "ERROR": None,
    "INTERNAL": None,
    "ABORT": None,
    "INTERRUPT": None,
    "NOTFOUND": None,
    "EMPTY": None,
    "FORMAT": None,
    "NOLFS": None,
    "PERM": "PERMISSION_DENIED",  # the requested access mode could not be granted
    "AUTH": "PERMISSION_DENIED",  # the authorizer callback refused the statement
    "READONLY": "PERMISSION_DENIED",  # no write permission on the database (or its directory)
    # BUSY: another connection holds the file's lock past busy_timeout; LOCKED: a conflict in
    # the same connection or shared cache; PROTOCOL: a WAL locking race. All wait out a holder.
    "BUSY": "LOCK_WAIT_TIMEOUT",
    "LOCKED": "LOCK_WAIT_TIMEOUT",
    "PROTOCOL": "LOCK_WAIT_TIMEOUT",
    "SCHEMA": "TRANSACTION_CONFLICT",  # another connection changed the schema: re-prepare
    "NOMEM": "OUT_OF_MEMORY",  # SQLite runs in the job's process: its malloc failed
    "FULL": "DISK_FULL",
    "IOERR": "STORAGE_IO_ERROR",
    "CORRUPT": "INVALID_DATA",  # the database file is malformed
    "NOTADB": "INVALID_DATA",  # the file is not a database (or is encrypted)
    "CANTOPEN": "MISSING_FILE",  # no such file or directory, or a path that cannot be opened
    "TOOBIG": "INVALID_DATA",
    "CONSTRAINT": "INVALID_DATA",
    "MISMATCH": "INVALID_DATA",
    "MISUSE": "CODE_DEFECT",
    "RANGE": "CODE_DEFECT",  # a bind parameter index out of range
}

# Extended codes (sqlite3.h, "Extended Result Codes"), by primary; each inherits its
# primary's family unless OVERRIDES gives it one of its own.
EXTENDED: dict[str, tuple[str, ...]] = {
    "ERROR": ("MISSING_COLLSEQ", "RETRY", "SNAPSHOT"),
    "ABORT": ("ROLLBACK",),
    "AUTH": ("USER",),
    "BUSY": ("RECOVERY", "SNAPSHOT", "TIMEOUT"),
    "LOCKED": ("SHAREDCACHE", "VTAB"),
    "READONLY": ("RECOVERY", "CANTLOCK", "ROLLBACK", "DBMOVED", "CANTINIT", "DIRECTORY"),
    "CANTOPEN": ("NOTEMPDIR", "ISDIR", "FULLPATH", "CONVPATH", "DIRTYWAL", "SYMLINK"),
    "CORRUPT": ("VTAB", "SEQUENCE", "INDEX"),
    "CONSTRAINT": (
        "CHECK",
        "COMMITHOOK",
        "FOREIGNKEY",
        "FUNCTION",
        "NOTNULL",
        "PRIMARYKEY",
        "TRIGGER",
        "UNIQUE",
        "VTAB",
        "ROWID",
        "PINNED",
        "DATATYPE",
    ),
    "IOERR": (
        "READ",
        "SHORT_READ",
        "WRITE",
        "FSYNC",
        "DIR_FSYNC",
        "TRUNCATE",
        "FSTAT",
        "UNLOCK",
        "RDLOCK",
        "DELETE",
        "BLOCKED",
        "NOMEM",
        "ACCESS",
        "CHECKRESERVEDLOCK",
        "LOCK",
        "CLOSE",
        "DIR_CLOSE",
        "SHMOPEN",
        "SHMSIZE",
        "SHMLOCK",
        "SHMMAP",
        "SEEK",
        "DELETE_NOENT",
        "MMAP",
        "GETTEMPPATH",
        "CONVPATH",
        "VNODE",
        "AUTH",
        "BEGIN_ATOMIC",
        "COMMIT_ATOMIC",
        "ROLLBACK_ATOMIC",
        "DATA",
        "CORRUPTFS",
        "IN_PAGE",
    ),
}
OVERRIDES: dict[str, str] = {
    "BUSY_SNAPSHOT": "TRANSACTION_CONFLICT",  # the read snapshot is stale: restart the transaction
    "IOERR_NOMEM": "OUT_OF_MEMORY",
    "IOERR_DATA": "INVALID_DATA",  # a page failed its checksum
    "CONSTRAINT_COMMITHOOK": "CODE_DEFECT",  # the application's commit hook vetoed the commit
    "AUTH_USER": "AUTHENTICATION_FAILED",  # the user-authentication extension refused a login
}


def _by_name() -> dict[str, str]:
    """Every named code (primary and extended) with a family."""
    table = {}
    for primary, family in PRIMARY.items():
        for suffix in ("", *(f"_{s}" for s in EXTENDED.get(primary, ()))):
            code = OVERRIDES.get(f"{primary}{suffix}", family)
            if code:
                table[f"SQLITE_{primary}{suffix}"] = code
    return table


CODES = _by_name()

# sqlite3_errstr's text for each primary code with a family, and the messages sqlite3_errmsg
# gives SQLITE_ERROR and SQLITE_CONSTRAINT, which name a family by themselves.
MESSAGES: dict[str, str] = {
    "database is locked": "LOCK_WAIT_TIMEOUT",
    "database table is locked": "LOCK_WAIT_TIMEOUT",
    "attempt to write a readonly database": "PERMISSION_DENIED",
    "access permission denied": "PERMISSION_DENIED",
    "database disk image is malformed": "INVALID_DATA",
    "file is not a database": "INVALID_DATA",
    "file is encrypted or is not a database": "INVALID_DATA",  # before SQLite 3.16
    "database or disk is full": "DISK_FULL",
    "unable to open database file": "MISSING_FILE",
    "disk I/O error": "STORAGE_IO_ERROR",
    "database schema has changed": "TRANSACTION_CONFLICT",
    "string or blob too big": "INVALID_DATA",
    "datatype mismatch": "INVALID_DATA",
    "bad parameter or other API misuse": "CODE_DEFECT",
    "too many SQL variables": "CODE_DEFECT",  # more bound parameters than the build allows
    "UNIQUE constraint failed": "INVALID_DATA",
    "NOT NULL constraint failed": "INVALID_DATA",
    "CHECK constraint failed": "INVALID_DATA",
    "FOREIGN KEY constraint failed": "INVALID_DATA",
}
# sqlite3_errmsg's SQLITE_ERROR messages that name what is missing or wrong:
# `no such table: t`, `no such module: fts5`, `near "selec": syntax error`.
ERROR_MESSAGE = (
    r'\b(no such (?:table|column|function|module)): |\bnear "[^"\n]{1,80}": (syntax error)\b'
)
ERRORS: dict[str, str] = {
    "no such table": "MISSING_RESOURCE",
    "no such column": "MISSING_RESOURCE",
    "no such function": "MISSING_RESOURCE",
    "no such module": "MISSING_MODULE",  # a virtual-table module this build lacks (fts5, rtree...)
    "syntax error": "CODE_DEFECT",
}
