"""The inbox's pages as functions of the data they show. Every value that reaches HTML goes
through `esc` or `value_html` (render.py); the only raw HTML is written here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bunsui_core.governance.tickets import ticket_headline
from bunsui_mcp.web.render import esc, relative, value_html

ROOT = "/approvals"


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as far as the page needs to know."""

    actor: str
    csrf_token: str | None
    """None for a script using a bearer token (its forms need no CSRF token)."""
    can_approve: bool


def _csrf(viewer: Viewer | None) -> str:
    if viewer is None or viewer.csrf_token is None:
        return ""
    return f'<input type="hidden" name="csrf_token" value="{esc(viewer.csrf_token)}">'


def layout(title: str, body: str, viewer: Viewer | None = None, live_src: str | None = None) -> str:
    """A whole page: header with the signed-in actor, main landmark, the live script."""
    account = ""
    if viewer is not None:
        account = (
            f"<div>Signed in as <strong>{esc(viewer.actor)}</strong> "
            f'<form method="post" action="{ROOT}/logout">{_csrf(viewer)}'
            '<button class="link" type="submit">Sign out</button></form></div>'
        )
    live = f' data-live-src="{esc(live_src)}"' if live_src else ""
    script = f'<script src="{ROOT}/static/inbox.js" defer></script>' if live_src else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · bunsui approvals</title>"
        f'<link rel="stylesheet" href="{ROOT}/static/inbox.css">{script}</head>'
        f"<body{live}>"
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header class="top"><a class="brand" href="{ROOT}">bunsui approvals</a>{account}</header>'
        f'<main id="main" tabindex="-1">{body}</main></body></html>'
    )


def notice(text: str, kind: str = "info") -> str:
    """A message box; errors are announced to screen readers at once."""
    role = "alert" if kind == "error" else "status"
    return f'<div class="notice {esc(kind)}" role="{role}">{text}</div>'


def login_page(login_csrf: str, next_path: str, message: str = "") -> str:
    """The sign-in form: exchange an MCP bearer token for a browser session."""
    body = (
        "<h1>Sign in</h1>"
        f"{message}"
        "<p>Paste the token you were given for bunsui (the same one an MCP client uses). "
        "Only people may sign in here; agents' tokens are refused.</p>"
        f'<form method="post" action="{ROOT}/login">'
        f'<input type="hidden" name="login_csrf" value="{esc(login_csrf)}">'
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        '<label for="token">Token</label>'
        '<input id="token" name="token" type="password" autocomplete="off" required autofocus>'
        '<button type="submit">Sign in</button></form>'
    )
    return layout("Sign in", body)


def _status(status: str) -> str:
    return f'<span class="badge s-{esc(status)}">{esc(status)}</span>'


def preview_of(ticket: dict[str, Any]) -> dict[str, Any] | None:
    """The ticket's effect preview, when it has one (any shape)."""
    preview = ticket.get("preview")
    return preview if isinstance(preview, dict) else None


def _ticket_link(ticket: dict[str, Any]) -> str:
    return f"{ROOT}/tickets/{esc(ticket['ticket_id'])}"


def _outcome(ticket: dict[str, Any]) -> str:
    """A decided ticket's result in a few words (the full result is on its page)."""
    error = ticket.get("error")
    if isinstance(error, dict):
        return f"error <code>{esc(error.get('code', '?'))}</code>: {esc(error.get('message', ''))}"
    result = ticket.get("result")
    if isinstance(result, dict):
        named = [f"{k} <code>{esc(v)}</code>" for k, v in result.items() if k.endswith("_id")]
        return "result: " + (", ".join(named[:3]) if named else "recorded")
    return esc(ticket.get("reason") or "")


def effect_html(preview: dict[str, Any]) -> str:
    """Everything in a preview but its summary: its `effect` first, unwrapped, then any
    other part (the files it binds) as a definition list; unknown shapes render whole."""
    rest = {k: v for k, v in preview.items() if k != "summary"}
    effect = rest.pop("effect", None)
    parts = [value_html(effect)] if effect is not None else []
    if rest:
        parts.append(value_html(rest))
    return "".join(parts)


