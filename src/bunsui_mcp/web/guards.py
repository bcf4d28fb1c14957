"""What every inbox request passes through: its refusals, security headers and form reading.

Stateless helpers of app.py; the session- and policy-aware checks live on `Inbox`.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from bunsui_core.errors import ErrorCode
from bunsui_mcp.web.pages import ROOT

FORM_BYTES = 64 * 1024
"""Largest form body accepted (a reason is at most 2000 characters)."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send `Origin: null`
    "Cache-Control": "no-store",
}

HTTP_STATUS = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.READ_ONLY: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.INVALID_TRANSITION: 409,
    ErrorCode.TICKET_EXPIRED: 409,
    ErrorCode.STORE_LOCKED: 503,
}


class Refused(Exception):
    """A request turned away before any gateway call, with the status and page to send."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form body (first value per field), bounded in size; cached."""
    cached = request.scope.get("bunsui.form")
    if isinstance(cached, dict):
        return cached
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in {"application/x-www-form-urlencoded", ""}:
        raise Refused(415, "Refused", "Send forms as application/x-www-form-urlencoded.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_BYTES:
            raise Refused(413, "Refused", "The form is too large.")
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "Refused", "The form could not be read.") from None
    parsed = {key: values[0] for key, values in fields.items()}
    request.scope["bunsui.form"] = parsed
    return parsed


def wants_json(request: Request) -> bool:
    """Scripts ask for JSON; browsers get pages."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def safe_next(path: str | None) -> str:
    """Where to go after signing in: only a path inside the inbox (no open redirect)."""
    if path and path.startswith(ROOT) and "//" not in path and "\\" not in path:
        return path
    return ROOT
