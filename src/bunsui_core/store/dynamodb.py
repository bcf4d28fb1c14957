"""The AWS store: the Store protocol on DynamoDB, with the SQLite store's semantics and codes.

boto3 is imported here and nowhere else, so the local backend never loads the AWS SDK.

Tables (named `<prefix>-<suffix>`, defined in `_dynamodb_tables.py`; keys `pk`/`sk`):

    pipelines      pk pipeline_id, sk version (N). The newest version of each pipeline carries
                   `glatest`, moved in the same transaction that adds a version, so index
                   `latest` (glatest, pk) lists the newest of every pipeline by id.
    sessions       pk session_id. Indexes by_created (gall='sessions', order), by_status
                   (gstatus, order), by_pipeline (gpipeline, order); `order` is
                   "<created_at> <session_id>", so a descending Query is newest first with the
                   keyset tie-break of the SQLite store. Sparse indexes by_claim (gclaim,
                   order) and by_escalated (gescalated, order) hold only sessions with a claim
                   or an escalation (claim_holder / claim_expires kept beside them).
    session-items  pk session_id, sk "job:<json key>" | "op:<json key>" | "override:<json key>".
    errors         pk session_id, sk seq (N, from the `errors` counter); index by_fingerprint.
    resolutions    pk resolution_id, attribute seq; indexes by_fingerprint, by_code, by_error,
                   by_seq (all). Totals per action live in `kv`.
    tickets        pk ticket_id; indexes by_created, by_status, by_requester (newest first).
    audit          pk 'audit', sk seq (N); indexes by_actor, by_action, by_session.
    events         pk 'events', sk seq (N).
    kv             pk/sk strings: `counter:<name>` (events, errors, resolutions), `idem:<key>`,
                   `pending:<json [action, arguments_hash, requested_by]>` (the one pending
                   ticket), `error:<error_id>` (uniqueness), `reruns:<root>` (count_reruns),
                   `stats:<json [kind, key]>` sk "=<action>" (running totals), `plan:<id>`,
                   `schema`, `labels` sk seq (error labels; sparse index by_label_template on
                   `glabel`, a digest of the label's template, filled in by `aws init` for
                   labels written before schema 3).

Access patterns (every request is GetItem, Query, PutItem, UpdateItem, DeleteItem or
TransactWriteItems; nothing Scans):

    session by id / CAS ........ GetItem (consistent) + UpdateItem `version = :expected`
    sessions newest first ...... Query sessions.by_created|by_status|by_pipeline, descending,
                                 sort-key bound from created_before / the cursor; the other
                                 filters are checked on each item (status with pipeline)
    pipeline latest / version .. Query pipelines pk desc Limit 1 / GetItem; all: Query latest
    job / operation runs ....... Query session-items pk = session, begins_with(sk)
    errors of a session ........ Query errors pk = session (consistent, append order)
    errors by fingerprint ...... Query errors.by_fingerprint descending
    reruns of a root ........... GetItem kv reruns:<root> (incremented when a rerun is created)
    resolutions / totals ....... Query resolutions.by_* descending / Query kv stats:<key>
    tickets .................... GetItem; pending one via kv pending:<...>; lists via indexes
    audit ...................... Query audit pk desc Limit 1 (head), ascending from after_seq;
                                 filtered lists via by_session|by_actor|by_action
    events ..................... Query events pk ascending from after_seq
    error labels ............... Query kv pk = labels (all); by template: one Query of
                                 kv.by_label_template per template of the analysed messages

Consistency: reads by key and Queries on base tables are strongly consistent. Queries on
indexes (listings of sessions, tickets, pipelines, resolutions; filtered audit lists; errors
by fingerprint, labels by template) are eventually consistent on AWS: a write may take a
moment to show there.
Everything that decides something (CAS, idempotency keys, the pending ticket, rerun counts,
the audit head, totals) reads a base table.

Large records: a body over 32 KiB is stored zlib-compressed (`bodyz`, binary); one still
over 300 KiB compressed is refused with INVALID_ARGUMENT (DynamoDB items stop at 400 KB).

Events: a status change and its event are written in one TransactWriteItems; the event's
seq comes from an atomic counter (UpdateItem ADD) taken just before. A transaction that fails
leaves its seq unused, so it is filled with a tombstone that readers skip. A writer that dies
between taking a seq and committing leaves a hole; list_events stops before a hole until the
event after it is `event_hole_grace` old, so a slow writer's event is not skipped, and a dead
writer stalls the feed for at most that long. Seqs therefore increase but may have gaps.

Audit: append_audit reads the head and puts seq = head + 1 with attribute_not_exists; a lost
race re-reads and retries, so concurrent writers can never fork the chain.

Hot keys, accepted at bunsui's scale: the audit log, the event feed, each counter and the
`gall` partitions of the listing indexes are one partition key each (about 1,000 writes a
second per key on AWS).

Failures: a lost condition is CONFLICT (or the method's own meaning: exists already, changed
concurrently); throttling, a busy service or an unreachable endpoint is STORE_LOCKED
(retryable); a missing table or index is STORE_CORRUPT naming `bunsui aws init`; an item that
does not parse is STORE_CORRUPT; IAM refusing is PERMISSION_DENIED; with `read_only` every
write is READ_ONLY before any request is sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import random
import re
import time
import zlib
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from pydantic import BaseModel, computed_field
from pydantic_core import PydanticSerializationError

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
from bunsui_core.model.timestamps import UTC_FORMAT
from bunsui_core.store._dynamodb_tables import (
    AUDIT,
    ERRORS,
    EVENTS,
    KV,
    PIPELINES,
    RESOLUTIONS,
    SCHEMA_VERSION,
    SESSION_ITEMS,
    SESSIONS,
    TABLES,
    TICKETS,
    TableSpec,
)
from bunsui_core.store._records import RecordT, json_object, parse_record
from bunsui_core.store.base import (
    CAS_ATTEMPTS,
    PipelineVersion,
    SessionFilter,
    SessionPage,
    check_ticket_transition,
    decode_cursor,
    encode_cursor,
)

Item = dict[str, dict[str, Any]]

COMPRESS_ABOVE = 32 * 1024
"""Bodies larger than this (UTF-8 bytes) are stored zlib-compressed."""
MAX_BODY = 300 * 1024
"""Compressed bodies larger than this are refused: the item must stay under 400 KB."""
AUDIT_ATTEMPTS = 64
"""Lost head races an append tolerates before reporting STORE_LOCKED (retryable)."""
EVENT_HOLE_GRACE = timedelta(seconds=60)
"""How long list_events waits for a taken-but-uncommitted event seq before skipping it."""
ORDER_SEP = " "
"""Joins created_at and id in index sort keys; sorts below every timestamp character."""
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    }
)
THROTTLED_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
ACCESS_DENIED = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
    }
)


NO_REGION = (
    "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION, or region under aws: in "
    "$BUNSUI_HOME/config.yaml"
)


class _ConditionFailedError(ConflictError):
    """A conditional write (or a transaction item's condition) did not hold."""

    def __init__(self, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.reasons = reasons or []


class TableReport(BaseModel):
    """What `bunsui aws doctor` shows for one table."""

    name: str
    purpose: str
    exists: bool
    status: str | None = None
    missing_indexes: list[str] = []
    inactive_indexes: list[str] = []
    problems: list[str] = []
    item_count: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Usable as is: present, active, every index present and active, keys as expected."""
        return (
            self.exists
            and self.status == "ACTIVE"
            and not (self.missing_indexes or self.inactive_indexes or self.problems)
        )


# attribute values


def _s(value: str) -> dict[str, str]:
    """A string attribute; text DynamoDB cannot carry is INVALID_ARGUMENT, as with SQLite."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            "text with a lone surrogate cannot be stored or looked up"
        ) from None
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _audit_indexed(item: Item) -> dict[str, Any]:
    """What the audit indexes (gactor, gaction, gsession) and the hash attribute say."""

    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return value if isinstance(value, str) else None

    def key(name: str) -> str | None:
        value = text(name)
        return value[1:] if value is not None else None

    return {
        "actor": key("gactor"),
        "action": key("gaction"),
        "session_id": key("gsession"),
        "hash": text("hash"),
    }


def _g(value: str) -> dict[str, str]:
    """An index key built from data: prefixed, because index keys cannot be empty strings."""
    return _s("=" + value)


def _json_key(*parts: str | int) -> str:
    """An unambiguous key from several parts (ids may contain any separator)."""
    return json.dumps(list(parts))


def _json_prefix(first: str) -> str:
    """The prefix every `_json_key(first, ...)` of two or more parts starts with."""
    return json.dumps([first])[:-1] + ", "


def _order(created_at: str, record_id: str) -> str:
    return f"{created_at}{ORDER_SEP}{record_id}"


def _corrupt(table: str, key: str, why: str) -> StoreError:
    return StoreError(
        f"stored {table} record {key} is corrupt: {why}",
        code=ErrorCode.STORE_CORRUPT,
        details={"table": table, "key": key},
    )


def _template_key(template: str) -> str:
    """A label template's index key: a digest, since an index key holds at most 2 KB."""
    return hashlib.sha256(template.encode("utf-8", "surrogatepass")).hexdigest()


def _body(model: BaseModel) -> Item:
    """The record's JSON body, compressed when large; INVALID_ARGUMENT when too large."""
    try:
        text = model.model_dump_json()
        raw = text.encode("utf-8")
    except (UnicodeEncodeError, PydanticSerializationError):
        raise InvalidArgumentError(
            "text with a lone surrogate cannot be stored or looked up"
        ) from None
    if len(raw) <= COMPRESS_ABOVE:
        return {"body": {"S": text}}
    packed = zlib.compress(raw, 6)
    if len(packed) > MAX_BODY:
        raise InvalidArgumentError(
            f"{type(model).__name__} is too large for DynamoDB ({len(raw)} bytes, "
            f"{len(packed)} compressed; the limit is {MAX_BODY} compressed)",
            details={"bytes": len(raw), "compressed": len(packed), "limit": MAX_BODY},
        )
    return {"bodyz": {"B": packed}}


CLAIMED_MARK = "claims"
ESCALATED_MARK = "escalated"
"""Values of the sparse index keys `gclaim` / `gescalated`: only sessions with a claim (live or
lapsed, until released) or an escalation have them, so those listings read only those."""
LEASE_ATTRIBUTES = ("claim_holder", "claim_expires", "gclaim", "gescalated")


def _lease_attributes(session: Session) -> tuple[Item, tuple[str, ...]]:
    """The claim and escalation attributes a session item carries, and those it must drop."""
    holder, expires_at, escalated = LeaseState.of(session)
    present: Item = {}
    if holder is not None and expires_at is not None:
        present |= {"claim_holder": _s(holder), "claim_expires": _s(expires_at)}
        present["gclaim"] = _s(CLAIMED_MARK)
    if escalated:
        present["gescalated"] = _s(ESCALATED_MARK)
    return present, tuple(name for name in LEASE_ATTRIBUTES if name not in present)


def _lease_state(item: Item) -> LeaseState:
    """The stored claim and escalation of a session item, read from its indexed attributes."""
    return LeaseState(
        item.get("claim_holder", {}).get("S"),
        item.get("claim_expires", {}).get("S"),
        "gescalated" in item,
    )


def _body_update(model: BaseModel) -> tuple[str, str, dict[str, Any]]:
    """The body attribute to SET (plain or compressed), the other one to REMOVE, its value."""
    attrs = _body(model)
    name = next(iter(attrs))
    return name, "bodyz" if name == "body" else "body", attrs[name]


def _body_text(item: Item, *, table: str, key: str) -> str:
    if "S" in item.get("body", {}):
        return str(item["body"]["S"])
    if "B" in item.get("bodyz", {}):
        try:
            return zlib.decompress(item["bodyz"]["B"]).decode("utf-8")
        except (zlib.error, UnicodeDecodeError) as exc:
            raise _corrupt(table, key, f"compressed body unreadable ({exc})") from None
    raise _corrupt(table, key, "no body")


def _parse(model: type[RecordT], item: Item, *, table: str, key: str) -> RecordT:
    """Turn a stored item into a model (its body may be compressed)."""
    return parse_record(model, _body_text(item, table=table, key=key), table=table, key=key)


def _text(item: Item, name: str, *, table: str, key: str) -> str:
    try:
        return str(item[name]["S"])
    except (KeyError, TypeError):
        raise _corrupt(table, key, f"attribute {name} missing or not text") from None


def _int(item: Item, name: str, *, table: str, key: str) -> int:
    try:
        return int(item[name]["N"])
    except (KeyError, TypeError, ValueError):
        raise _corrupt(table, key, f"attribute {name} missing or not a number") from None


def _cancelled(reasons: list[str], message: str, details: dict[str, Any]) -> BunsuiError:
    """A cancelled transaction, by the reasons DynamoDB gives per item."""
    if "ConditionalCheckFailed" in reasons:
        return _ConditionFailedError("the record changed or exists already", reasons)
    if "TransactionConflict" in reasons:
        return ConflictError("a concurrent write touched the same record", details=details)
    if THROTTLED_REASONS & set(reasons):
        return _service_error("ThrottlingException", message, details)
    if "ValidationError" in reasons:
        return InvalidArgumentError(f"DynamoDB refused the write: {message}", details=details)
    return ConflictError(f"DynamoDB cancelled the write: {message}", details=details)


def _service_error(code: str, message: str, details: dict[str, Any]) -> BunsuiError:
    """Every other DynamoDB error code: retryable, missing tables, access, bad requests."""
    tables = ", ".join(details.get("tables", [])) or "?"
    if code in THROTTLED:
        return StoreError(
            f"DynamoDB is throttling or busy ({code}); retry shortly",
            code=ErrorCode.STORE_LOCKED,
            details=details,
        )
    if code == "ResourceNotFoundException" or "specified index" in message:
        return StoreError(
            f"DynamoDB table {tables} (or one of its indexes) does not exist; "
            f"run `bunsui aws init` to create bunsui's tables",
            code=ErrorCode.STORE_CORRUPT,
            details=details,
        )
    if code in ACCESS_DENIED:
        return PermissionDeniedError(f"AWS refused access: {message}", details=details)
    if code == "ValidationException" and "key element does not match" in message:
        return StoreError(
            f"DynamoDB table {tables} does not have bunsui's key layout; run `bunsui aws doctor`",
            code=ErrorCode.STORE_CORRUPT,
            details=details,
        )
    if code == "ValidationException":
        return InvalidArgumentError(f"DynamoDB refused the request: {message}", details=details)
    return StoreError(
        f"DynamoDB cannot be used: {code}: {message}", code=ErrorCode.STORE_CORRUPT, details=details
    )


class DynamoDBStore:
    """Store on DynamoDB tables `<table_prefix>-*`; thread-safe (one boto3 client)."""

    def __init__(
        self,
        *,
        table_prefix: str = "bunsui",
        region: str | None = None,
        endpoint_url: str | None = None,
        read_only: bool = False,
        session: boto3.session.Session | None = None,
        max_attempts: int = 5,
    ) -> None:
        if not TABLE_NAME.match(table_prefix + "-x"):
            raise InvalidArgumentError(
                f"table prefix {table_prefix!r} is not usable in DynamoDB table names",
                details={"field": "table_prefix"},
            )
        self.table_prefix = table_prefix
        self.read_only = read_only
        self.event_hole_grace = EVENT_HOLE_GRACE
        self.poll_seconds = 1.0
        config = Config(retries={"mode": "standard", "max_attempts": max_attempts})
        try:
            self._client = (session or boto3.session.Session()).client(
                "dynamodb", region_name=region, endpoint_url=endpoint_url, config=config
            )
        except NoRegionError:
            raise InvalidArgumentError(NO_REGION, details={"field": "region"}) from None

    def close(self) -> None:
        """Close the client's connections; nothing is buffered, so skipping this loses nothing."""
        self._client.close()

    def table_name(self, spec: TableSpec) -> str:
        """The DynamoDB name of one of bunsui's tables."""
        return f"{self.table_prefix}-{spec.suffix}"

    # plumbing

    def _writable(self) -> None:
        if self.read_only:
            raise PermissionDeniedError(
                "read-only mode: bunsui writes nothing", code=ErrorCode.READ_ONLY
            )

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        """One DynamoDB request, its failure mapped to a coded bunsui error."""
        try:
            return getattr(self._client, operation)(**params)  # type: ignore[no-any-return]
        except ClientError as exc:
            raise self._translate(exc, params) from None
        except (ConnectionError, HTTPClientError) as exc:
            raise StoreError(
                f"cannot reach DynamoDB: {exc}",
                code=ErrorCode.STORE_LOCKED,
                details={"operation": operation},
            ) from None
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise PermissionDeniedError(
                f"no usable AWS credentials: {exc}", details={"operation": operation}
            ) from None
        except NoRegionError:
            raise InvalidArgumentError(NO_REGION, details={"field": "region"}) from None
        except ParamValidationError as exc:
            raise InvalidArgumentError(
                f"DynamoDB refused the request: {exc}", details={"operation": operation}
            ) from None
        except BotoCoreError as exc:
            raise StoreError(
                f"DynamoDB cannot be used: {exc}",
                code=ErrorCode.STORE_CORRUPT,
                details={"operation": operation},
            ) from None

    def _translate(self, exc: ClientError, params: dict[str, Any]) -> BunsuiError:
        """ClientError -> bunsui code (CONFLICT, STORE_LOCKED, STORE_CORRUPT, ...)."""
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        details: dict[str, Any] = {"aws_code": code, "tables": self._tables_of(params)}
        if code == "ConditionalCheckFailedException":
            return _ConditionFailedError("the record changed or exists already")
        if code == "TransactionCanceledException":
            reasons = [
                str(reason.get("Code") or "None")
                for reason in exc.response.get("CancellationReasons", [])
            ]
            return _cancelled(reasons, message, {**details, "reasons": reasons})
        if code == "TransactionConflictException":
            return ConflictError("a concurrent write touched the same record", details=details)
        return _service_error(code, message, details)

    @staticmethod
    def _tables_of(params: dict[str, Any]) -> list[str]:
        if "TableName" in params:
            return [str(params["TableName"])]
        names = {
            str(body["TableName"])
            for entry in params.get("TransactItems", [])
            for body in entry.values()
            if isinstance(body, dict) and "TableName" in body
        }
        return sorted(names)

    def _get(self, spec: TableSpec, key: Item) -> Item | None:
        reply = self._call(
            "get_item", TableName=self.table_name(spec), Key=key, ConsistentRead=True
        )
        return reply.get("Item")

    def _query(
        self,
        spec: TableSpec,
        key: str,
        names: dict[str, str],
        values: Item,
        *,
        index: str | None = None,
        forward: bool = True,
        page_size: int | None = None,
    ) -> Iterator[Item]:
        """Items of one partition in sort-key order, page by page (stop iterating to stop)."""
        params: dict[str, Any] = {
            "TableName": self.table_name(spec),
            "KeyConditionExpression": key,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": forward,
        }
        if index is None:
            params["ConsistentRead"] = True
        else:
            params["IndexName"] = index
        if page_size is not None:
            params["Limit"] = max(1, min(page_size, 1000))
        while True:
            page = self._call("query", **params)
            yield from page.get("Items", [])
            if not page.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _partition(
        self,
        spec: TableSpec,
        pk: str,
        *,
        prefix: str | None = None,
        forward: bool = True,
        page_size: int | None = None,
    ) -> Iterator[Item]:
        """A base-table partition (consistent), optionally only sort keys with a prefix."""
        key, names, values = "#pk = :pk", {"#pk": "pk"}, {":pk": _s(pk)}
        if prefix is not None:
            key += " AND begins_with(#sk, :prefix)"
            names["#sk"] = "sk"
            values[":prefix"] = _s(prefix)
        return self._query(spec, key, names, values, forward=forward, page_size=page_size)

    def _index(
        self,
        spec: TableSpec,
        index: str,
        hash_key: str,
        value: str,
        *,
        range_key: str | None = None,
        op: str = "",
        bound: str | int | None = None,
        forward: bool = True,
        page_size: int | None = None,
    ) -> Iterator[Item]:
        """One partition of an index, optionally bounded on its sort key (`op` `bound`)."""
        key, names, values = "#h = :h", {"#h": hash_key}, {":h": _s(value)}
        if range_key is not None and bound is not None:
            key += f" AND #r {op} :r"
            names["#r"] = range_key
            values[":r"] = _n(bound) if isinstance(bound, int) else _s(bound)
        return self._query(
            spec, key, names, values, index=index, forward=forward, page_size=page_size
        )

    def _transact(self, operations: list[dict[str, Any]]) -> None:
        self._call("transact_write_items", TransactItems=operations)

    def _put(self, spec: TableSpec, item: Item, *, new: bool = False) -> dict[str, Any]:
        """PutItem; with `new`, only when no item has this key yet."""
        body: dict[str, Any] = {"TableName": self.table_name(spec), "Item": item}
        if new:
            body["ConditionExpression"] = "attribute_not_exists(pk)"
        return body

    def _next_seq(self, counter: str) -> int:
        """Take the next number of an atomic counter (UpdateItem ADD)."""
        reply = self._call(
            "update_item",
            TableName=self.table_name(KV),
            Key={"pk": _s(f"counter:{counter}"), "sk": _s(".")},
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": _n(1)},
            ReturnValues="UPDATED_NEW",
        )
        return int(reply["Attributes"]["n"]["N"])

    def _transact_with_event(
        self,
        operations: list[dict[str, Any]],
        kind: EventKind,
        record_id: str,
        status: str,
        pipeline_id: str | None = None,
    ) -> None:
        """Commit `operations` and their status-change event together."""
        self._transact_with_events(operations, [(kind, record_id, status, pipeline_id)])

    def _transact_with_events(
        self,
        operations: list[dict[str, Any]],
        changes: list[tuple[EventKind, str, str, str | None]],
    ) -> None:
        """Commit `operations` and their events (kind, id, status, pipeline) together.

        Each seq is taken just before the commit; if the commit fails the seqs get tombstones,
        so the feed has no hole for readers to wait on.
        """
        seqs: list[int] = []
        puts: list[dict[str, Any]] = []
        for kind, record_id, status, pipeline_id in changes:
            seq = self._next_seq("events")
            seqs.append(seq)
            event = Event(
                seq=seq,
                at=utc_now(),
                kind=kind,
                id=record_id,
                status=status,
                pipeline_id=pipeline_id,
            )
            item = {"pk": _s("events"), "sk": _n(seq), "at": _s(event.at), **_body(event)}
            puts.append({"Put": self._put(EVENTS, item, new=True)})
        try:
            self._transact([*operations, *puts])
        except Exception:
            for seq in seqs:
                self._bury_event(seq)
            raise

    def _bury_event(self, seq: int) -> None:
        """Mark an event seq whose transaction failed as dead (best effort)."""
        item: Item = {
            "pk": _s("events"),
            "sk": _n(seq),
            "at": _s(utc_now()),
            "dead": {"BOOL": True},
        }
        # fails when committed after all, or unreachable: readers skip the hole after the grace
        with contextlib.suppress(BunsuiError):
            self._call("put_item", **self._put(EVENTS, item, new=True))

    # pipelines

    def _latest_pipeline(self, pipeline_id: str) -> PipelineVersion | None:
        for item in self._partition(PIPELINES, pipeline_id, forward=False, page_size=1):
            return _parse(PipelineVersion, item, table="pipelines", key=pipeline_id)
        return None

    def register_pipeline(
        self, pipeline_id: str, pipeline: Pipeline, *, source: str | None = None
    ) -> PipelineVersion:
        """Store a new version when the content differs from the latest, else return the latest.

        The new version is a conditional put, so two registrations racing cannot both take the
        same number; the loser re-reads and either finds its content or takes the next one.
        """
        self._writable()
        digest = content_hash(pipeline)
        for _ in range(CAS_ATTEMPTS):
            current = self._latest_pipeline(pipeline_id)
            if current is not None and current.content_hash == digest:
                return current
            record = PipelineVersion(
                pipeline_id=pipeline_id,
                version=(current.version + 1) if current is not None else 1,
                content_hash=digest,
                registered_at=utc_now(),
                source=source,
                pipeline=pipeline,
            )
            item = {
                "pk": _s(pipeline_id),
                "sk": _n(record.version),
                "glatest": _s("pipelines"),
                "content_hash": _s(digest),
                "registered_at": _s(record.registered_at),
                **_body(record),
            }
            operations: list[dict[str, Any]] = [{"Put": self._put(PIPELINES, item, new=True)}]
            if current is not None:
                operations.append(
                    {
                        "Update": {
                            "TableName": self.table_name(PIPELINES),
                            "Key": {"pk": _s(pipeline_id), "sk": _n(current.version)},
                            "UpdateExpression": "REMOVE #latest",
                            "ConditionExpression": "attribute_exists(#latest)",
                            "ExpressionAttributeNames": {"#latest": "glatest"},
                        }
                    }
                )
            try:
                self._transact(operations)
            except ConflictError:
                continue
            return record
        raise ConflictError(
            f"pipeline {pipeline_id} kept changing; gave up after {CAS_ATTEMPTS} attempts",
            details={"pipeline_id": pipeline_id},
        )

    def get_pipeline(self, pipeline_id: str, version: int | None = None) -> PipelineVersion | None:
        """A version (the latest when `version` is None), or None when missing."""
        if version is None:
            return self._latest_pipeline(pipeline_id)
        item = self._get(PIPELINES, {"pk": _s(pipeline_id), "sk": _n(version)})
        if item is None:
            return None
        return _parse(PipelineVersion, item, table="pipelines", key=f"{pipeline_id}/{version}")

    def list_pipelines(self) -> list[PipelineVersion]:
        """The latest version of every pipeline, by id (index `latest`)."""
        latest: dict[str, PipelineVersion] = {}
        for item in self._index(PIPELINES, "latest", "glatest", "pipelines"):
            pipeline_id = _text(item, "pk", table="pipelines", key="?")
            record = _parse(PipelineVersion, item, table="pipelines", key=pipeline_id)
            # the index catches up after a new version: keep the newest seen
            if pipeline_id not in latest or latest[pipeline_id].version < record.version:
                latest[pipeline_id] = record
        return [latest[pipeline_id] for pipeline_id in sorted(latest)]

    # sessions

    def create_session(self, session: Session) -> Session:
        """Insert a new session with its event; CONFLICT when the id exists."""
        self._writable()
        item: Item = {
            "pk": _s(session.session_id),
            "pipeline_id": _s(session.pipeline_id),
            "status": _s(str(session.status)),
            "created_at": _s(session.created_at),
            "version": _n(session.version),
            "gall": _s("sessions"),
            "gstatus": _g(str(session.status)),
            "gpipeline": _g(session.pipeline_id),
            "order": _s(_order(session.created_at, session.session_id)),
            **_body(session),
            **_lease_attributes(session)[0],
        }
        if session.root_session_id is not None:
            item["root_session_id"] = _s(session.root_session_id)
        operations: list[dict[str, Any]] = [{"Put": self._put(SESSIONS, item, new=True)}]
        if session.root_session_id is not None:
            operations.append(self._count_op(f"reruns:{session.root_session_id}"))
        try:
            self._transact_with_event(
                operations,
                EventKind.SESSION,
                session.session_id,
                str(session.status),
                session.pipeline_id,
            )
        except _ConditionFailedError:
            raise ConflictError(
                f"session {session.session_id} already exists",
                details={"session_id": session.session_id},
            ) from None
        return session

    def _count_op(self, pk: str) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name(KV),
                "Key": {"pk": _s(pk), "sk": _s(".")},
                "UpdateExpression": "ADD #n :one",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {":one": _n(1)},
            }
        }

    def get_session(self, session_id: str) -> Session | None:
        """The session, or None when missing."""
        item = self._get(SESSIONS, {"pk": _s(session_id)})
        return self._session_from_item(session_id, item) if item is not None else None

    @staticmethod
    def _session_from_item(session_id: str, item: Item) -> Session:
        session = _parse(Session, item, table="sessions", key=session_id)
        heartbeat_at = item.get("heartbeat_at", {}).get("S")
        if heartbeat_at and session.runner is not None:
            session.runner.heartbeat_at = max(heartbeat_at, session.runner.heartbeat_at)
        return session

    def update_session(self, session: Session, *, expected_version: int) -> Session:
        """Compare-and-set on `version`, enforcing the status transition table."""
        self._writable()
        session_id = session.session_id
        item = self._get(SESSIONS, {"pk": _s(session_id)})
        if item is None:
            raise NotFoundError(
                f"session {session_id} not found", details={"session_id": session_id}
            )
        status = _text(item, "status", table="sessions", key=session_id)
        version = _int(item, "version", table="sessions", key=session_id)
        if version != expected_version:
            raise ConflictError(
                f"session {session_id} changed concurrently "
                f"(version {version}, expected {expected_version})",
                details={"session_id": session_id, "version": version},
            )
        if status != session.status:
            check_transition(session_id, SessionStatus(status), session.status)
        updated = session.model_copy(
            update={"version": expected_version + 1, "updated_at": utc_now()}
        )
        lease, unleased = _lease_attributes(updated)
        update = self._cas_update(
            SESSIONS,
            {"pk": _s(session_id)},
            updated,
            expected_version,
            {"status": _s(str(updated.status)), "gstatus": _g(str(updated.status)), **lease},
            remove=unleased,
        )
        changes: list[tuple[EventKind, str, str, str | None]] = []
        if status != updated.status:
            changes.append(
                (EventKind.SESSION, session_id, str(updated.status), session.pipeline_id)
            )
        changes.extend(
            (EventKind.CLAIM, session_id, change, session.pipeline_id)
            for change in claim_events(_lease_state(item), updated)
        )
        try:
            if changes:
                self._transact_with_events([{"Update": update}], changes)
            else:
                self._call("update_item", **update)
        except _ConditionFailedError:
            raise ConflictError(
                f"session {session_id} changed concurrently (expected version {expected_version})",
                details={"session_id": session_id},
            ) from None
        return updated

    def _cas_update(
        self,
        spec: TableSpec,
        key: Item,
        record: BaseModel,
        expected_version: int,
        fields: Item,
        *,
        remove: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        """UpdateItem (or transaction Update) writing body and fields, and removing the
        `remove` attributes, if version still matches.

        An update, not a put, so attributes written elsewhere (heartbeat_at) survive.
        """
        body, stale, value = _body_update(record)
        names = {"#version": "version", "#body": body, "#stale": stale}
        names.update({f"#{name}": name for name in remove})
        values: Item = {
            ":expected": _n(expected_version),
            ":version": _n(expected_version + 1),
            ":body": value,
        }
        sets = ["#body = :body", "#version = :version"]
        for name, value in fields.items():
            names[f"#{name}"] = name
            values[f":{name}"] = value
            sets.append(f"#{name} = :{name}")
        return {
            "TableName": self.table_name(spec),
            "Key": key,
            "UpdateExpression": f"SET {', '.join(sets)} "
            f"REMOVE {', '.join(['#stale', *(f'#{name}' for name in remove)])}",
            "ConditionExpression": "#version = :expected",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }

    def touch_heartbeat(self, session_id: str, heartbeat_at: str) -> None:
        """Record that the runner is alive; not a state change, so the version stays."""
        self._writable()
        with contextlib.suppress(_ConditionFailedError):  # unknown session: nothing created
            self._call(
                "update_item",
                TableName=self.table_name(SESSIONS),
                Key={"pk": _s(session_id)},
                UpdateExpression="SET #hb = :hb",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#hb": "heartbeat_at"},
                ExpressionAttributeValues={":hb": _s(heartbeat_at)},
            )

    def list_sessions(
        self, session_filter: SessionFilter, *, limit: int, cursor: str | None = None
    ) -> SessionPage:
        """Sessions matching the filter, newest first, keyset-paginated on (created_at, id)."""
        if limit < 1:
            raise InvalidArgumentError("limit must be at least 1", details={"field": "limit"})
        after = decode_cursor(cursor) if cursor is not None else None
        if after is not None:
            for part in after:
                _s(part)  # a lone surrogate is INVALID_ARGUMENT, as with SQLite
        found = list(islice(self._matching_sessions(session_filter, after, limit + 1), limit + 1))
        next_cursor = None
        if len(found) > limit:
            created_at, session_id, _ = found[limit - 1]
            next_cursor = encode_cursor(created_at, session_id)
        return SessionPage(
            sessions=[self._session_from_item(sid, item) for _, sid, item in found[:limit]],
            next_cursor=next_cursor,
        )

    def _matching_sessions(
        self, session_filter: SessionFilter, after: tuple[str, str] | None, wanted: int
    ) -> Iterator[tuple[str, str, Item]]:
        """(created_at, session_id, item) newest first, from the index that narrows most."""
        status = str(session_filter.status) if session_filter.status is not None else None
        pipeline_id = session_filter.pipeline_id
        if session_filter.claimed or session_filter.claimed_by is not None:
            index, hash_key, value = "by_claim", "gclaim", CLAIMED_MARK
        elif session_filter.escalated:
            index, hash_key, value = "by_escalated", "gescalated", ESCALATED_MARK
        elif pipeline_id is not None:
            index, hash_key, value = "by_pipeline", "gpipeline", "=" + pipeline_id
        elif status is not None:
            index, hash_key, value = "by_status", "gstatus", "=" + status
        else:
            index, hash_key, value = "by_created", "gall", "sessions"
        bounds = []
        if session_filter.created_before is not None:
            bounds.append(_order(session_filter.created_before, ""))
        if after is not None:
            bounds.append(_order(*after))
        leases = any(
            value is not None
            for value in (
                session_filter.claimed,
                session_filter.claimed_by,
                session_filter.escalated,
            )
        )
        checked = sum(v is not None for v in (status, pipeline_id)) + leases > 1
        now = utc_now()
        for item in self._index(
            SESSIONS,
            index,
            hash_key,
            value,
            range_key="order",
            op="<",
            bound=min(bounds) if bounds else None,
            forward=False,
            page_size=max(wanted, 100) if checked else wanted,
        ):
            session_id = _text(item, "pk", table="sessions", key="?")
            created_at = _text(item, "created_at", table="sessions", key=session_id)
            lower = session_filter.created_after
            if lower is not None and created_at <= lower:
                return  # descending: everything further is older still
            # the sort-key bound is exact for bunsui's timestamps; checked again to be sure
            upper = session_filter.created_before
            if (
                (upper is None or created_at < upper)
                and (after is None or (created_at, session_id) < after)
                and (status is None or item.get("status", {}).get("S") == status)
                and (pipeline_id is None or item.get("pipeline_id", {}).get("S") == pipeline_id)
                and (not leases or session_filter.lease_matches(_lease_state(item), now))
            ):
                yield created_at, session_id, item

    # runs

    def put_job_run(self, job_run: JobRun) -> None:
        """Insert or replace the run of one job in one session."""
        self._writable()
        item = {
            "pk": _s(job_run.session_id),
            "sk": _s("job:" + _json_key(job_run.job_id)),
            **_body(job_run),
        }
        self._call("put_item", **self._put(SESSION_ITEMS, item))

    def list_job_runs(self, session_id: str) -> list[JobRun]:
        """Job runs of a session, in no particular order."""
        return [
            _parse(JobRun, item, table="job_runs", key=f"{session_id}/{item['sk']['S']}")
            for item in self._partition(SESSION_ITEMS, session_id, prefix="job:")
        ]

    def put_operation_run(self, operation_run: OperationRun) -> None:
        """Insert or replace the run of one operation in one session."""
        self._writable()
        item = {
            "pk": _s(operation_run.session_id),
            "sk": _s("op:" + _json_key(operation_run.job_id, operation_run.operation_id)),
            **_body(operation_run),
        }
        self._call("put_item", **self._put(SESSION_ITEMS, item))

    def put_runs(
        self, job_runs: Sequence[JobRun] = (), operation_runs: Sequence[OperationRun] = ()
    ) -> None:
        """Insert or replace job and operation runs, one request each (every put is by key,
        so a partial write followed by a retry ends in the same state)."""
        for job_run in job_runs:
            self.put_job_run(job_run)
        for operation_run in operation_runs:
            self.put_operation_run(operation_run)

    def list_operation_runs(self, session_id: str, job_id: str | None = None) -> list[OperationRun]:
        """Operation runs of a session (of one job when given)."""
        prefix = "op:" + (_json_prefix(job_id) if job_id is not None else "")
        return [
            _parse(
                OperationRun, item, table="operation_runs", key=f"{session_id}/{item['sk']['S']}"
            )
            for item in self._partition(SESSION_ITEMS, session_id, prefix=prefix)
        ]

    # errors

    def add_error(self, error: ErrorRecord) -> None:
        """Append an error record (after every earlier one); CONFLICT if its id exists."""
        self._writable()
        seq = self._next_seq("errors")
        item: Item = {
            "pk": _s(error.session_id),
            "sk": _n(seq),
            "error_id": _s(error.error_id),
            "gfingerprint": _g(error.fingerprint),
            **_body(error),
        }
        guard: Item = {
            "pk": _s(f"error:{error.error_id}"),
            "sk": _s("."),
            "seq": _n(seq),
            "session_id": _s(error.session_id),
        }
        try:
            self._transact(
                [{"Put": self._put(KV, guard, new=True)}, {"Put": self._put(ERRORS, item)}]
            )
        except _ConditionFailedError:
            raise ConflictError(
                f"error record {error.error_id} exists already; records never change",
                details={"error_id": error.error_id},
            ) from None

    def list_errors(self, session_id: str) -> list[ErrorRecord]:
        """Errors of a session in the order they happened."""
        return [
            _parse(ErrorRecord, item, table="errors", key=f"{session_id}/{item['sk']['N']}")
            for item in self._partition(ERRORS, session_id)
        ]

    def get_error(self, error_id: str) -> ErrorRecord | None:
        """One error record by id, through its id guard (which names session and seq); None
        for records stored before guards named their session."""
        guard = self._get(KV, {"pk": _s(f"error:{error_id}"), "sk": _s(".")})
        if guard is None:
            return None
        if "session_id" not in guard:
            # Guards written before they named their session: finding the record would take
            # a Scan, which no request path does.
            return None
        seq = _int(guard, "seq", table="kv", key=error_id)
        session_id = _text(guard, "session_id", table="kv", key=error_id)
        item = self._get(ERRORS, {"pk": _s(session_id), "sk": _n(seq)})
        return _parse(ErrorRecord, item, table="errors", key=error_id) if item else None

    def add_error_label(self, label: ErrorLabel) -> None:
        """Keep a person's label of an error, after every earlier label."""
        self._writable()
        seq = self._next_seq("labels")
        item: Item = {
            "pk": _s("labels"),
            "sk": _s(f"{seq:016d}"),
            "label_id": _s(label.label_id),
            "glabel": _s(_template_key(label.template)),
            **_body(label),
        }
        self._call("put_item", **self._put(KV, item, new=True))

    def list_error_labels(
        self, *, templates: Collection[str] | None = None, limit: int = 10_000
    ) -> list[ErrorLabel]:
        """Labels oldest first: every one (the labels partition), or those of `templates`
        (one index partition per template, so an analysis never reads other labels)."""
        if templates is None:
            items = list(
                itertools.islice(self._partition(KV, "labels", page_size=min(limit, 1000)), limit)
            )
        else:
            items = [
                item
                for template in sorted(set(templates))
                for item in self._index(
                    KV, "by_label_template", "glabel", _template_key(template), page_size=limit
                )
            ]
            items = sorted(items, key=lambda item: item["sk"]["S"])[:limit]
        return [
            _parse(ErrorLabel, item, table="kv", key=_text(item, "sk", table="kv", key="labels"))
            for item in items
        ]

    def _backfill_label_templates(self) -> str:
        """Give labels written before the by_label_template index (schema 2) their key."""
        count = 0
        for item in self._partition(KV, "labels"):
            if "glabel" in item:
                continue
            key = _text(item, "sk", table="kv", key="labels")
            template = _parse(ErrorLabel, item, table="kv", key=key).template
            self._call(
                "update_item",
                TableName=self.table_name(KV),
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET glabel = :g",
                ExpressionAttributeValues={":g": _s(_template_key(template))},
            )
            count += 1
        return f"indexed {count} error labels by template"

    def list_errors_by_fingerprint(
        self, fingerprint: str, *, limit: int, exclude_session_id: str | None = None
    ) -> list[ErrorRecord]:
        """Most recent errors with this fingerprint, from other sessions than the excluded one."""
        if limit < 1:
            return []
        excluded = exclude_session_id or ""
        found: list[ErrorRecord] = []
        for item in self._index(
            ERRORS,
            "by_fingerprint",
            "gfingerprint",
            "=" + fingerprint,
            forward=False,
            page_size=limit + 1,
        ):
            if item.get("pk", {}).get("S") == excluded:
                continue
            found.append(_parse(ErrorRecord, item, table="errors", key=fingerprint))
            if len(found) == limit:
                break
        return found

    def count_reruns(self, root_session_id: str) -> int:
        """How many sessions rerun this root session (counted as each one is created)."""
        item = self._get(KV, {"pk": _s(f"reruns:{root_session_id}"), "sk": _s(".")})
        return _int(item, "n", table="kv", key=root_session_id) if item else 0

    # learning

    @staticmethod
    def _stats_key(kind: str, key: str) -> str:
        return "stats:" + _json_key(kind, key)

    def add_resolution(self, resolution: Resolution) -> None:
        """Append an outcome and update both running totals in one transaction."""
        self._writable()
        seq = self._next_seq("resolutions")
        item: Item = {
            "pk": _s(resolution.resolution_id),
            "seq": _n(seq),
            "gall": _s("resolutions"),
            "gfingerprint": _g(resolution.fingerprint),
            "gcode": _g(resolution.error_code),
            **_body(resolution),
        }
        if resolution.error_id is not None:
            item["gerror"] = _g(resolution.error_id)
        success = 1 if resolution.outcome is Outcome.SUCCESS else 0
        operations: list[dict[str, Any]] = [{"Put": self._put(RESOLUTIONS, item, new=True)}]
        for kind, key in (
            ("fingerprint", resolution.fingerprint),
            ("error_code", resolution.error_code),
        ):
            operations.append(
                {
                    "Update": {
                        "TableName": self.table_name(KV),
                        "Key": {
                            "pk": _s(self._stats_key(kind, key)),
                            "sk": _s("=" + resolution.action),
                        },
                        "UpdateExpression": "SET #action = :action ADD #ok :ok, #bad :bad",
                        "ExpressionAttributeNames": {
                            "#action": "action",
                            "#ok": "successes",
                            "#bad": "failures",
                        },
                        "ExpressionAttributeValues": {
                            ":action": _s(resolution.action),
                            ":ok": _n(success),
                            ":bad": _n(1 - success),
                        },
                    }
                }
            )
        try:
            self._transact(operations)
        except _ConditionFailedError:
            raise ConflictError(
                f"resolution {resolution.resolution_id} exists already",
                details={"resolution_id": resolution.resolution_id},
            ) from None

    def action_stats(
        self, *, fingerprint: str | None = None, error_code: str | None = None
    ) -> list[ActionStats]:
        """Observed successes/failures per action for a fingerprint or an error code."""
        kind, key = ("fingerprint", fingerprint) if fingerprint else ("error_code", error_code)
        stats = []
        for item in self._partition(KV, self._stats_key(kind, key or "")):
            label = f"{kind}/{key}"
            stats.append(
                ActionStats(
                    action=_text(item, "action", table="kv", key=label),
                    successes=_int(item, "successes", table="kv", key=label),
                    failures=_int(item, "failures", table="kv", key=label),
                )
            )
        return stats

    def list_resolutions(
        self, *, fingerprint: str | None = None, error_code: str | None = None, limit: int = 50
    ) -> list[Resolution]:
        """Most recent outcomes, for one fingerprint, one error code, or all."""
        if limit < 1:
            return []
        if fingerprint:
            index, hash_key, value = "by_fingerprint", "gfingerprint", "=" + fingerprint
        elif error_code:
            index, hash_key, value = "by_code", "gcode", "=" + error_code
        else:
            index, hash_key, value = "by_seq", "gall", "resolutions"
        found = []
        for item in self._index(
            RESOLUTIONS, index, hash_key, value, forward=False, page_size=limit
        ):
            found.append(self._resolution(item))
            if len(found) == limit:
                break
        return found

    @staticmethod
    def _resolution(item: Item) -> Resolution:
        return _parse(Resolution, item, table="resolutions", key=item.get("pk", {}).get("S", "?"))

    def resolutions_of_errors(self, error_ids: list[str]) -> list[Resolution]:
        """Outcomes recorded against these errors, newest first (one index Query per id)."""
        ranked: list[tuple[int, Resolution]] = []
        for error_id in dict.fromkeys(error_ids):
            for item in self._index(RESOLUTIONS, "by_error", "gerror", "=" + error_id):
                seq = _int(item, "seq", table="resolutions", key=error_id)
                ranked.append((seq, self._resolution(item)))
        ranked.sort(key=lambda pair: pair[0], reverse=True)
        return [resolution for _, resolution in ranked]

    # overrides, idempotency, plans

    def add_override_version(self, override: OverrideVersion) -> None:
        """Store the next override version; CONFLICT if that version number is taken."""
        self._writable()
        item = {
            "pk": _s(override.session_id),
            "sk": _s("override:" + _json_key(override.job_id, override.version)),
            **_body(override),
        }
        try:
            self._call("put_item", **self._put(SESSION_ITEMS, item, new=True))
        except _ConditionFailedError:
            raise ConflictError(
                f"override version {override.version} of {override.job_id} exists already",
                details={"session_id": override.session_id, "job_id": override.job_id},
            ) from None

    def list_override_versions(
        self, session_id: str, job_id: str | None = None
    ) -> list[OverrideVersion]:
        """Override versions of a session (one job when given), by job id then version."""
        prefix = "override:" + (_json_prefix(job_id) if job_id is not None else "")
        versions = [
            _parse(
                OverrideVersion, item, table="job_overrides", key=f"{session_id}/{item['sk']['S']}"
            )
            for item in self._partition(SESSION_ITEMS, session_id, prefix=prefix)
        ]
        return sorted(versions, key=lambda o: (o.job_id, o.version))

    def claim_idempotency_key(self, key: str, session_id: str) -> str:
        """Bind key -> session_id unless bound already; returns the session the key names."""
        self._writable()
        item = {"pk": _s(f"idem:{key}"), "sk": _s("."), "session_id": _s(session_id)}
        for _ in range(CAS_ATTEMPTS):
            try:
                self._call("put_item", **self._put(KV, item, new=True))
            except _ConditionFailedError:
                bound = self.find_idempotency_key(key)
                if bound is not None:
                    return bound
                continue  # released in between: try to bind it again
            return session_id
        raise ConflictError(f"idempotency key {key} kept changing", details={"key": key})

    def find_idempotency_key(self, key: str) -> str | None:
        """The session id a key is bound to, or None."""
        item = self._get(KV, {"pk": _s(f"idem:{key}"), "sk": _s(".")})
        return _text(item, "session_id", table="kv", key=key) if item else None

    def release_idempotency_key(self, key: str, session_id: str) -> None:
        """Unbind a key whose session could not be created, so a retry can proceed."""
        self._writable()
        # bound to another session (or to none): not ours to release
        with contextlib.suppress(_ConditionFailedError):
            self._call(
                "delete_item",
                TableName=self.table_name(KV),
                Key={"pk": _s(f"idem:{key}"), "sk": _s(".")},
                ConditionExpression="#sid = :sid",
                ExpressionAttributeNames={"#sid": "session_id"},
                ExpressionAttributeValues={":sid": _s(session_id)},
            )

    def put_recovery_plan(self, plan: RecoveryPlan) -> None:
        """Store a plan so it can be executed by id later."""
        self._writable()
        item = {"pk": _s(f"plan:{plan.plan_id}"), "sk": _s("."), **_body(plan)}
        self._call("put_item", **self._put(KV, item))

    def get_recovery_plan(self, plan_id: str) -> RecoveryPlan | None:
        """The plan, or None when missing."""
        item = self._get(KV, {"pk": _s(f"plan:{plan_id}"), "sk": _s(".")})
        return _parse(RecoveryPlan, item, table="recovery_plans", key=plan_id) if item else None

    # insights: one kv partition per pipeline, sorted by insight id

    def put_insight_state(self, state: InsightState) -> None:
        """Insert or replace the decision on one insight."""
        self._writable()
        item = {
            "pk": _s(f"insights:{state.pipeline_id}"),
            "sk": _s(state.insight_id),
            **_body(state),
        }
        self._call("put_item", **self._put(KV, item))

    def list_insight_states(self, pipeline_id: str) -> list[InsightState]:
        """Decisions on one pipeline's insights, by insight id (one partition Query)."""
        return [
            _parse(InsightState, item, table="insight_states", key=item["sk"]["S"])
            for item in self._partition(KV, f"insights:{pipeline_id}")
        ]

    # approval tickets

    @staticmethod
    def _pending_key(action: str, arguments_hash: str, requested_by: str) -> Item:
        return {
            "pk": _s("pending:" + _json_key(action, arguments_hash, requested_by)),
            "sk": _s("."),
        }

    def create_ticket(self, ticket: Ticket) -> Ticket:
        """Insert a ticket with its event; a pending one also takes the pending-request guard
        in the same transaction, so a race cannot leave two identical pending tickets."""
        self._writable()
        item: Item = {
            "pk": _s(ticket.ticket_id),
            "action": _s(ticket.action),
            "arguments_hash": _s(ticket.arguments_hash),
            "requested_by": _s(ticket.requested_by),
            "status": _s(str(ticket.status)),
            "created_at": _s(ticket.created_at),
            "version": _n(ticket.version),
            "gall": _s("tickets"),
            "gstatus": _g(str(ticket.status)),
            "grequester": _g(ticket.requested_by),
            "order": _s(_order(ticket.created_at, ticket.ticket_id)),
            **_body(ticket),
        }
        operations: list[dict[str, Any]] = [{"Put": self._put(TICKETS, item, new=True)}]
        if ticket.status is TicketStatus.PENDING:
            guard = {
                **self._pending_key(ticket.action, ticket.arguments_hash, ticket.requested_by),
                "ticket_id": _s(ticket.ticket_id),
            }
            operations.append({"Put": self._put(KV, guard, new=True)})
        try:
            self._transact_with_event(
                operations, EventKind.TICKET, ticket.ticket_id, str(ticket.status)
            )
        except _ConditionFailedError:
            raise ConflictError(
                f"an identical {ticket.action} request by {ticket.requested_by} is pending",
                details={"action": ticket.action, "requested_by": ticket.requested_by},
            ) from None
        return ticket

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket, or None when missing."""
        item = self._get(TICKETS, {"pk": _s(ticket_id)})
        return _parse(Ticket, item, table="tickets", key=ticket_id) if item else None

    def find_pending_ticket(
        self, action: str, arguments_hash: str, requested_by: str
    ) -> Ticket | None:
        """The pending ticket for exactly this request (through its guard item), if any."""
        guard = self._get(KV, self._pending_key(action, arguments_hash, requested_by))
        if guard is None:
            return None
        ticket = self.get_ticket(_text(guard, "ticket_id", table="kv", key="pending"))
        return ticket if ticket is not None and ticket.status is TicketStatus.PENDING else None

    def update_ticket(self, ticket: Ticket, *, expected_version: int) -> Ticket:
        """Compare-and-set on `version`, enforcing the ticket transition table."""
        self._writable()
        ticket_id = ticket.ticket_id
        item = self._get(TICKETS, {"pk": _s(ticket_id)})
        if item is None:
            raise NotFoundError(f"ticket {ticket_id} not found", details={"ticket_id": ticket_id})
        status = _text(item, "status", table="tickets", key=ticket_id)
        version = _int(item, "version", table="tickets", key=ticket_id)
        if version != expected_version:
            raise ConflictError(
                f"ticket {ticket_id} changed concurrently (now {status})",
                details={"ticket_id": ticket_id, "status": status},
            )
        if status != ticket.status:
            check_ticket_transition(ticket_id, TicketStatus(status), ticket.status)
        updated = ticket.model_copy(update={"version": expected_version + 1})
        operations: list[dict[str, Any]] = [
            {
                "Update": self._cas_update(
                    TICKETS,
                    {"pk": _s(ticket_id)},
                    updated,
                    expected_version,
                    {"status": _s(str(updated.status)), "gstatus": _g(str(updated.status))},
                )
            }
        ]
        if status == TicketStatus.PENDING and updated.status is not TicketStatus.PENDING:
            stored = [
                _text(item, name, table="tickets", key=ticket_id)
                for name in ("action", "arguments_hash", "requested_by")
            ]
            operations.append(
                {
                    "Delete": {
                        "TableName": self.table_name(KV),
                        "Key": self._pending_key(*stored),
                        "ConditionExpression": "attribute_not_exists(pk) OR #tid = :tid",
                        "ExpressionAttributeNames": {"#tid": "ticket_id"},
                        "ExpressionAttributeValues": {":tid": _s(ticket_id)},
                    }
                }
            )
        try:
            if status != updated.status:
                self._transact_with_event(
                    operations, EventKind.TICKET, ticket_id, str(updated.status)
                )
            else:
                self._call("update_item", **operations[0]["Update"])
        except _ConditionFailedError:
            raise ConflictError(
                f"ticket {ticket_id} changed concurrently (expected version {expected_version})",
                details={"ticket_id": ticket_id},
            ) from None
        return updated

    def list_tickets(
        self, *, status: str | None = None, requested_by: str | None = None, limit: int = 50
    ) -> list[Ticket]:
        """Tickets, newest first (index by status, by requester, or by creation)."""
        if limit < 1:
            return []
        if status is not None:
            index, hash_key, value = "by_status", "gstatus", "=" + str(status)
        elif requested_by is not None:
            index, hash_key, value = "by_requester", "grequester", "=" + requested_by
        else:
            index, hash_key, value = "by_created", "gall", "tickets"
        checked = status is not None and requested_by is not None
        found = []
        for item in self._index(
            TICKETS,
            index,
            hash_key,
            value,
            forward=False,
            page_size=max(limit, 100) if checked else limit,
        ):
            if checked and item.get("requested_by", {}).get("S") != requested_by:
                continue
            found.append(
                _parse(Ticket, item, table="tickets", key=item.get("pk", {}).get("S", "?"))
            )
            if len(found) == limit:
                break
        return found

    # audit log

    def _audit_head_item(self) -> Item | None:
        for item in self._partition(AUDIT, "audit", forward=False, page_size=1):
            return item
        return None

    def append_audit(self, event: AuditEvent) -> AuditEntry:
        """Chain the event after the head: a conditional put of seq = head + 1, re-read and
        retried when another writer took that seq, so the chain never forks or skips."""
        self._writable()
        for attempt in range(AUDIT_ATTEMPTS):
            head = self._audit_head_item()
            if head is None:
                seq, prev_hash = 1, GENESIS_HASH
            else:
                seq = _int(head, "sk", table="audit", key="head") + 1
                prev_hash = _text(head, "hash", table="audit", key=str(seq - 1))
            entry = AuditEntry.chain(event, seq=seq, prev_hash=prev_hash)
            item: Item = {
                "pk": _s("audit"),
                "sk": _n(seq),
                "hash": _s(entry.hash),
                "actor": _s(entry.actor),
                "action": _s(entry.action),
                "gactor": _g(entry.actor),
                "gaction": _g(entry.action),
                **_body(entry),
            }
            if entry.session_id is not None:
                item["session_id"] = _s(entry.session_id)
                item["gsession"] = _g(entry.session_id)
            try:
                self._call("put_item", **self._put(AUDIT, item, new=True))
            except _ConditionFailedError:
                time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))  # noqa: S311 - jitter
                continue
            return entry
        raise StoreError(
            f"the audit log is contended: {AUDIT_ATTEMPTS} appends in a row lost the race; "
            f"retry shortly",
            code=ErrorCode.STORE_LOCKED,
            details={"attempts": AUDIT_ATTEMPTS},
        )

    def list_audit(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        actor: str | None = None,
        action: str | None = None,
        session_id: str | None = None,
    ) -> list[AuditEntry]:
        """Entries with seq > after_seq, oldest first, optionally filtered (via an index)."""
        if limit < 1:
            return []
        filters = {"actor": actor, "action": action, "session_id": session_id}
        wanted = {name: value for name, value in filters.items() if value is not None}
        items: Iterator[Item]
        # the most selective filter picks the index; the others are checked per item
        if session_id is not None:
            index, hash_key, value = "by_session", "gsession", "=" + session_id
        elif actor is not None:
            index, hash_key, value = "by_actor", "gactor", "=" + actor
        elif action is not None:
            index, hash_key, value = "by_action", "gaction", "=" + action
        if wanted:
            items = self._index(
                AUDIT,
                index,
                hash_key,
                value,
                range_key="sk",
                op=">",
                bound=after_seq,
                page_size=limit,
            )
        else:
            items = self._audit_after(after_seq, page_size=limit)
        found = []
        for item in items:
            if any(item.get(name, {}).get("S") != value for name, value in wanted.items()):
                continue
            found.append(
                _parse(AuditEntry, item, table="audit", key=item.get("sk", {}).get("N", "?"))
            )
            if len(found) == limit:
                break
        return found

    def recent_audit(self, *, actor: str, action: str, since: str, limit: int) -> list[AuditEntry]:
        """An actor's entries for one action after `since`, newest first (action index,
        read backwards until an entry is older than `since`)."""
        found: list[AuditEntry] = []
        for item in self._index(
            AUDIT,
            "by_action",
            "gaction",
            "=" + action,
            range_key="sk",
            op=">",
            bound=0,
            forward=False,
            page_size=max(limit, 25),
        ):
            entry = _parse(AuditEntry, item, table="audit", key=item.get("sk", {}).get("N", "?"))
            if entry.timestamp <= since or len(found) == limit:
                break
            if entry.actor == actor:
                found.append(entry)
        return found

    def _audit_after(self, after_seq: int, *, page_size: int) -> Iterator[Item]:
        return self._query(
            AUDIT,
            "#pk = :pk AND #sk > :after",
            {"#pk": "pk", "#sk": "sk"},
            {":pk": _s("audit"), ":after": _n(after_seq)},
            page_size=page_size,
        )

    def audit_head(self) -> AuditHead | None:
        """The newest entry's seq and hash."""
        head = self._audit_head_item()
        if head is None:
            return None
        seq = _int(head, "sk", table="audit", key="head")
        return AuditHead(seq=seq, hash=_text(head, "hash", table="audit", key=str(seq)))

    def audit_bodies(self, *, after_seq: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        """Raw entries in seq order, each with its index keys under INDEXED; a body that is
        not readable JSON comes back as `{}`."""
        if limit < 1:
            return []
        bodies = []
        for item in self._audit_after(after_seq, page_size=limit):
            try:
                text = _body_text(item, table="audit", key="?")
            except StoreError:
                text = ""
            bodies.append({**json_object(text), INDEXED: _audit_indexed(item)})
            if len(bodies) == limit:
                break
        return bodies

    # events

    def list_events(self, *, after_seq: int = 0, limit: int = 100) -> list[Event]:
        """Status changes after `after_seq`, oldest first, stopping before a recent hole."""
        if limit < 1:
            return []
        cutoff = (datetime.now(UTC) - self.event_hole_grace).strftime(UTC_FORMAT)
        expected = after_seq + 1
        events: list[Event] = []
        for item in self._query(
            EVENTS,
            "#pk = :pk AND #sk > :after",
            {"#pk": "pk", "#sk": "sk"},
            {":pk": _s("events"), ":after": _n(after_seq)},
            page_size=limit + 1,
        ):
            seq = _int(item, "sk", table="events", key="?")
            if seq != expected and item.get("at", {}).get("S", "") > cutoff:
                break  # seqs before this one may still commit: wait for them
            expected = seq + 1
            if item.get("dead", {}).get("BOOL"):
                continue
            events.append(_parse(Event, item, table="events", key=str(seq)))
            if len(events) == limit:
                break
        return events

    def last_event_seq(self) -> int:
        """The newest event's seq (0 when none): where a feed that starts now begins."""
        for item in self._partition(EVENTS, "events", forward=False, page_size=10):
            if not item.get("dead", {}).get("BOOL"):
                return _int(item, "sk", table="events", key="last")
        return 0

    # table management (`bunsui aws init` / `bunsui aws doctor`)

    def _list_table_names(self) -> set[str]:
        names: set[str] = set()
        params: dict[str, Any] = {}
        while True:
            page = self._call("list_tables", **params)
            names.update(page.get("TableNames", []))
            if not page.get("LastEvaluatedTableName"):
                return names
            params["ExclusiveStartTableName"] = page["LastEvaluatedTableName"]

    @staticmethod
    def _key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        if range_key is not None:
            schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        return schema

    def _index_definition(self, spec: TableSpec, name: str) -> dict[str, Any]:
        index = next(i for i in spec.indexes if i.name == name)
        return {
            "IndexName": index.name,
            "KeySchema": self._key_schema(index.hash_key, index.range_key),
            "Projection": {"ProjectionType": "ALL"},
        }

    @staticmethod
    def _definitions(spec: TableSpec) -> list[dict[str, str]]:
        return [
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in spec.attribute_types().items()
        ]

    def create_tables(self, *, timeout_seconds: float = 600.0) -> list[str]:
        """Create whatever tables and indexes are missing and wait until they are active.

        Idempotent: returns what it did (empty when everything existed). A table that exists
        with another key layout is STORE_CORRUPT: bunsui will not guess how to change it.
        """
        self._writable()
        done: list[str] = []
        existing = self._list_table_names()
        for spec in TABLES:
            name = self.table_name(spec)
            if name in existing:
                continue
            params: dict[str, Any] = {
                "TableName": name,
                "KeySchema": self._key_schema("pk", "sk" if spec.range_type else None),
                "AttributeDefinitions": self._definitions(spec),
                "BillingMode": "PAY_PER_REQUEST",
            }
            if spec.indexes:
                params["GlobalSecondaryIndexes"] = [
                    self._index_definition(spec, index.name) for index in spec.indexes
                ]
            self._call("create_table", **params)
            done.append(f"created table {name}")
        for spec in TABLES:
            name = self.table_name(spec)
            report = self._wait_for(spec, timeout_seconds)
            if report.problems:
                raise StoreError(
                    f"DynamoDB table {name} is not laid out as bunsui expects: "
                    f"{'; '.join(report.problems)}",
                    code=ErrorCode.STORE_CORRUPT,
                    details={"table": name, "problems": report.problems},
                )
            for index in report.missing_indexes:
                self._call(
                    "update_table",
                    TableName=name,
                    AttributeDefinitions=self._definitions(spec),
                    GlobalSecondaryIndexUpdates=[{"Create": self._index_definition(spec, index)}],
                )
                done.append(f"created index {index} on {name}")
                self._wait_for(spec, timeout_seconds, index=index)
                if index == "by_label_template":
                    done.append(self._backfill_label_templates())
        schema = {"pk": _s("schema"), "sk": _s("."), "n": _n(SCHEMA_VERSION)}
        self._call("put_item", **self._put(KV, schema))
        return done

    def _wait_for(
        self, spec: TableSpec, timeout_seconds: float, *, index: str | None = None
    ) -> TableReport:
        """Poll until the table (and `index`, when given) is ACTIVE."""
        deadline = time.monotonic() + timeout_seconds
        while True:
            report, states = self._describe(spec)
            ready = report.status == "ACTIVE" and (index is None or states.get(index) == "ACTIVE")
            if ready or not report.exists:
                return report
            if time.monotonic() > deadline:
                raise StoreError(
                    f"DynamoDB table {report.name} is still {report.status} after "
                    f"{timeout_seconds:.0f} s; run `bunsui aws init` again later",
                    code=ErrorCode.STORE_LOCKED,
                    details={"table": report.name},
                )
            time.sleep(self.poll_seconds)

    def schema_version(self) -> int | None:
        """The table layout version `create_tables` recorded (None before it ran): a number
        above SCHEMA_VERSION means a newer bunsui laid the tables out."""
        item = self._get(KV, {"pk": _s("schema"), "sk": _s(".")})
        return _int(item, "n", table="kv", key="schema") if item else None

    def describe_tables(self) -> list[TableReport]:
        """Each of bunsui's tables: present, active, indexes complete, keys as expected."""
        return [self._describe(spec)[0] for spec in TABLES]

    def _describe(self, spec: TableSpec) -> tuple[TableReport, dict[str, str]]:
        name = self.table_name(spec)
        try:
            table = self._call("describe_table", TableName=name)["Table"]
        except StoreError as exc:
            if exc.details.get("aws_code") != "ResourceNotFoundException":
                raise
            return TableReport(name=name, purpose=spec.purpose, exists=False), {}
        types = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
        problems = []
        expected = self._key_schema("pk", "sk" if spec.range_type else None)
        if table["KeySchema"] != expected or any(
            types.get(key) != kind
            for key, kind in spec.attribute_types().items()
            if key in {"pk", "sk"}
        ):
            problems.append(f"key schema is {table['KeySchema']}, expected {expected}")
        states = {}
        for index in table.get("GlobalSecondaryIndexes", []):
            states[index["IndexName"]] = index.get("IndexStatus", "ACTIVE")
            wanted = next((i for i in spec.indexes if i.name == index["IndexName"]), None)
            if wanted is not None and index["KeySchema"] != self._key_schema(
                wanted.hash_key, wanted.range_key
            ):
                problems.append(f"index {wanted.name} has key schema {index['KeySchema']}")
        report = TableReport(
            name=name,
            purpose=spec.purpose,
            exists=True,
            status=table.get("TableStatus"),
            missing_indexes=[i.name for i in spec.indexes if i.name not in states],
            inactive_indexes=[
                i.name for i in spec.indexes if states.get(i.name, "ACTIVE") != "ACTIVE"
            ],
            problems=problems,
            item_count=table.get("ItemCount"),
        )
        return report, states