def _what_it_does(ticket: dict[str, Any]) -> str:
    """The effect preview in full when the ticket has one, else its exact arguments, folded
    (never cut) so a list of many tickets stays scannable; the summary line is above it."""
    preview = preview_of(ticket)
    label, shown = (
        ("Full effect", effect_html(preview))
        if preview is not None
        else ("Exact arguments", value_html(ticket["arguments"]))
    )
    key = esc(ticket["ticket_id"])
    return f'<details class="effect" data-key="{key}"><summary>{label}</summary>{shown}</details>'


def pending_list(tickets: list[dict[str, Any]]) -> str:
    """Pending tickets, newest first, each with who asked, the rule, age and expiry."""
    if not tickets:
        return '<p class="none">Nothing waiting for a decision.</p>'
    count = f'<p class="meta">{len(tickets)} waiting, newest first</p>'
    items = "".join(
        f'<li><a class="what" href="{_ticket_link(t)}">{esc(ticket_headline(t))}</a>'
        f'<p class="meta">{esc(t["ticket_id"])} · <code>{esc(t["action"])}</code></p>'
        f'<p class="meta">requested by <strong>{esc(t["requested_by"])}</strong> · '
        f"rule <code>{esc(t['rule'])}</code></p>"
        f'<p class="meta">asked {relative(t["created_at"])} · expires {relative(t["expires_at"])}'
        f"</p>{_what_it_does(t)}</li>"
        for t in tickets
    )
    return f'{count}<ul class="tickets">{items}</ul>'


def decided_list(tickets: list[dict[str, Any]]) -> str:
    """Decided tickets: status, who decided, and what the execution gave."""
    if not tickets:
        return '<p class="none">No decisions yet.</p>'
    items = "".join(
        f'<li>{_status(t["status"])} <a class="what" href="{_ticket_link(t)}">'
        f"{esc(ticket_headline(t))}</a>"
        f'<p class="meta">{esc(t["ticket_id"])} · requested by {esc(t["requested_by"])} · '
        f"decided by <strong>{esc(t.get('decided_by') or 'nobody')}</strong> "
        f"{relative(t.get('decided_at'))}</p>"
        f'<p class="meta">{_outcome(t)}</p></li>'
        for t in tickets
    )
    return f'<ul class="tickets">{items}</ul>'


def audit_section(viewer: Viewer, head: dict[str, Any] | None, verified: str = "") -> str:
    """The audit chain's head and a button that verifies the whole chain."""
    shown = (
        f"entry {esc(head['seq'])}, hash <code>{esc(head['hash'])}</code>"
        if head and head.get("hash")
        else '<span class="none">not available</span>'
    )
    return (
        f"<p>Head: {shown}</p>{verified}"
        f'<form method="post" action="{ROOT}/audit/verify">{_csrf(viewer)}'
        '<button type="submit">Verify the audit log</button></form>'
    )


def inbox_page(
    viewer: Viewer,
    pending: list[dict[str, Any]],
    decided: list[dict[str, Any]],
    head: dict[str, Any] | None,
    message: str = "",
) -> str:
    """The inbox: pending tickets, decided ones, the audit head."""
    body = (
        f"{message}"
        '<h1 id="pending-heading">Pending tickets</h1>'
        '<p id="live-status" class="live-status" role="status" aria-live="polite"></p>'
        f'<section id="pending" data-live aria-labelledby="pending-heading">'
        f"{pending_list(pending)}</section>"
        '<h2 id="decided-heading">Decided</h2>'
        f'<section id="decided" data-live aria-labelledby="decided-heading">'
        f"{decided_list(decided)}</section>"
        '<h2 id="audit-heading">Audit log</h2>'
        f'<section id="audit" aria-labelledby="audit-heading">{audit_section(viewer, head)}'
        "</section>"
    )
    return layout("Inbox", body, viewer, live_src=ROOT)


