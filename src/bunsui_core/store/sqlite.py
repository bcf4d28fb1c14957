"""The embedded default store: one SQLite file in WAL mode under `$BUNSUI_HOME`."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bunsui_core.errors import (
    BunsuiError,
    ConflictError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    StoreError,
)
from bunsui_core.governance.audit import (
    GENESIS_HASH,
    INDEXED,
    INDEXED_FIELDS,
    AuditEntry,
    AuditEvent,
    AuditHead,
)
from bunsui_core.governance.tickets import Ticket, TicketStatus
from bunsui_core.model.claims import LeaseState, claim_events
from bunsui_core.model.event import Event, EventKind
from bunsui_core.model.insight import InsightState
from bunsui_core.model.pipeline import Pipeline, content_hash
from bunsui_core.model.recovery import (
    ActionStats,
    ErrorLabel,
    Outcome,
    OverrideVersion,
    RecoveryPlan,
    Resolution,
)
from bunsui_core.model.session import (
    ErrorRecord,
    JobRun,
    OperationRun,
    Session,
    SessionStatus,
    check_transition,
    utc_now,
)
from bunsui_core.store._records import json_object, parse_record
from bunsui_core.store._sqlite_schema import MIGRATIONS
from bunsui_core.store.base import (
    PipelineVersion,
    SessionFilter,
    SessionPage,
    check_ticket_transition,
    decode_cursor,
    encode_cursor,
)
from bunsui_core.store.patient import retry_locked

BUSY_TIMEOUT_SECONDS = 5.0


def _statements(script: str) -> Iterator[str]:
    """Split a migration into complete statements (a trigger body holds `;` too)."""
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                yield buffer
            buffer = ""


def _owner_only(path: Path, mode: int) -> None:
    """Take group and other access away from a file or directory bunsui owns (an existing
    home created 0755 by an older bunsui included)."""
    try:
        current = path.stat().st_mode & 0o777
        if current & 0o077:
            path.chmod(mode)
    except FileNotFoundError:
        pass


def _private_directory(path: Path) -> None:
    """The home: created 0700, or tightened to it, so no other local user reads the store,
    audit, tickets or logs inside."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    _owner_only(path, 0o700)


