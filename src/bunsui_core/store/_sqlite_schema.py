"""SQLite schema migrations, applied in order; `PRAGMA user_version` records how many ran.

Never edit a released migration: append a new one, so every existing database can follow.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: pipelines, sessions, runs, errors.
    """
    CREATE TABLE pipelines (
        pipeline_id   TEXT NOT NULL,
        version       INTEGER NOT NULL,
        content_hash  TEXT NOT NULL,
        registered_at TEXT NOT NULL,
        body          TEXT NOT NULL,
        PRIMARY KEY (pipeline_id, version)
    );
    CREATE TABLE sessions (
        session_id   TEXT PRIMARY KEY,
        pipeline_id  TEXT NOT NULL,
        status       TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        version      INTEGER NOT NULL,
        heartbeat_at TEXT,
        body         TEXT NOT NULL
    );
    -- Each listing (all / by status / by pipeline) walks one index in result order, so a
    -- page costs the same however many sessions are stored.
    CREATE INDEX sessions_by_created  ON sessions (created_at DESC, session_id DESC);
    CREATE INDEX sessions_by_status   ON sessions (status, created_at DESC, session_id DESC);
    CREATE INDEX sessions_by_pipeline ON sessions (pipeline_id, created_at DESC, session_id DESC);
    CREATE TABLE job_runs (
        session_id TEXT NOT NULL,
        job_id     TEXT NOT NULL,
        body       TEXT NOT NULL,
        PRIMARY KEY (session_id, job_id)
    );
    CREATE TABLE operation_runs (
        session_id   TEXT NOT NULL,
        job_id       TEXT NOT NULL,
        operation_id TEXT NOT NULL,
        body         TEXT NOT NULL,
        PRIMARY KEY (session_id, job_id, operation_id)
    );
    CREATE TABLE errors (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        error_id   TEXT NOT NULL UNIQUE,
        session_id TEXT NOT NULL,
        body       TEXT NOT NULL
    );
    CREATE INDEX errors_by_session ON errors (session_id, seq);
    """,
)