def _facts(rows: list[tuple[str, str]]) -> str:
    return (
        '<dl class="facts">'
        + "".join(f"<div><dt>{esc(k)}</dt><dd>{v}</dd></div>" for k, v in rows)
        + "</dl>"
    )


def _decision_forms(viewer: Viewer, ticket: dict[str, Any]) -> str:
    if ticket["status"] != "pending":
        return ""
    if not viewer.can_approve:
        return notice("Your policy lets you read this ticket, not decide it.")
    if ticket["requested_by"] == viewer.actor:
        return notice("You requested this ticket: another approver must decide it.")
    action = f"{ROOT}/tickets/{esc(ticket['ticket_id'])}"
    return (
        '<h2 id="decide-heading">Decide</h2><div class="decide">'
        f'<form method="post" action="{action}/approve" aria-label="Approve">{_csrf(viewer)}'
        '<label for="approve-reason">Note for the audit log (optional)</label>'
        '<textarea id="approve-reason" name="reason" rows="2" maxlength="2000"></textarea>'
        '<button class="approve" type="submit">Approve and run</button></form>'
        f'<form method="post" action="{action}/reject" aria-label="Reject">{_csrf(viewer)}'
        '<label for="reject-reason">Reason for rejecting (required)</label>'
        '<textarea id="reject-reason" name="reason" rows="2" maxlength="2000" required>'
        "</textarea>"
        '<button class="reject" type="submit">Reject</button></form></div>'
    )


def ticket_page(viewer: Viewer, ticket: dict[str, Any], message: str = "") -> str:
    """One ticket in full: what it would do (preview), its exact arguments, its decision
    and result, and the Approve/Reject forms for those who may decide."""
    preview = preview_of(ticket)
    facts = [
        ("Status", _status(ticket["status"])),
        ("Action", f"<code>{esc(ticket['action'])}</code>"),
        ("Requested by", esc(ticket["requested_by"])),
        ("Policy rule", f"<code>{esc(ticket['rule'])}</code>"),
        ("Asked", relative(ticket["created_at"])),
        ("Expires", relative(ticket["expires_at"])),
    ]
    if ticket.get("decided_by"):
        facts += [
            ("Decided by", esc(ticket["decided_by"])),
            ("Decided", relative(ticket.get("decided_at"))),
            ("Reason", esc(ticket.get("reason") or "") or '<span class="none">none</span>'),
        ]
    sections = [f'<h2 id="facts-heading">Request</h2>{_facts(facts)}']
    if preview is not None:
        sections.append(f'<h2 id="preview-heading">What it will do</h2>{effect_html(preview)}')
    sections.append(
        '<h2 id="arguments-heading">Exact arguments</h2>'
        f"{value_html(ticket['arguments'])}"
        f'<p class="meta">arguments hash <code>{esc(ticket["arguments_hash"])}</code></p>'
    )
    if ticket.get("files"):
        sections.append(f'<h2 id="files-heading">Bound files</h2>{value_html(ticket["files"])}')
    if ticket.get("result") is not None:
        sections.append(f'<h2 id="result-heading">Result</h2>{value_html(ticket["result"])}')
    if ticket.get("error") is not None:
        sections.append(f'<h2 id="error-heading">Error</h2>{value_html(ticket["error"])}')
    body = (
        f"{message}<h1>Ticket {esc(ticket['ticket_id'])}</h1>"
        f'<p class="summary">{esc(ticket_headline(ticket))}</p>'
        '<p id="live-status" class="live-status" role="status" aria-live="polite"></p>'
        f'<div id="ticket" data-live>{"".join(sections)}{_decision_forms(viewer, ticket)}</div>'
        f'<p><a href="{ROOT}">Back to the inbox</a></p>'
    )
    return layout(f"Ticket {ticket['ticket_id']}", body, viewer, live_src=_ticket_link(ticket))


def error_page(viewer: Viewer | None, title: str, message: str) -> str:
    """A refusal or failure, explained."""
    return layout(title, f"<h1>{esc(title)}</h1>{notice(esc(message), 'error')}", viewer)