class SqliteStore:
    """Store on a SQLite file; safe to share between threads, and between processes via WAL."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        with self._guard():
            if read_only:
                self._db = self._open_read_only(path)
                return
            _private_directory(path.parent)
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            try:
                # SQLite's busy handler does not cover the switch to WAL: two commands
                # creating a new home at once (`events tail --follow` beside `pipeline run`)
                # made one fail STORE_LOCKED at once. It waits like any other lock.
                retry_locked(
                    lambda: self._rows("PRAGMA journal_mode=WAL"),
                    budget_seconds=BUSY_TIMEOUT_SECONDS,
                )
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            except BaseException:
                self._db.close()  # a store that failed to open keeps no file handle
                raise
            for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                _owner_only(name, 0o600)

    def _open_read_only(self, path: Path) -> sqlite3.Connection:
        """SQLite itself refuses writes; a home with no database yet reads as empty."""
        if not path.exists():
            self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            self._migrate()
            return self._db
        # With no writer connected there is no -wal file; then the file is opened immutable,
        # which creates no -wal/-shm beside it (a read-only call leaves the home untouched,
        # and works where the home is not writable). With a writer, its files already exist.
        no_writer = not Path(f"{path}-wal").exists()
        db = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro{'&immutable=1' if no_writer else ''}",
            uri=True,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,
            check_same_thread=False,
        )
        (current,) = db.execute("PRAGMA user_version").fetchone()
        if current != len(MIGRATIONS):
            db.close()
            raise StoreError(
                f"database {path} has schema version {current}, this bunsui uses "
                f"{len(MIGRATIONS)}; open it once without read-only mode to upgrade it",
                code=ErrorCode.STORE_SCHEMA_TOO_NEW
                if current > len(MIGRATIONS)
                else ErrorCode.STORE_CORRUPT,
                details={"path": str(path), "schema_version": current},
            )
        return db

    def close(self) -> None:
        """Close the connection; the file stays consistent (WAL) whenever this is skipped."""
        with self._lock:
            self._db.close()

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Map sqlite3 failures to coded store errors, under the store's lock."""
        with self._lock:
            try:
                yield
            except BunsuiError:
                raise
            except UnicodeEncodeError:
                raise InvalidArgumentError(
                    "text with a lone surrogate cannot be stored or looked up"
                ) from None
            except OverflowError:
                raise InvalidArgumentError("a number is out of range (at most 2**63-1)") from None
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if "readonly" in text:
                    raise PermissionDeniedError(
                        "read-only mode: bunsui writes nothing"
                        if self.read_only
                        else f"database {self.path} cannot be written ({text}): check the "
                        "permissions of the file and its directory, and that its file system "
                        "is writable",
                        code=ErrorCode.READ_ONLY,
                        details={"path": str(self.path)},
                    ) from None
                if "locked" in text or "busy" in text:
                    raise StoreError(
                        f"database {self.path} is locked by another process",
                        code=ErrorCode.STORE_LOCKED,
                        details={"path": str(self.path)},
                    ) from None
                raise StoreError(
                    f"database {self.path} cannot be used: {text}",
                    code=ErrorCode.STORE_CORRUPT,
                    details={"path": str(self.path)},
                ) from None
            except sqlite3.IntegrityError as exc:
                raise ConflictError(
                    f"a record with this key already exists: {exc}",
                    details={"path": str(self.path)},
                ) from None
            except sqlite3.DatabaseError as exc:
                raise StoreError(
                    f"database {self.path} is corrupt or not a bunsui database: {exc}",
                    code=ErrorCode.STORE_CORRUPT,
                    details={"path": str(self.path)},
                ) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """IMMEDIATE transaction: the write lock is taken first, so read-check-write is atomic."""
        with self._guard():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        (current,) = self._db.execute("PRAGMA user_version").fetchone()
        if current > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} has schema version {current}; this bunsui knows up to "
                f"{len(MIGRATIONS)}. Upgrade bunsui.",
                code=ErrorCode.STORE_SCHEMA_TOO_NEW,
                details={"path": str(self.path), "schema_version": current},
            )
        if current == len(MIGRATIONS):
            return
        with self._transaction() as db:
            (current,) = db.execute("PRAGMA user_version").fetchone()
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in _statements(script):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._guard():
            return self._db.execute(sql, params).fetchall()

    # pipelines

    def register_pipeline(
        self, pipeline_id: str, pipeline: Pipeline, *, source: str | None = None
    ) -> PipelineVersion:
        """Store a new version when the content differs from the latest, else return the latest."""
        digest = content_hash(pipeline)
        with self._transaction() as db:
            latest = db.execute(
                "SELECT body FROM pipelines WHERE pipeline_id = ? ORDER BY version DESC LIMIT 1",
                (pipeline_id,),
            ).fetchone()
            if latest is not None:
                current = parse_record(
                    PipelineVersion, latest[0], table="pipelines", key=pipeline_id
                )
                if current.content_hash == digest:
                    return current
            record = PipelineVersion(
                pipeline_id=pipeline_id,
                version=(current.version + 1) if latest is not None else 1,
                content_hash=digest,
                registered_at=utc_now(),
                source=source,
                pipeline=pipeline,
            )
            db.execute(
                "INSERT INTO pipelines VALUES (?, ?, ?, ?, ?)",
                (
                    pipeline_id,
                    record.version,
                    digest,
                    record.registered_at,
                    record.model_dump_json(),
                ),
            )
            return record

    def get_pipeline(self, pipeline_id: str, version: int | None = None) -> PipelineVersion | None:
        """A version (the latest when `version` is None), or None when missing."""
        if version is None:
            rows = self._rows(
                "SELECT body FROM pipelines WHERE pipeline_id = ? ORDER BY version DESC LIMIT 1",
                (pipeline_id,),
            )
        else:
            rows = self._rows(
                "SELECT body FROM pipelines WHERE pipeline_id = ? AND version = ?",
                (pipeline_id, version),
            )
        return (
            parse_record(PipelineVersion, rows[0][0], table="pipelines", key=pipeline_id)
            if rows
            else None
        )

    def list_pipelines(self) -> list[PipelineVersion]:
        """The latest version of every pipeline, by id."""
        rows = self._rows(
            "SELECT pipeline_id, body FROM pipelines p WHERE version = "
            "(SELECT MAX(version) FROM pipelines q WHERE q.pipeline_id = p.pipeline_id) "
            "ORDER BY pipeline_id"
        )
        return [
            parse_record(PipelineVersion, body, table="pipelines", key=pid) for pid, body in rows
        ]

    # sessions

    def create_session(self, session: Session) -> Session:
        """Insert a new session; CONFLICT when the id exists."""
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO sessions (session_id, pipeline_id, status, created_at, version, "
                    "root_session_id, body, claim_holder, claim_expires_at, escalated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        session.session_id,
                        session.pipeline_id,
                        str(session.status),
                        session.created_at,
                        session.version,
                        session.root_session_id,
                        session.model_dump_json(),
                        *LeaseState.of(session),
                    ),
                )
                _record_event(
                    db,
                    EventKind.SESSION,
                    session.session_id,
                    str(session.status),
                    session.pipeline_id,
                )
        except ConflictError:
            raise ConflictError(
                f"session {session.session_id} already exists",
                details={"session_id": session.session_id},
            ) from None
        return session

    def get_session(self, session_id: str) -> Session | None:
        """The session, or None when missing."""
        rows = self._rows(
            "SELECT body, heartbeat_at FROM sessions WHERE session_id = ?", (session_id,)
        )
        return self._session_from_row(session_id, *rows[0]) if rows else None

    def _session_from_row(self, session_id: str, body: str, heartbeat_at: str | None) -> Session:
        session = parse_record(Session, body, table="sessions", key=session_id)
        if heartbeat_at and session.runner is not None:
            session.runner.heartbeat_at = max(heartbeat_at, session.runner.heartbeat_at)
        return session

    def update_session(self, session: Session, *, expected_version: int) -> Session:
        """Compare-and-set on `version`, enforcing the status transition table."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT status, version, claim_holder, claim_expires_at, escalated "
                "FROM sessions WHERE session_id = ?",
                (session.session_id,),
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"session {session.session_id} not found",
                    details={"session_id": session.session_id},
                )
            status, version, *lease = row
            if version != expected_version:
                raise ConflictError(
                    f"session {session.session_id} changed concurrently "
                    f"(version {version}, expected {expected_version})",
                    details={"session_id": session.session_id, "version": version},
                )
            if status != session.status:
                check_transition(session.session_id, SessionStatus(status), session.status)
            updated = session.model_copy(
                update={"version": expected_version + 1, "updated_at": utc_now()}
            )
            db.execute(
                "UPDATE sessions SET status = ?, version = ?, body = ?, claim_holder = ?, "
                "claim_expires_at = ?, escalated = ? WHERE session_id = ?",
                (
                    str(updated.status),
                    updated.version,
                    updated.model_dump_json(),
                    *LeaseState.of(updated),
                    updated.session_id,
                ),
            )
            if status != updated.status:
                _record_event(
                    db,
                    EventKind.SESSION,
                    updated.session_id,
                    str(updated.status),
                    updated.pipeline_id,
                )
            before = LeaseState(lease[0], lease[1], bool(lease[2]))
            for change in claim_events(before, updated):
                _record_event(db, EventKind.CLAIM, updated.session_id, change, updated.pipeline_id)
            return updated

    def touch_heartbeat(self, session_id: str, heartbeat_at: str) -> None:
        """Record that the runner is alive; not a state change, so the version stays."""
        with self._guard():
            self._db.execute(
                "UPDATE sessions SET heartbeat_at = ? WHERE session_id = ?",
                (heartbeat_at, session_id),
            )

    def list_sessions(
        self, session_filter: SessionFilter, *, limit: int, cursor: str | None = None
    ) -> SessionPage:
        """Sessions matching the filter, newest first, keyset-paginated."""
        clauses: list[str] = []
        params: list[Any] = []
        if session_filter.status is not None:
            clauses.append("status = ?")
            params.append(str(session_filter.status))
        if session_filter.pipeline_id is not None:
            clauses.append("pipeline_id = ?")
            params.append(session_filter.pipeline_id)
        if session_filter.created_after is not None:
            clauses.append("created_at > ?")
            params.append(session_filter.created_after)
        if session_filter.created_before is not None:
            clauses.append("created_at < ?")
            params.append(session_filter.created_before)
        if session_filter.claimed is not None:
            clauses.append(
                "claim_expires_at > ?"
                if session_filter.claimed
                else "(claim_expires_at IS NULL OR claim_expires_at <= ?)"
            )
            params.append(utc_now())
        if session_filter.claimed_by is not None:
            clauses.append("claim_holder = ? AND claim_expires_at > ?")
            params.extend((session_filter.claimed_by, utc_now()))
        if session_filter.escalated is not None:
            clauses.append("escalated = 1" if session_filter.escalated else "escalated = 0")
        if cursor is not None:
            clauses.append("(created_at, session_id) < (?, ?)")
            params.extend(decode_cursor(cursor))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        # Live claims are few: read them by expiry and sort, rather than walk every session in
        # creation order (which the planner would pick to avoid the sort).
        held = session_filter.claimed or session_filter.claimed_by is not None
        source = "sessions INDEXED BY sessions_by_claim" if held else "sessions"
        rows = self._rows(
            f"SELECT session_id, body, heartbeat_at FROM {source} {where} "  # noqa: S608 - fixed strings; values are bound
            "ORDER BY created_at DESC, session_id DESC LIMIT ?",
            (*params, limit + 1),
        )
        sessions = [self._session_from_row(*row) for row in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = sessions[-1]
            next_cursor = encode_cursor(last.created_at, last.session_id)
        return SessionPage(sessions=sessions, next_cursor=next_cursor)

    # runs

    def put_job_run(self, job_run: JobRun) -> None:
        """Insert or replace the run of one job in one session."""
        self.put_runs(job_runs=[job_run])

    def list_job_runs(self, session_id: str) -> list[JobRun]:
        """Job runs of a session, in no particular order."""
        rows = self._rows("SELECT job_id, body FROM job_runs WHERE session_id = ?", (session_id,))
        return [
            parse_record(JobRun, body, table="job_runs", key=f"{session_id}/{j}")
            for j, body in rows
        ]

    def put_operation_run(self, operation_run: OperationRun) -> None:
        """Insert or replace the run of one operation in one session."""
        self.put_runs(operation_runs=[operation_run])

    def put_runs(
        self, job_runs: Sequence[JobRun] = (), operation_runs: Sequence[OperationRun] = ()
    ) -> None:
        """Insert or replace job and operation runs in one transaction (one commit)."""
        if not job_runs and not operation_runs:
            return
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO job_runs VALUES (?, ?, ?)",
                [(r.session_id, r.job_id, r.model_dump_json()) for r in job_runs],
            )
            db.executemany(
                "INSERT OR REPLACE INTO operation_runs VALUES (?, ?, ?, ?)",
                [
                    (r.session_id, r.job_id, r.operation_id, r.model_dump_json())
                    for r in operation_runs
                ],
            )

    def list_operation_runs(self, session_id: str, job_id: str | None = None) -> list[OperationRun]:
        """Operation runs of a session (of one job when given)."""
        sql = "SELECT operation_id, body FROM operation_runs WHERE session_id = ?"
        params: tuple[Any, ...] = (session_id,)
        if job_id is not None:
            sql += " AND job_id = ?"
            params = (session_id, job_id)
        return [
            parse_record(OperationRun, body, table="operation_runs", key=f"{session_id}/{op}")
            for op, body in self._rows(sql, params)
        ]

    # errors

    def add_error(self, error: ErrorRecord) -> None:
        """Append an error record; records are never changed afterwards."""
        with self._guard():
            self._db.execute(
                "INSERT INTO errors (error_id, session_id, fingerprint, body) VALUES (?, ?, ?, ?)",
                (error.error_id, error.session_id, error.fingerprint, error.model_dump_json()),
            )

    def list_errors(self, session_id: str) -> list[ErrorRecord]:
        """Errors of a session in the order they happened."""
        rows = self._rows(
            "SELECT error_id, body FROM errors WHERE session_id = ? ORDER BY seq", (session_id,)
        )
        return [parse_record(ErrorRecord, body, table="errors", key=eid) for eid, body in rows]

    def get_error(self, error_id: str) -> ErrorRecord | None:
        """One error record by id; None when missing."""
        rows = self._rows("SELECT body FROM errors WHERE error_id = ?", (error_id,))
        return parse_record(ErrorRecord, rows[0][0], table="errors", key=error_id) if rows else None

    def add_error_label(self, label: ErrorLabel) -> None:
        """Keep a person's label of an error."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO error_labels (label_id, error_id, template, body) VALUES (?, ?, ?, ?)",
                (label.label_id, label.error_id, label.template, label.model_dump_json()),
            )

    def list_error_labels(
        self, *, templates: Collection[str] | None = None, limit: int = 10_000
    ) -> list[ErrorLabel]:
        """Labels oldest first: every one, or those of `templates` (by the template index)."""
        if templates is None:
            rows = self._rows(
                "SELECT label_id, body FROM error_labels ORDER BY seq LIMIT ?", (limit,)
            )
        else:
            # One JSON parameter, not one per template: SQLite caps a statement's variables
            # (999 before 3.32), and a session with thousands of failed jobs has as many.
            # SQLite's JSON text ends at a NUL, so the rare template holding one (a job's
            # UTF-16 output, say) is bound as itself.
            plain = sorted(t for t in templates if "\0" not in t)
            with_nul = sorted(t for t in templates if "\0" in t)
            rows = self._rows(
                "SELECT label_id, body FROM error_labels WHERE template IN "  # noqa: S608 - placeholders only
                f"(SELECT value FROM json_each(?){' UNION ALL SELECT ?' * len(with_nul)}) "
                "ORDER BY seq LIMIT ?",
                (json.dumps(plain), *with_nul, limit),
            )
        return [parse_record(ErrorLabel, body, table="error_labels", key=lid) for lid, body in rows]

    def list_errors_by_fingerprint(
        self, fingerprint: str, *, limit: int, exclude_session_id: str | None = None
    ) -> list[ErrorRecord]:
        """Most recent errors with this fingerprint, from other sessions than the excluded one."""
        rows = self._rows(
            "SELECT error_id, body FROM errors WHERE fingerprint = ? AND session_id != ? "
            "ORDER BY seq DESC LIMIT ?",
            (fingerprint, exclude_session_id or "", limit),
        )
        return [parse_record(ErrorRecord, body, table="errors", key=eid) for eid, body in rows]

    def count_reruns(self, root_session_id: str) -> int:
        """How many sessions rerun this root session, directly or through other reruns."""
        rows = self._rows(
            "SELECT COUNT(*) FROM sessions WHERE root_session_id = ?", (root_session_id,)
        )
        return int(rows[0][0])

    # learning

    def add_resolution(self, resolution: Resolution) -> None:
        """Append an outcome and update the running totals in the same transaction."""
        success = 1 if resolution.outcome is Outcome.SUCCESS else 0
        with self._transaction() as db:
            db.execute(
                "INSERT INTO resolutions (resolution_id, fingerprint, error_code, error_id, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    resolution.resolution_id,
                    resolution.fingerprint,
                    resolution.error_code,
                    resolution.error_id,
                    resolution.model_dump_json(),
                ),
            )
            for kind, key in (
                ("fingerprint", resolution.fingerprint),
                ("error_code", resolution.error_code),
            ):
                db.execute(
                    "INSERT INTO action_stats VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (key_kind, key, action) DO UPDATE SET "
                    "successes = successes + excluded.successes, "
                    "failures = failures + excluded.failures",
                    (kind, key, resolution.action, success, 1 - success),
                )

    def action_stats(
        self, *, fingerprint: str | None = None, error_code: str | None = None
    ) -> list[ActionStats]:
        """Observed successes/failures per action for a fingerprint or an error code."""
        kind, key = ("fingerprint", fingerprint) if fingerprint else ("error_code", error_code)
        rows = self._rows(
            "SELECT action, successes, failures FROM action_stats WHERE key_kind = ? AND key = ? "
            "ORDER BY action",
            (kind, key or ""),
        )
        return [ActionStats(action=a, successes=s, failures=f) for a, s, f in rows]

    def list_resolutions(
        self, *, fingerprint: str | None = None, error_code: str | None = None, limit: int = 50
    ) -> list[Resolution]:
        """Most recent outcomes, for one fingerprint, one error code, or all."""
        params: tuple[str, ...]
        if fingerprint:
            where, params = "WHERE fingerprint = ?", (fingerprint,)
        elif error_code:
            where, params = "WHERE error_code = ?", (error_code,)
        else:
            where, params = "", ()
        rows = self._rows(
            f"SELECT resolution_id, body FROM resolutions {where} "  # noqa: S608 - fixed clauses
            "ORDER BY seq DESC LIMIT ?",
            (*params, limit),
        )
        return [parse_record(Resolution, body, table="resolutions", key=rid) for rid, body in rows]

    def resolutions_of_errors(self, error_ids: list[str]) -> list[Resolution]:
        """Outcomes recorded against these errors, newest first (indexed by error id)."""
        if not error_ids:
            return []
        marks = ", ".join("?" * len(error_ids))
        rows = self._rows(
            f"SELECT resolution_id, body FROM resolutions WHERE error_id IN ({marks}) "  # noqa: S608 - placeholders only
            "ORDER BY seq DESC",
            tuple(error_ids),
        )
        return [parse_record(Resolution, body, table="resolutions", key=rid) for rid, body in rows]

    # overrides, idempotency, plans

    def add_override_version(self, override: OverrideVersion) -> None:
        """Store the next override version; CONFLICT if that version number is taken."""
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO job_overrides VALUES (?, ?, ?, ?)",
                    (
                        override.session_id,
                        override.job_id,
                        override.version,
                        override.model_dump_json(),
                    ),
                )
        except ConflictError:
            raise ConflictError(
                f"override version {override.version} of {override.job_id} exists already",
                details={"session_id": override.session_id, "job_id": override.job_id},
            ) from None

    def list_override_versions(
        self, session_id: str, job_id: str | None = None
    ) -> list[OverrideVersion]:
        """Override versions of a session (one job when given), oldest first."""
        sql = "SELECT job_id, body FROM job_overrides WHERE session_id = ?"
        params: tuple[Any, ...] = (session_id,)
        if job_id is not None:
            sql += " AND job_id = ?"
            params = (session_id, job_id)
        rows = self._rows(sql + " ORDER BY job_id, version", params)
        return [
            parse_record(OverrideVersion, body, table="job_overrides", key=f"{session_id}/{j}")
            for j, body in rows
        ]

    def claim_idempotency_key(self, key: str, session_id: str) -> str:
        """Bind key -> session_id unless bound already; returns the session the key names."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO idempotency_keys VALUES (?, ?)", (key, session_id))
            (bound,) = db.execute(
                "SELECT session_id FROM idempotency_keys WHERE key = ?", (key,)
            ).fetchone()
        return str(bound)

    def find_idempotency_key(self, key: str) -> str | None:
        """The session id a key is bound to, or None."""
        rows = self._rows("SELECT session_id FROM idempotency_keys WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def release_idempotency_key(self, key: str, session_id: str) -> None:
        """Unbind a key whose session could not be created, so a retry can proceed."""
        with self._guard():
            self._db.execute(
                "DELETE FROM idempotency_keys WHERE key = ? AND session_id = ?", (key, session_id)
            )

    def put_recovery_plan(self, plan: RecoveryPlan) -> None:
        """Store a plan so it can be executed by id later."""
        with self._guard():
            self._db.execute(
                "INSERT OR REPLACE INTO recovery_plans VALUES (?, ?, ?)",
                (plan.plan_id, plan.session_id, plan.model_dump_json()),
            )

    def get_recovery_plan(self, plan_id: str) -> RecoveryPlan | None:
        """The plan, or None when missing."""
        rows = self._rows("SELECT body FROM recovery_plans WHERE plan_id = ?", (plan_id,))
        return (
            parse_record(RecoveryPlan, rows[0][0], table="recovery_plans", key=plan_id)
            if rows
            else None
        )

    # insights

    def put_insight_state(self, state: InsightState) -> None:
        """Insert or replace the decision on one insight."""
        with self._guard():
            self._db.execute(
                "INSERT OR REPLACE INTO insight_states VALUES (?, ?, ?)",
                (state.insight_id, state.pipeline_id, state.model_dump_json()),
            )

    def list_insight_states(self, pipeline_id: str) -> list[InsightState]:
        """Decisions on one pipeline's insights, by insight id."""
        rows = self._rows(
            "SELECT insight_id, body FROM insight_states WHERE pipeline_id = ? ORDER BY insight_id",
            (pipeline_id,),
        )
        return [
            parse_record(InsightState, body, table="insight_states", key=key) for key, body in rows
        ]

    # approval tickets

    def create_ticket(self, ticket: Ticket) -> Ticket:
        """Insert a pending ticket; CONFLICT when an identical one is pending."""
        try:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ticket.ticket_id,
                        ticket.action,
                        ticket.arguments_hash,
                        ticket.requested_by,
                        str(ticket.status),
                        ticket.created_at,
                        ticket.version,
                        ticket.model_dump_json(),
                    ),
                )
                _record_event(db, EventKind.TICKET, ticket.ticket_id, str(ticket.status))
        except ConflictError:
            raise ConflictError(
                f"an identical {ticket.action} request by {ticket.requested_by} is pending",
                details={"action": ticket.action, "requested_by": ticket.requested_by},
            ) from None
        return ticket

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket, or None when missing."""
        rows = self._rows("SELECT body FROM tickets WHERE ticket_id = ?", (ticket_id,))
        return parse_record(Ticket, rows[0][0], table="tickets", key=ticket_id) if rows else None

    def find_pending_ticket(
        self, action: str, arguments_hash: str, requested_by: str
    ) -> Ticket | None:
        """The pending ticket for exactly this request (unique index), if any."""
        rows = self._rows(
            "SELECT ticket_id, body FROM tickets WHERE action = ? AND arguments_hash = ? "
            "AND requested_by = ? AND status = 'pending'",
            (action, arguments_hash, requested_by),
        )
        return parse_record(Ticket, rows[0][1], table="tickets", key=rows[0][0]) if rows else None

    def update_ticket(self, ticket: Ticket, *, expected_version: int) -> Ticket:
        """Compare-and-set on `version`, enforcing the ticket transition table."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT status, version FROM tickets WHERE ticket_id = ?", (ticket.ticket_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"ticket {ticket.ticket_id} not found", details={"ticket_id": ticket.ticket_id}
                )
            status, version = row
            if version != expected_version:
                raise ConflictError(
                    f"ticket {ticket.ticket_id} changed concurrently (now {status})",
                    details={"ticket_id": ticket.ticket_id, "status": status},
                )
            if status != ticket.status:
                check_ticket_transition(ticket.ticket_id, TicketStatus(status), ticket.status)
            updated = ticket.model_copy(update={"version": expected_version + 1})
            db.execute(
                "UPDATE tickets SET status = ?, version = ?, body = ? WHERE ticket_id = ?",
                (str(updated.status), updated.version, updated.model_dump_json(), ticket.ticket_id),
            )
            if status != updated.status:
                _record_event(db, EventKind.TICKET, ticket.ticket_id, str(updated.status))
            return updated

    def list_tickets(
        self, *, status: str | None = None, requested_by: str | None = None, limit: int = 50
    ) -> list[Ticket]:
        """Tickets, newest first."""
        clauses, params = [], []
        for column, value in (("status", status), ("requested_by", requested_by)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._rows(
            f"SELECT ticket_id, body FROM tickets {where} ORDER BY created_at DESC LIMIT ?",  # noqa: S608 - fixed column names
            (*params, limit),
        )
        return [parse_record(Ticket, body, table="tickets", key=tid) for tid, body in rows]

    # audit log

    def append_audit(self, event: AuditEvent) -> AuditEntry:
        """Chain the event after the head inside one write transaction: no fork, no gap."""
        with self._transaction() as db:
            head = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
            entry = AuditEntry.chain(event, seq=seq, prev_hash=prev_hash)
            db.execute(
                "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.seq,
                    entry.actor,
                    entry.action,
                    entry.session_id,
                    entry.hash,
                    entry.model_dump_json(),
                ),
            )
            return entry

    def list_audit(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        actor: str | None = None,
        action: str | None = None,
        session_id: str | None = None,
    ) -> list[AuditEntry]:
        """Entries with seq > after_seq, oldest first, optionally filtered (indexed)."""
        clauses, params = ["seq > ?"], list[int | str]([after_seq])
        for column, value in (("actor", actor), ("action", action), ("session_id", session_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        rows = self._rows(
            f"SELECT seq, body FROM audit WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?",  # noqa: S608 - fixed column names
            (*params, limit),
        )
        return [parse_record(AuditEntry, body, table="audit", key=str(seq)) for seq, body in rows]

    def recent_audit(self, *, actor: str, action: str, since: str, limit: int) -> list[AuditEntry]:
        """An actor's entries for one action after `since`, newest first (actor+action index)."""
        rows = self._rows(
            "SELECT seq, body FROM audit WHERE actor = ? AND action = ? "
            "AND json_extract(body, '$.timestamp') > ? ORDER BY seq DESC LIMIT ?",
            (actor, action, since, limit),
        )
        return [parse_record(AuditEntry, body, table="audit", key=str(seq)) for seq, body in rows]

    def audit_head(self) -> AuditHead | None:
        """The newest entry's seq and hash."""
        rows = self._rows("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        return AuditHead(seq=rows[0][0], hash=rows[0][1]) if rows else None

    def audit_bodies(self, *, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Raw entries in seq order, each with its indexed columns under INDEXED; a body that
        is not JSON comes back as `{}` (broken)."""
        rows = self._rows(
            "SELECT actor, action, session_id, hash, body FROM audit WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, limit),
        )
        return [
            {**json_object(row[4]), INDEXED: dict(zip(INDEXED_FIELDS, row[:4], strict=True))}
            for row in rows
        ]

    # events

    def list_events(self, *, after_seq: int = 0, limit: int = 100) -> list[Event]:
        """Status changes after `after_seq`, oldest first."""
        rows = self._rows(
            "SELECT seq, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [parse_record(Event, body, table="events", key=str(seq)) for seq, body in rows]

    def last_event_seq(self) -> int:
        """The newest event's seq (0 when none): where a feed that starts now begins."""
        rows = self._rows("SELECT MAX(seq) FROM events")
        return rows[0][0] or 0


def _record_event(
    db: sqlite3.Connection, kind: EventKind, key: str, status: str, pipeline_id: str | None = None
) -> None:
    """Append a status change inside the transaction that made it, so the feed never misses
    or invents one."""
    (seq,) = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events").fetchone()
    event = Event(seq=seq, at=utc_now(), kind=kind, id=key, status=status, pipeline_id=pipeline_id)
    db.execute("INSERT INTO events (seq, body) VALUES (?, ?)", (seq, event.model_dump_json()))
