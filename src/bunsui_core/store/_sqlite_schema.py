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
    # 2: diagnosis and recovery: fingerprints, learned outcomes, overrides, reruns, plans.
    """
    ALTER TABLE errors ADD COLUMN fingerprint TEXT;
    CREATE INDEX errors_by_fingerprint ON errors (fingerprint, seq);
    ALTER TABLE sessions ADD COLUMN root_session_id TEXT;
    CREATE INDEX sessions_by_root ON sessions (root_session_id);
    CREATE TABLE resolutions (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        resolution_id TEXT NOT NULL UNIQUE,
        fingerprint   TEXT NOT NULL,
        error_code    TEXT NOT NULL,
        body          TEXT NOT NULL
    );
    CREATE INDEX resolutions_by_fingerprint ON resolutions (fingerprint, seq);
    CREATE INDEX resolutions_by_code ON resolutions (error_code, seq);
    -- Running totals kept with each resolution, so a confidence costs one indexed read.
    CREATE TABLE action_stats (
        key_kind  TEXT NOT NULL,
        key       TEXT NOT NULL,
        action    TEXT NOT NULL,
        successes INTEGER NOT NULL,
        failures  INTEGER NOT NULL,
        PRIMARY KEY (key_kind, key, action)
    );
    CREATE TABLE job_overrides (
        session_id TEXT NOT NULL,
        job_id     TEXT NOT NULL,
        version    INTEGER NOT NULL,
        body       TEXT NOT NULL,
        PRIMARY KEY (session_id, job_id, version)
    );
    CREATE TABLE idempotency_keys (
        key        TEXT PRIMARY KEY,
        session_id TEXT NOT NULL
    );
    CREATE TABLE recovery_plans (
        plan_id    TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        body       TEXT NOT NULL
    );
    """,
    # 3: governance: approval tickets and the hash-chained audit log; resolutions by error.
    """
    ALTER TABLE resolutions ADD COLUMN error_id TEXT;
    UPDATE resolutions SET error_id = json_extract(body, '$.error_id');
    CREATE INDEX resolutions_by_error ON resolutions (error_id, seq);
    CREATE TABLE tickets (
        ticket_id      TEXT PRIMARY KEY,
        action         TEXT NOT NULL,
        arguments_hash TEXT NOT NULL,
        requested_by   TEXT NOT NULL,
        status         TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        version        INTEGER NOT NULL,
        body           TEXT NOT NULL
    );
    -- At most one pending ticket per identical request, even under concurrent requests.
    CREATE UNIQUE INDEX tickets_one_pending ON tickets (action, arguments_hash, requested_by)
        WHERE status = 'pending';
    CREATE INDEX tickets_by_status ON tickets (status, created_at);
    CREATE INDEX tickets_by_created ON tickets (created_at);
    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        session_id TEXT,
        hash       TEXT NOT NULL,
        body       TEXT NOT NULL
    );
    CREATE INDEX audit_by_actor ON audit (actor, seq);
    CREATE INDEX audit_by_action ON audit (action, seq);
    CREATE INDEX audit_by_session ON audit (session_id, seq);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;
    """,
    # 4: the event feed (session and ticket status changes), written with each change.
    """
    CREATE TABLE events (
        seq  INTEGER PRIMARY KEY AUTOINCREMENT,
        body TEXT NOT NULL
    );
    """,
    # 5: labels people gave errors, with the template they apply to (issue 12).
    """
    CREATE TABLE error_labels (
        seq      INTEGER PRIMARY KEY AUTOINCREMENT,
        label_id TEXT NOT NULL UNIQUE,
        error_id TEXT NOT NULL,
        template TEXT NOT NULL,
        body     TEXT NOT NULL
    );
    CREATE INDEX error_labels_by_template ON error_labels (template, seq);
    """,
    # 6: decisions on insights (applied with a baseline, or dismissed), listed per pipeline.
    """
    CREATE TABLE insight_states (
        insight_id  TEXT PRIMARY KEY,
        pipeline_id TEXT NOT NULL,
        body        TEXT NOT NULL
    );
    CREATE INDEX insight_states_by_pipeline ON insight_states (pipeline_id, insight_id);
    """,
    # 7: claims and escalations as indexed columns (kept with the body in one UPDATE), so
    # `session claims`, a claim's budget check and a person's escalation queue read an index
    # instead of parsing every stored session; and an actor's rerun requests by index.
    """
    ALTER TABLE sessions ADD COLUMN claim_holder TEXT;
    ALTER TABLE sessions ADD COLUMN claim_expires_at TEXT;
    ALTER TABLE sessions ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
    UPDATE sessions SET
        claim_holder = json_extract(body, '$.claim.holder'),
        claim_expires_at = json_extract(body, '$.claim.expires_at'),
        escalated = json_extract(body, '$.escalation') IS NOT NULL;
    CREATE INDEX sessions_by_claim ON sessions (claim_expires_at);
    CREATE INDEX sessions_escalated ON sessions (created_at DESC, session_id DESC)
        WHERE escalated = 1;
    CREATE INDEX audit_by_actor_action ON audit (actor, action, seq);
    """,
)
