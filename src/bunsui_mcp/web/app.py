"""The approver's inbox: `/approvals` on the HTTP transport, a server-rendered web app.

Who: the same bearer tokens as MCP. A browser exchanges its token once for a session
cookie (HttpOnly, SameSite=Strict, Secure over TLS, expiring); a script may send
`Authorization: Bearer TOKEN` on every request instead. Agents' tokens are refused: the
inbox is where people decide. What: every read and every decision is a gateway call as the
signed-in actor, exactly as the CLI makes it (policy, audit, exactly-once, no
self-approval). Forms carry a per-session CSRF token, and every request passes the same
Host/Origin checks as the MCP endpoint; a cookie-authenticated POST must also name an
allowed Origin. Only the sign-in page and the static assets are served without a session.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

import anyio
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from bunsui_core.actions import Gateway
from bunsui_core.errors import BunsuiError, ErrorCode
from bunsui_core.governance.policy import ActorKind, Outcome
from bunsui_mcp.auth import TokenFileVerifier, token_hash
from bunsui_mcp.web import pages
from bunsui_mcp.web.assets import CSS, SCRIPT
from bunsui_mcp.web.feed import FeedFollower
from bunsui_mcp.web.guards import (
    HTTP_STATUS,
    SECURITY_HEADERS,
    Refused,
    read_form,
    safe_next,
    wants_json,
)
from bunsui_mcp.web.pages import ROOT, Viewer
from bunsui_mcp.web.render import esc
from bunsui_mcp.web.sessions import WebSession, WebSessions

logger = logging.getLogger("bunsui.inbox")

SESSION_COOKIE = "bunsui_session"
LOGIN_COOKIE = "bunsui_login"
FEED_POLL_SECONDS = 0.5
FEED_PING_SECONDS = 15.0
FEED_LISTENERS = 256
"""Open live pages at once; more are refused (503) rather than holding sockets without end."""
HISTORY_LIMIT = 200
"""Tickets read for one inbox view (pending and decided together, newest first)."""


@dataclass(frozen=True)
class Caller:
    """The authenticated actor of one request."""

    actor: str
    session: WebSession | None
    """None when the request carried a bearer token (a script)."""
    can_approve: bool

    @property
    def viewer(self) -> Viewer:
        """What the pages need to know about the caller."""
        csrf = self.session.csrf_token if self.session else None
        return Viewer(self.actor, csrf, self.can_approve)


Endpoint = Callable[[Request], Awaitable[Response]]


class Inbox:
    """The web app's state (sessions) and endpoints over one gateway and token verifier."""

    def __init__(
        self,
        gateway: Gateway,
        verifier: TokenFileVerifier,
        security: TransportSecuritySettings | None,
        sessions: WebSessions | None = None,
    ) -> None:
        self.gateway = gateway
        self.verifier = verifier
        self.security = security or TransportSecuritySettings(enable_dns_rebinding_protection=False)
        self.checker = TransportSecurityMiddleware(self.security)
        self.sessions = sessions or WebSessions()
        self.feed = FeedFollower(gateway.open_store, FEED_POLL_SECONDS, FEED_LISTENERS)

    def routes(self) -> list[tuple[str, list[str], Endpoint]]:
        """(path, methods, endpoint) of every route, for the MCP server to mount."""
        return [
            (ROOT, ["GET"], self.guarded(self.inbox)),
            (f"{ROOT}/login", ["GET", "POST"], self.guarded(self.login, public=True)),
            (f"{ROOT}/logout", ["POST"], self.guarded(self.logout)),
            (f"{ROOT}/events", ["GET"], self.guarded(self.events)),
            (f"{ROOT}/audit/verify", ["POST"], self.guarded(self.verify_audit)),
            (f"{ROOT}/tickets/{{ticket_id}}", ["GET"], self.guarded(self.ticket)),
            (
                f"{ROOT}/tickets/{{ticket_id}}/{{decision}}",
                ["POST"],
                self.guarded(self.decide),
            ),
            (f"{ROOT}/static/inbox.css", ["GET"], self.guarded(self.css, public=True)),
            (f"{ROOT}/static/inbox.js", ["GET"], self.guarded(self.script, public=True)),
        ]

    # --- the checks every request passes -------------------------------------------------

    def guarded(
        self, endpoint: Callable[..., Awaitable[Response]], *, public: bool = False
    ) -> Endpoint:
        """Host/Origin checks, then (unless public) authentication and, for POSTs, CSRF."""

        async def handle(request: Request) -> Response:
            try:
                refused = await self.checker.validate_request(request, is_post=False)
                if refused is not None:
                    raise Refused(refused.status_code, "Refused", bytes(refused.body).decode())
                if public:
                    response = await endpoint(request)
                else:
                    caller = await self.authenticate(request)
                    if caller is None:
                        response = self._sign_in_first(request)
                    else:
                        if request.method == "POST":
                            await self._check_csrf(request, caller)
                        response = await endpoint(request, caller)
            except Refused as exc:
                response = self._refusal(request, exc)
            response.headers.update(SECURITY_HEADERS)
            return response

        return handle

    async def authenticate(self, request: Request) -> Caller | None:
        """The caller from a bearer token or a session cookie; None when neither is valid.
        Agents (and actors the policy does not call human) are Refused."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            actor = await self._actor_of_token(header[7:].strip())
            if actor is None:
                raise Refused(401, "Not signed in", "That bearer token is not valid.")
            return self._caller(actor, None)
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        if not await self._token_still_valid(session):
            self.sessions.close(session.session_id)
            return None
        return self._caller(session.actor, session)

    async def _actor_of_token(self, token: str) -> str | None:
        access = await self.verifier.verify_token(token) if token else None
        return (access.subject or access.client_id) if access is not None else None

    async def _token_still_valid(self, session: WebSession) -> bool:
        """A session lives only as long as the server accepts its token for its actor."""
        return self.verifier.hashes.get(session.token_digest) == session.actor

    def _caller(self, actor: str, session: WebSession | None) -> Caller:
        """Only people use the inbox; the policy in force now says who is one."""
        try:
            policy = self.gateway.policy
        except BunsuiError as exc:
            raise Refused(503, "Policy unavailable", exc.message) from None
        if policy.kind_of(actor) is not ActorKind.HUMAN:
            logger.warning("inbox: refused %s (not a human actor in the policy)", actor)
            raise Refused(
                403,
                "Agents cannot sign in",
                f"{actor} is not a person in the policy: the approver's inbox is for people. "
                "Agents request approval over MCP.",
            )
        can_approve = policy.decide(actor, "approval:approve").outcome is Outcome.ALLOW
        return Caller(actor, session, can_approve)

    async def _check_csrf(self, request: Request, caller: Caller) -> None:
        """A cookie-authenticated POST must come from our own page: an allowed Origin and
        the session's CSRF token. Bearer requests carry no ambient credential."""
        if caller.session is None:
            return
        if not request.headers.get("origin"):
            raise Refused(403, "Refused", "A form post must carry an Origin header.")
        form = await read_form(request)
        sent = form.get("csrf_token", "")
        if not hmac.compare_digest(sent.encode(), caller.session.csrf_token.encode()):
            raise Refused(403, "Refused", "The form's CSRF token is missing or stale; reload.")

    def _sign_in_first(self, request: Request) -> Response:
        is_page = request.url.path != f"{ROOT}/events"
        if request.method == "GET" and is_page and not wants_json(request):
            target = quote(request.url.path, safe="/")
            return RedirectResponse(f"{ROOT}/login?next={target}", status_code=303)
        return JSONResponse({"error": {"code": "UNAUTHENTICATED"}}, status_code=401)

    def _refusal(self, request: Request, exc: Refused) -> Response:
        if wants_json(request) or request.url.path == f"{ROOT}/events":
            return JSONResponse(
                {"error": {"code": "REFUSED", "message": exc.message}}, status_code=exc.status
            )
        return HTMLResponse(pages.error_page(None, exc.title, exc.message), status_code=exc.status)

    # --- calls through the gateway ---------------------------------------------------------

    async def invoke(self, caller: Caller, action: str, arguments: dict[str, Any]) -> BaseModel:
        """A gateway call as the caller, on a worker thread (approval runs the action)."""
        return await anyio.to_thread.run_sync(
            partial(self.gateway.invoke, caller.actor, action, arguments)
        )

    async def _read(self, caller: Caller, action: str, arguments: dict[str, Any]) -> Any:
        """A read whose refusal (policy) leaves its part of the page empty."""
        try:
            return (await self.invoke(caller, action, arguments)).model_dump(mode="json")
        except BunsuiError as exc:
            if exc.code == ErrorCode.PERMISSION_DENIED:
                return None
            raise

    # --- endpoints ---------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        """GET: the form. POST: exchange a valid human's token for a session cookie."""
        if request.method == "GET":
            return self._login_form(request, safe_next(request.query_params.get("next")))
        if not request.headers.get("origin"):
            raise Refused(403, "Refused", "A form post must carry an Origin header.")
        form = await read_form(request)
        next_path = safe_next(form.get("next"))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not hmac.compare_digest(
            form.get("login_csrf", "").encode(), expected.encode()
        ):
            raise Refused(403, "Refused", "The sign-in form is stale; reload it and try again.")
        token = form.get("token", "").strip()
        actor = await self._actor_of_token(token)
        if actor is None:
            message = pages.notice("That token is not valid.", "error")
            return self._login_form(request, next_path, message, status=401)
        self._caller(actor, None)  # refuses agents
        session = self.sessions.open(actor, token_hash(token))
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session.session_id,
            max_age=int(self.sessions.lifetime),
            path=ROOT,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(LOGIN_COOKIE, path=f"{ROOT}/login")
        logger.info("inbox: %s signed in", actor)
        return response

    def _login_form(
        self, request: Request, next_path: str, message: str = "", status: int = 200
    ) -> Response:
        login_csrf = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
        response = HTMLResponse(pages.login_page(login_csrf, next_path, message), status)
        response.set_cookie(
            LOGIN_COOKIE,
            login_csrf,
            max_age=3600,
            path=f"{ROOT}/login",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(self, request: Request, caller: Caller) -> Response:
        """End the session and forget the cookie."""
        if caller.session is not None:
            self.sessions.close(caller.session.session_id)
        response = RedirectResponse(f"{ROOT}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=ROOT)
        return response

    async def _inbox_data(self, caller: Caller) -> tuple[list[Any], list[Any], Any]:
        listed = await self._read(caller, "approval:list", {"limit": HISTORY_LIMIT})
        tickets = (listed or {}).get("tickets", [])
        pending = [t for t in tickets if t["status"] == "pending"]
        decided = [t for t in tickets if t["status"] != "pending"]
        head = await self._read(caller, "audit:head", {})
        return pending, decided, head

    async def inbox(self, request: Request, caller: Caller) -> Response:
        """Pending tickets newest first, decided ones, the audit head."""
        pending, decided, head = await self._inbox_data(caller)
        if wants_json(request):
            return JSONResponse({"pending": pending, "decided": decided, "audit_head": head})
        return HTMLResponse(pages.inbox_page(caller.viewer, pending, decided, head))

    async def ticket(self, request: Request, caller: Caller) -> Response:
        """One ticket in full, with the decision forms for those who may decide."""
        ticket_id = request.path_params["ticket_id"]
        try:
            shown = await self.invoke(caller, "approval:show", {"ticket_id": ticket_id})
        except BunsuiError as exc:
            return self._error(request, caller, exc)
        ticket = shown.model_dump(mode="json")
        if wants_json(request):
            return JSONResponse(ticket)
        return HTMLResponse(pages.ticket_page(caller.viewer, ticket))

    async def decide(self, request: Request, caller: Caller) -> Response:
        """Approve (which runs the action) or reject, through the gateway as the caller."""
        ticket_id = request.path_params["ticket_id"]
        decision = request.path_params["decision"]
        if decision not in {"approve", "reject"}:
            raise Refused(404, "Not found", "Tickets can be approved or rejected.")
        form = await read_form(request)
        reason = form.get("reason", "").strip() or None
        if decision == "reject" and reason is None:
            raise Refused(400, "Reason needed", "Say why you reject the ticket.")
        arguments = {"ticket_id": ticket_id, "reason": reason}
        try:
            decided = await self.invoke(caller, f"approval:{decision}", arguments)
        except BunsuiError as exc:
            return await self._decision_failed(request, caller, ticket_id, exc)
        if wants_json(request):
            return JSONResponse(decided.model_dump(mode="json"))
        return RedirectResponse(f"{ROOT}/tickets/{quote(ticket_id, safe='')}", status_code=303)

    async def _decision_failed(
        self, request: Request, caller: Caller, ticket_id: str, exc: BunsuiError
    ) -> Response:
        """The ticket page again, saying why the decision did not happen."""
        status = HTTP_STATUS.get(exc.code, 500)
        if wants_json(request):
            return JSONResponse({"error": exc.to_dict()}, status_code=status)
        try:
            shown = await self.invoke(caller, "approval:show", {"ticket_id": ticket_id})
        except BunsuiError:
            return self._error(request, caller, exc)
        message = pages.notice(f"<code>{esc(exc.code)}</code>: {esc(exc.message)}", "error")
        page = pages.ticket_page(caller.viewer, shown.model_dump(mode="json"), message)
        return HTMLResponse(page, status_code=status)

    async def verify_audit(self, request: Request, caller: Caller) -> Response:
        """Verify the whole audit chain now and show the outcome on the inbox."""
        try:
            verified = (await self.invoke(caller, "audit:verify", {})).model_dump(mode="json")
            message = pages.notice(
                f"Audit log verified: {esc(verified['entries'])} entries, head "
                f"<code>{esc(verified['head'])}</code>.",
                "ok",
            )
        except BunsuiError as exc:
            message = pages.notice(f"<code>{esc(exc.code)}</code>: {esc(exc.message)}", "error")
            verified = {"error": exc.to_dict()}
        if wants_json(request):
            return JSONResponse(verified)
        pending, decided, head = await self._inbox_data(caller)
        return HTMLResponse(pages.inbox_page(caller.viewer, pending, decided, head, message))

    async def events(self, request: Request, caller: Caller) -> Response:
        """Server-sent events: one `change` per new entry of the event feed (ticket and
        session status changes), so open pages refresh within a second. Every page listens
        to one shared reader of the feed."""
        if self.gateway.policy.decide(caller.actor, "approval:list").outcome is not Outcome.ALLOW:
            raise Refused(403, "Refused", f"{caller.actor} may not list tickets.")
        if self.feed.listeners >= self.feed.max_listeners:
            raise Refused(503, "Busy", "Too many live pages are open; reload later.")
        last_seen = request.headers.get("last-event-id", "")
        session_id = caller.session.session_id if caller.session else None
        return EventSourceResponse(self._feed(last_seen, session_id), ping=FEED_PING_SECONDS)

    async def _feed(self, last_seen: str, session_id: str | None) -> AsyncIterator[ServerSentEvent]:
        """The feed after `last_seen` (or from now), until the session ends; the response
        ends it too when the server shuts down, so open pages never hold a restart."""
        try:
            async with self.feed.listening() as feed:
                head = await feed.head()
                cursor = min(int(last_seen), head) if last_seen.isdigit() else head
                yield ServerSentEvent(comment="feed", retry=2000)
                while session_id is None or self.sessions.get(session_id) is not None:
                    for event in await feed.after(cursor):
                        cursor = event.seq
                        data = json.dumps({"kind": str(event.kind), "status": event.status})
                        yield ServerSentEvent(data=data, event="change", id=str(event.seq))
        except OverflowError:
            return  # the limit was reached between the check and this page's first read

    async def css(self, request: Request) -> Response:
        """The stylesheet."""
        return Response(CSS, media_type="text/css")

    async def script(self, request: Request) -> Response:
        """The live-refresh script."""
        return Response(SCRIPT, media_type="text/javascript")

    def _error(self, request: Request, caller: Caller, exc: BunsuiError) -> Response:
        status = HTTP_STATUS.get(exc.code, 500)
        if wants_json(request):
            return JSONResponse({"error": exc.to_dict()}, status_code=status)
        page = pages.error_page(caller.viewer, str(exc.code), exc.message)
        return HTMLResponse(page, status_code=status)
