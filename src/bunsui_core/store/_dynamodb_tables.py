"""The DynamoDB tables bunsui uses, as data: `create_tables` and `describe_tables` read this.

Plain data on purpose (no boto3 import), so it can be shown by `bunsui aws doctor` and read
by tests without loading the AWS SDK. Every table is on-demand (PAY_PER_REQUEST); every index
projects ALL attributes, so a listing is one Query without a second read per item. Table and
index key attributes are strings except the numeric sort keys named in `range_type`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = 3
"""Bumped when a table or index is added; recorded in the `kv` table by create_tables."""


@dataclass(frozen=True)
class IndexSpec:
    """One global secondary index: a string partition key and a sort key."""

    name: str
    hash_key: str
    range_key: str
    range_type: str = "S"


@dataclass(frozen=True)
class TableSpec:
    """One table: partition key `pk` (S), optional sort key `sk`, and its indexes."""

    suffix: str
    purpose: str
    range_type: str | None = None
    indexes: tuple[IndexSpec, ...] = field(default=())

    def attribute_types(self) -> dict[str, str]:
        """Every key attribute of the table and its indexes with its DynamoDB type."""
        types = {"pk": "S"}
        if self.range_type is not None:
            types["sk"] = self.range_type
        for index in self.indexes:
            types[index.hash_key] = "S"
            types[index.range_key] = index.range_type
        return types


PIPELINES = TableSpec(
    "pipelines",
    "pipeline versions: pk pipeline_id, sk version; index `latest` lists the newest of each",
    range_type="N",
    indexes=(IndexSpec("latest", "glatest", "pk"),),
)
SESSIONS = TableSpec(
    "sessions",
    "sessions: pk session_id; listed newest first overall, by status, by pipeline, and the "
    "sparse claim and escalation indexes",
    indexes=(
        IndexSpec("by_created", "gall", "order"),
        IndexSpec("by_status", "gstatus", "order"),
        IndexSpec("by_pipeline", "gpipeline", "order"),
        IndexSpec("by_claim", "gclaim", "order"),  # sparse: sessions with a claim
        IndexSpec("by_escalated", "gescalated", "order"),  # sparse: escalated sessions
    ),
)
SESSION_ITEMS = TableSpec(
    "session-items",
    "per-session children: pk session_id, sk job:/op:/override: + key",
    range_type="S",
)
ERRORS = TableSpec(
    "errors",
    "error records: pk session_id, sk global seq; index by fingerprint, newest first",
    range_type="N",
    indexes=(IndexSpec("by_fingerprint", "gfingerprint", "sk", "N"),),
)
RESOLUTIONS = TableSpec(
    "resolutions",
    "remediation outcomes: pk resolution_id; by fingerprint, error code, error id, all",
    indexes=(
        IndexSpec("by_fingerprint", "gfingerprint", "seq", "N"),
        IndexSpec("by_code", "gcode", "seq", "N"),
        IndexSpec("by_error", "gerror", "seq", "N"),
        IndexSpec("by_seq", "gall", "seq", "N"),
    ),
)
TICKETS = TableSpec(
    "tickets",
    "approval tickets: pk ticket_id; listed newest first overall, by status, by requester",
    indexes=(
        IndexSpec("by_created", "gall", "order"),
        IndexSpec("by_status", "gstatus", "order"),
        IndexSpec("by_requester", "grequester", "order"),
    ),
)
AUDIT = TableSpec(
    "audit",
    "hash-chained audit log: pk 'audit', sk seq; by actor, action, session",
    range_type="N",
    indexes=(
        IndexSpec("by_actor", "gactor", "sk", "N"),
        IndexSpec("by_action", "gaction", "sk", "N"),
        IndexSpec("by_session", "gsession", "sk", "N"),
    ),
)
EVENTS = TableSpec(
    "events",
    "status-change feed: pk 'events', sk seq (from the events counter)",
    range_type="N",
)
KV = TableSpec(
    "kv",
    "small keyed records: counters, idempotency keys, pending-ticket guards, error-id guards, "
    "rerun counts, action totals (sk = action), recovery plans, schema version, "
    "insight decisions (pk insights:<pipeline>, sk insight id), error labels (pk labels, "
    "sk seq; sparse index by_label_template on a digest of the label's template)",
    range_type="S",
    indexes=(IndexSpec("by_label_template", "glabel", "sk"),),
)

TABLES: tuple[TableSpec, ...] = (
    PIPELINES,
    SESSIONS,
    SESSION_ITEMS,
    ERRORS,
    RESOLUTIONS,
    TICKETS,
    AUDIT,
    EVENTS,
    KV,
)
