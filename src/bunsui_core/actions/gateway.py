"""The gateway: the single path every call takes, from every adapter.

invoke(actor, action, raw_args)
  -> unknown action                      -> NOT_FOUND
  -> validate input (pydantic)           -> INVALID_ARGUMENT with every field error
  -> read-only mode and a write          -> READ_ONLY
  -> policy decision for (actor, action) -> PERMISSION_DENIED naming the rule
  -> a human's action from inside a job  -> PERMISSION_DENIED (the job cannot be the human)
  -> approval required                   -> the (new or identical pending) ticket, not acting
  -> run handler                         -> output model
  -> unexpected exception                -> INTERNAL (traceback to the home's log only)
Every outcome is appended to the audit log (read-only mode writes nothing at all).
"""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from bunsui_core.actions import coordination
from bunsui_core.actions.context import ActionContext, ActorId, ProgressCallback
from bunsui_core.actions.registry import REGISTRY, Action, ActionRegistry
from bunsui_core.config import Settings
from bunsui_core.engine.job_identity import enclosing_job
from bunsui_core.errors import (
    BunsuiError,
    ConflictError,
    ErrorCode,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from bunsui_core.governance import approvals, budgets
from bunsui_core.governance.audit import Approval, AuditEvent, AuditResult
from bunsui_core.governance.canonical import (
    arguments_hash,
    capped,
    exceeds,
    lone_surrogate_at,
    redact,
    scrub_surrogates,
)
from bunsui_core.governance.file_access import confine
from bunsui_core.governance.policy import APPROVE_ACTIONS, ActorKind, Decision, Outcome, Policy
from bunsui_core.governance.policy_file import LivePolicy, PolicyCache
from bunsui_core.governance.previews import Preview, changed_paths
from bunsui_core.governance.tickets import Ticket
from bunsui_core.model.location import location
from bunsui_core.model.session import new_id, utc_now
from bunsui_core.resources import shipped_file
from bunsui_core.store import Store, open_store
from bunsui_core.store.patient import PatientStore

if TYPE_CHECKING:
    import logging


def _logger() -> logging.Logger:
    """bunsui's logger, imported on first use: a call that goes well never logs."""
    import logging  # noqa: PLC0415 - keeps `logging` out of every CLI call's start-up

    return logging.getLogger("bunsui")


AUDIT_ATTEMPTS = 3
"""Tries to record a call that already ran while the store is busy (each waits ~5 s)."""
TICKET_RETRY_SECONDS = 60.0
"""How long an approved ticket's action waits for a busy store in all (the approver waits
too): it cannot be asked for again, so a lock must delay it, not fail the ticket."""

PIPELINE_OR_ID_FIELD = "pipeline"
"""The one file field that may hold a pipeline id instead (`pipeline run FILE_OR_ID`)."""

MAX_ARGUMENTS_CHARS = 1_000_000
"""All the text of one call's arguments together; more is refused before validation."""

RESOURCE_FIELDS = ("job_id", "plan_id", "ticket_id", "pipeline_id", "pipeline", "session_id")
"""Argument that names what a call acts on, most specific first (the audit's `resource`)."""


def validation_details(exc: ValidationError) -> dict[str, Any]:
    """Field errors as `{"errors": [{"field", "message"}]}`, locations in dotted form."""
    return {
        "errors": [
            {"field": location(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        ]
    }


@dataclasses.dataclass(frozen=True)
class _Call:
    """One top-level request and everything it sets off (plan steps, a ticket's action)."""

    actor: ActorId
    policy: Policy
    """The policy file as it was when the call began: every check of one call (and of
    the steps it sets off) sees one version, so a ticket's hash and its limits agree."""
    store: Store
    correlation_id: str
    progress: ProgressCallback | None
    approval: Approval | None = None
    ticket_id: str | None = None
    nested: bool = False
    ticket: Ticket | None = None
    """The approved ticket this call executes: its preview must still hold."""


class Gateway:
    """Runs actions for any adapter; adapters never call handlers directly."""

    def __init__(self, settings: Settings, registry: ActionRegistry = REGISTRY) -> None:
        self.settings = settings
        self.registry = registry
        self._policy = LivePolicy(
            settings.policy_path or shipped_file("policies/default.yaml"),
            registry.names,
            PolicyCache(settings.home / "cache", writable=not settings.read_only),
        )
        # Looked at once at start too: a job's process stays one after its ancestry changes.
        enclosing_job()

    @property
    def policy(self) -> Policy:
        """The policy file in force (`--policy`, `BUNSUI_POLICY`, else the shipped default),
        checked against every action; a bad file fails every call (closed).

        The file is looked at on every use (a stat; read again when it changed), so a
        running server applies a revocation or `read_only: true` to its next call, and a
        file made invalid fails every call until it is fixed."""
        return self._policy.current()

    @property
    def read_only(self) -> bool:
        """Read-only by flag, environment or policy."""
        return self._read_only(self.policy)

    def _read_only(self, policy: Policy) -> bool:
        return self.settings.read_only or policy.read_only

    @property
    def effective_settings(self) -> Settings:
        """The settings with read-only as the policy has it too: what handlers and stores
        must see, so a policy's `read_only: true` also opens the store read-only."""
        return self._settings_under(self.policy)

    def _settings_under(self, policy: Policy) -> Settings:
        return dataclasses.replace(self.settings, read_only=self._read_only(policy))

    def open_store(self) -> Store:
        """A store over the effective settings (the caller closes it)."""
        return open_store(self.effective_settings)

    def _begin(
        self, actor: ActorId, correlation_id: str | None, progress: ProgressCallback | None
    ) -> _Call:
        """A call with the policy looked up once and a store opened under it."""
        policy = self.policy
        store = open_store(self._settings_under(policy))
        return _Call(actor, policy, store, correlation_id or new_id("cor"), progress)

    def action(self, name: str) -> Action:
        """The action by name, or NOT_FOUND listing what exists."""
        action = self.registry.get(name)
        if action is None:
            raise NotFoundError(
                f"unknown action {name!r}",
                details={"action": name, "known": [a.name for a in self.registry]},
            )
        return action

    def invoke(
        self,
        actor: ActorId,
        name: str,
        raw_args: Mapping[str, Any],
        *,
        progress: ProgressCallback | None = None,
        correlation_id: str | None = None,
    ) -> BaseModel:
        """Validate, check, run and return the action's output (or a pending ticket); every
        failure is a BunsuiError."""
        call = self._begin(actor, correlation_id, progress)
        try:
            return self._call(call, name, raw_args)
        finally:
            call.store.close()

    def record_refused(
        self, actor: ActorId, name: str, raw_args: Mapping[str, Any], error: BunsuiError
    ) -> None:
        """Audit a request an adapter refused before it became an action call (a command
        line that does not parse), so probing leaves a trace like any other call."""
        call = self._begin(actor, None, None)
        try:
            arguments = scrub_surrogates(dict(raw_args))
            self._audit(
                call, scrub_surrogates(name), arguments, AuditResult.FAILED, error_code=error.code
            )
        finally:
            call.store.close()

    def _call(self, call: _Call, name: str, raw_args: Mapping[str, Any]) -> BaseModel:
        arguments = dict(raw_args)
        if exceeds(arguments, MAX_ARGUMENTS_CHARS):
            error = InvalidArgumentError(
                f"arguments for {name} are larger than {MAX_ARGUMENTS_CHARS} characters",
                details={"errors": [{"field": "(root)", "message": "arguments too large"}]},
            )
            self._audit(
                call, name, scrub_surrogates(arguments), AuditResult.FAILED, error_code=error.code
            )
            raise error
        bad = lone_surrogate_at(arguments)
        if bad is not None:
            error = InvalidArgumentError(
                f"invalid arguments for {name}",
                details={"errors": [{"field": bad, "message": "text is not valid Unicode"}]},
            )
            self._audit(
                call, name, scrub_surrogates(arguments), AuditResult.FAILED, error_code=error.code
            )
            raise error
        try:
            action = self.action(name)
            args = action.input_model.model_validate(arguments)
        except ValidationError as exc:
            error = InvalidArgumentError(
                f"invalid arguments for {name}", details=validation_details(exc)
            )
            self._audit(call, name, arguments, AuditResult.FAILED, error_code=error.code)
            raise error from None
        except BunsuiError as exc:
            self._audit(call, name, arguments, AuditResult.FAILED, error_code=exc.code)
            raise
        arguments = args.model_dump(mode="json")
        if self._read_only(call.policy) and action.changes_state(args):
            raise PermissionDeniedError(
                f"read-only mode: {name} would change state",
                code=ErrorCode.READ_ONLY,
                details={"action": name},
            )
        decision = call.policy.decide(call.actor, name)
        job = enclosing_job()
        if job is not None and (decision.kind is ActorKind.HUMAN or name in APPROVE_ACTIONS):
            rule = f"a process inside a job ({job.evidence}: {job.detail}) never acts as a human"
            self._audit(call, name, arguments, AuditResult.DENIED, rule=rule)
            raise PermissionDeniedError(
                f"{call.actor} may not {name}: {rule}",
                details={"actor": call.actor, "action": name, "rule": rule},
            )
        if decision.outcome is Outcome.DENY:
            self._audit(call, name, arguments, AuditResult.DENIED, rule=decision.rule)
            raise PermissionDeniedError(
                f"{call.actor} may not {name}: {decision.rule}",
                details={"actor": call.actor, "action": name, "rule": decision.rule},
            )
        if action.bound_files and call.policy.kind_of(call.actor) is not ActorKind.HUMAN:
            arguments = self._confine_files(call, action, arguments, decision.rule)
            args = action.input_model.model_validate(arguments)
        escalated = None
        if action.changes_state(args):
            try:
                escalated = self._check_coordination(call, action, args, decision)
            except BunsuiError as exc:
                self._audit(call, name, arguments, AuditResult.FAILED, error_code=exc.code)
                raise
        if (
            decision.outcome is Outcome.APPROVAL_REQUIRED
            and call.approval is None
            and not action.is_preview(args)
        ):
            return self._request_approval(call, action, arguments, decision.rule)
        output = self._run(call, action, args, arguments, decision.rule)
        if escalated is not None:
            coordination.resolve_escalation(call.store, escalated)
        return output

    def _check_coordination(
        self, call: _Call, action: Action, args: BaseModel, decision: Decision
    ) -> str | None:
        """Claims, escalations and budgets for a write: CONFLICT when another actor's claim
        holds the session it touches, ESCALATED for an agent on a session handed to a human,
        THROTTLED over a budget. Returns the escalated session a human's write resolves."""
        if not call.nested and call.approval is None and action.name in budgets.RERUN_ACTIONS:
            budgets.check_reruns(call.store, call.policy.limits_of(call.actor), call.actor)
        if action.name in coordination.LEASE_ACTIONS:
            return None
        session = coordination.target_session(call.store, args)
        if session is None:
            return None
        coordination.check_lease(session, call.actor, human=decision.kind is ActorKind.HUMAN)
        return session.session_id if session.escalation is not None else None

    def _confine_files(
        self, call: _Call, action: Action, arguments: dict[str, Any], rule: str
    ) -> dict[str, Any]:
        """The arguments with each file an agent names replaced by its real path under a
        pipeline root; PERMISSION_DENIED (audited) for any other file."""
        confined = dict(arguments)
        try:
            for name in action.bound_files:
                if isinstance(confined.get(name), str):
                    confined[name] = confine(
                        confined[name],
                        self.settings.pipeline_roots,
                        may_be_id=name == PIPELINE_OR_ID_FIELD,
                    )
        except BunsuiError as exc:
            denied = exc.code == ErrorCode.PERMISSION_DENIED
            result = AuditResult.DENIED if denied else AuditResult.FAILED
            self._audit(call, action.name, arguments, result, error_code=exc.code, rule=rule)
            raise
        return confined

    def _request_approval(
        self, call: _Call, action: Action, arguments: dict[str, Any], rule: str
    ) -> BaseModel:
        name = action.name
        if call.nested:
            raise PermissionDeniedError(
                f"{name} needs approval; as a step of another call it cannot wait for one. "
                "Request the whole call's approval instead.",
                details={"action": name, "rule": rule},
            )
        arguments = approvals.resolve_files(arguments, action.bound_files)
        try:
            preview = self._preview(call, action, arguments)
            files = approvals.file_digests(arguments, action.bound_files, preview)
            ticket, created = approvals.request_ticket(
                call.store,
                action=name,
                arguments=arguments,
                files=files,
                preview=preview,
                requested_by=call.actor,
                rule=rule,
                policy_hash=call.policy.hash,
                correlation_id=call.correlation_id,
                limits=call.policy.limits_of(call.actor),
            )
        except BunsuiError as exc:
            self._audit(call, name, arguments, AuditResult.FAILED, error_code=exc.code, rule=rule)
            raise
        self._audit(
            call,
            name,
            arguments,
            AuditResult.PENDING_APPROVAL,
            rule=rule,
            ticket_id=ticket.ticket_id,
            approval=Approval(required=True),
        )
        return approvals.PendingApproval.of(ticket, created=created, home=self.settings.home)

    def _context(self, call: _Call) -> ActionContext:
        """The handler's view of this call, with the gateway's hooks wired in."""
        context = ActionContext(
            settings=self._settings_under(call.policy),
            actor=call.actor,
            _policy=call.policy,
            approved_by=call.approval.approved_by if call.approval else None,
            correlation_id=call.correlation_id,
            _store=call.store,
            _owns_store=False,
        )
        if call.progress is not None:
            context.progress = call.progress
        nested = dataclasses.replace(call, nested=True)
        context.invoke = lambda step, step_args: self._call(nested, step, step_args)
        context.audit = lambda event: self._append(call.store, event)
        context.execute_ticket = lambda ticket, approver: self._execute_ticket(
            call, ticket, approver
        )
        return context

    def _preview(self, call: _Call, action: Action, arguments: dict[str, Any]) -> Preview | None:
        """What the call would do, from the action's own dry-run code (None: it has none)."""
        if action.preview is None:
            return None
        args = action.input_model.model_validate(arguments)
        try:
            return action.preview(self._context(call), args)
        except BunsuiError:
            raise
        except Exception as exc:
            raise self._internal_error(call, action.name, exc) from None

    @staticmethod
    def _check_preview(
        context: ActionContext, action: Action, args: BaseModel, ticket: Ticket
    ) -> None:
        """CONFLICT unless the call would still do exactly what the ticket showed the human;
        computed in the handler's context, so the handler then runs from the same bytes."""
        if action.preview is None:
            return
        now = action.preview(context, args)
        shown = ticket.preview
        if shown is not None and shown.digest == ticket.preview_hash == now.digest:
            return
        raise ConflictError(
            f"what {action.name} would do is no longer what ticket {ticket.ticket_id} showed "
            "when it was approved; nothing ran. Request it again so a human approves what "
            "will run.",
            details={
                "ticket_id": ticket.ticket_id,
                "changed": changed_paths(
                    shown.model_dump(mode="json") if shown else None, now.model_dump(mode="json")
                ),
                "approved_preview_hash": ticket.preview_hash,
                "preview_hash_now": now.digest,
            },
        )

    def _run(
        self, call: _Call, action: Action, args: BaseModel, arguments: dict[str, Any], rule: str
    ) -> BaseModel:
        context = self._context(call)
        done = AuditResult.EXECUTED if call.approval else AuditResult.ALLOWED
        try:
            if call.ticket is not None and not call.nested:
                self._check_preview(context, action, args, call.ticket)
            output = action.handler(context, args)
        except BunsuiError as exc:
            self._audit(
                call, action.name, arguments, AuditResult.FAILED, error_code=exc.code, rule=rule
            )
            raise
        except Exception as exc:
            error = self._internal_error(call, action.name, exc)
            self._audit(
                call, action.name, arguments, AuditResult.FAILED, error_code=error.code, rule=rule
            )
            raise error from None
        self._audit_done(call, action, arguments, done, rule=rule, output=output)
        return output

    def _audit_done(
        self,
        call: _Call,
        action: Action,
        arguments: dict[str, Any],
        result: AuditResult,
        *,
        rule: str,
        output: BaseModel,
    ) -> None:
        """Record a call that already happened. A busy store is waited out a few times; if
        it stays busy the entry is logged to stderr, but the call is not reported as failed:
        it ran (a ticket whose action ran must not be marked failed)."""
        for attempt in range(AUDIT_ATTEMPTS):
            try:
                self._audit(
                    call,
                    action.name,
                    arguments,
                    result,
                    rule=rule,
                    session_id=getattr(output, "session_id", None),
                    outcome={
                        field: value
                        for field in action.audited_outputs
                        if (value := getattr(output, field, None)) is not None
                    },
                )
                return
            except BunsuiError as exc:
                if exc.code != ErrorCode.STORE_LOCKED or attempt == AUDIT_ATTEMPTS - 1:
                    _logger().error(
                        "audit entry for %s (%s) not written: %s", action.name, result, exc
                    )
                    return

    def _execute_ticket(self, call: _Call, ticket: Ticket, approver: ActorId) -> Ticket:
        """Run an approved ticket's action once, as the requester's call with the approver
        recorded, re-checking read-only mode and policy now; the outcome goes on the ticket.

        The action waits out a busy store (`PatientStore`): it cannot be asked for again, so
        a lock held past the busy timeout must delay it, not fail the ticket."""
        running = approvals.start_execution(call.store, ticket)
        as_requester = dataclasses.replace(
            call,
            store=PatientStore(call.store, budget_seconds=TICKET_RETRY_SECONDS, shared=True),
            actor=ticket.requested_by,
            approval=Approval(required=True, approved_by=approver, approved_at=ticket.decided_at),
            ticket_id=ticket.ticket_id,
            nested=False,
            ticket=ticket,
        )
        try:
            output = self._call(as_requester, ticket.action, ticket.arguments)
        except BunsuiError as exc:
            return approvals.finish_execution(call.store, running, error=exc.to_dict())
        except BaseException:  # Ctrl-C, a signal: a ticket left `executing` never ends
            interrupted = BunsuiError(
                "the approver's call was interrupted while the action ran; what it did is in "
                "the audit log",
                code=ErrorCode.INTERRUPTED,
            )
            approvals.finish_execution(call.store, running, error=interrupted.to_dict())
            raise
        return approvals.finish_execution(
            call.store, running, result=output.model_dump(mode="json")
        )

    def _audit(
        self,
        call: _Call,
        name: str,
        arguments: dict[str, Any],
        result: AuditResult,
        *,
        error_code: str | None = None,
        rule: str | None = None,
        ticket_id: str | None = None,
        approval: Approval | None = None,
        session_id: Any = None,
        outcome: dict[str, Any] | None = None,
    ) -> None:
        """Append one entry for this call (never in read-only mode: it writes nothing).

        The entry keeps a capped copy of the arguments and the hash of all of them, so a
        15 MB argument costs the append-only log a few hundred bytes."""
        recorded = capped(redact(arguments))
        session_id = recorded.get("session_id") or capped(session_id)
        self._append(
            call.store,
            AuditEvent(
                actor=call.actor,
                action=capped(name),
                resource=next(
                    (f"{f}:{recorded[f]}" for f in RESOURCE_FIELDS if recorded.get(f)), None
                ),
                session_id=session_id if isinstance(session_id, str) else None,
                approval=approval or call.approval or Approval(),
                result=result,
                error_code=str(error_code) if error_code else None,
                rule=rule,
                arguments=recorded,
                arguments_hash=arguments_hash(arguments),
                ticket_id=ticket_id or call.ticket_id,
                correlation_id=call.correlation_id,
                outcome=capped(redact(outcome)) if outcome else None,
            ),
        )

    def _append(self, store: Store, event: AuditEvent) -> None:
        if not store.read_only:
            store.append_audit(event)

    def _internal_error(self, call: _Call, name: str, exc: Exception) -> BunsuiError:
        """A bug: keep the traceback in the home's log (on stderr in read-only mode, which
        writes nothing), give the caller a coded error."""
        log_path = self.settings.home / "logs" / "internal-errors.log"
        if call.store.read_only:
            _logger().error("internal error in %s\n%s", name, traceback.format_exc())
            return BunsuiError(f"internal error in {name}: {type(exc).__name__}")
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            with log_path.open("a", encoding="utf-8") as log:
                log.write(f"{utc_now()} {name}\n{traceback.format_exc()}\n")
        except OSError:
            _logger().debug("could not write %s", log_path)
        return BunsuiError(
            f"internal error in {name}: {type(exc).__name__}",
            code=ErrorCode.INTERNAL,
            details={"log": str(log_path)},
        )
