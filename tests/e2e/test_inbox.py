"""The approver's inbox in a real headless Chromium against the real `bunsui-mcp --transport
http`, with an agent acting over MCP and notifications reaching a local webhook receiver."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bunsui_mcp.auth import add_token
from tests.conftest import etl_pipeline
from tests.e2e.test_cli import Cli
from tests.e2e.test_mcp_transports import BUNSUI_MCP, server_env
from tests.webhook import Receiver, receiver

pytestmark = pytest.mark.slow

POLICY = """
ai_agent:
  kind: agent
  allowed_actions: ["session:list", "session:describe", "approval:list", "approval:show"]
  approval_required: ["job:rerun"]
approver:
  kind: human
  allowed_actions: ["approval:*", "audit:*", "session:*", "job:*", "events:tail"]
viewer:
  kind: human
  allowed_actions: ["approval:list", "approval:show"]
actors:
  ai-agent: ai_agent
  carol: approver
  dave: approver
  victor: viewer
"""


def chromium_path() -> str | None:
    """Debian's chromium (`apt-get install chromium`), or BUNSUI_CHROMIUM."""
    return os.environ.get("BUNSUI_CHROMIUM") or shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium driven by Playwright (never Playwright's own downloaded browsers)."""
    path = chromium_path()
    if path is None:
        if os.environ.get("BUNSUI_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (BUNSUI_REQUIRE_BROWSER) but not installed")
        pytest.skip("no chromium: apt-get install -y chromium (CI installs it)")
    sandbox = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=sandbox)
        yield launched
        launched.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class InboxServer:
    """The running server and everything the tests need around it."""

    url: str
    tokens: dict[str, str]
    cli: Cli
    hook: Receiver
    failed_session: str
    process: subprocess.Popen[str]

    def agent_requests_rerun(self, batch_size: int) -> dict[str, Any]:
        """The agent asks, over MCP with its token, to rerun the failed job (a ticket)."""

        async def agent() -> dict[str, Any]:
            auth = {"Authorization": f"Bearer {self.tokens['ai-agent']}"}
            async with (
                httpx2.AsyncClient(headers=auth) as http,
                Client(streamable_http_client(f"{self.url}/mcp", http_client=http)) as client,
            ):
                result = await client.call_tool(
                    "job_rerun",
                    {
                        "job_id": "transform",
                        "session_id": self.failed_session,
                        "skip_successful": True,
                        "batch_size": batch_size,
                    },
                )
                assert not result.is_error, result.structured_content
                return result.structured_content

        # Playwright's sync API owns this thread's event loop: the MCP client gets its own.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(anyio.run, agent).result(timeout=60)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InboxServer]:
    """`bunsui-mcp --transport http` with tokens for carol (approver), victor (viewer) and
    ai-agent, notifications to a local receiver, and a real failed ETL session."""
    root = tmp_path_factory.mktemp("inbox")
    cli = Cli(root / "home")
    failed = cli.json("pipeline", "run", etl_pipeline(root), "--wait", expect=10)["session_id"]
    tokens_file = root / "tokens.yaml"
    tokens = {
        actor: add_token(tokens_file, actor) for actor in ("carol", "dave", "victor", "ai-agent")
    }
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with receiver() as hook:
        config = {"notifications": {"targets": [{"name": "ops", "url": f"{hook.url}/T0/SECRET"}]}}
        (cli.home / "config.yaml").write_text(yaml.safe_dump(config))
        process = subprocess.Popen(
            [
                *(BUNSUI_MCP, "--transport", "http", "--port", str(port)),
                *("--tokens", str(tokens_file), "--policy", str(policy)),
            ],
            env=server_env(cli),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{url}/approvals/static/inbox.css").status_code == 200:
                    break
            except httpx2.HTTPError:
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.2)
        yield InboxServer(url, tokens, cli, hook, failed, process)
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    for token in tokens.values():
        assert token not in stderr
    assert "SECRET" not in stderr


def sign_in(page: Page, inbox: InboxServer, actor: str) -> None:
    page.goto(f"{inbox.url}/approvals")
    expect(page).to_have_url(f"{inbox.url}/approvals/login?next=/approvals")
    page.get_by_label("Token").fill(inbox.tokens[actor])
    page.get_by_role("button", name="Sign in").click()


class TestSignIn:
    def test_an_agent_token_is_refused_at_sign_in(self, browser, inbox):
        """Agents decide nothing here: their token gets a refusal and no session cookie."""
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, inbox, "ai-agent")
        expect(page.get_by_role("heading", level=1)).to_have_text("Agents cannot sign in")
        assert "bunsui_session" not in {c["name"] for c in context.cookies()}
        page.goto(f"{inbox.url}/approvals")
        expect(page).to_have_url(f"{inbox.url}/approvals/login?next=/approvals")
        context.close()

    def test_the_session_cookie_is_httponly_strict_and_expires(self, browser, inbox):
        """A signed-in browser holds a session id, not the token, in a guarded cookie."""
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, inbox, "victor")
        expect(page.get_by_role("heading", level=1)).to_have_text("Pending tickets")
        [cookie] = [c for c in context.cookies() if c["name"] == "bunsui_session"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Strict"
        assert 0 < cookie["expires"] - time.time() <= 8 * 3600 + 60
        assert cookie["value"] != inbox.tokens["victor"]
        assert page.evaluate("document.cookie") == ""
        context.close()

    def test_nothing_is_served_without_authentication(self, inbox):
        """Pages, the event stream and decisions need a session or a bearer token."""
        assert httpx2.get(f"{inbox.url}/approvals/events").status_code == 401
        page = httpx2.get(f"{inbox.url}/approvals/tickets/tkt-x")
        assert (page.status_code, page.headers["location"]) == (
            303,
            "/approvals/login?next=/approvals/tickets/tkt-x",
        )
        post = httpx2.post(f"{inbox.url}/approvals/tickets/tkt-x/approve")
        assert post.status_code == 401
        assert httpx2.get(f"{inbox.url}/approvals/static/inbox.css").status_code == 200


class TestApproverFlow:
    def test_an_agents_ticket_appears_live_and_the_approver_runs_it(self, browser, inbox, tmp_path):
        """Carol signs in; the agent asks over MCP; the ticket shows up without a reload
        within 2 s; carol reads what it will do, approves, and sees it executed. The
        webhook got the request (with a link to the ticket's page) and the outcome."""
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        sign_in(page, inbox, "carol")
        expect(page.get_by_role("heading", level=1)).to_have_text("Pending tickets")
        page.wait_for_function("document.body.dataset.liveSrc === '/approvals'")
        time.sleep(1.0)  # the event stream is open before the agent acts

        ticket = inbox.agent_requests_rerun(batch_size=40)
        asked = time.monotonic()
        link = page.locator(f"#pending a[href='/approvals/tickets/{ticket['ticket_id']}']")
        expect(link).to_be_visible(timeout=2000)
        appeared = time.monotonic() - asked
        assert appeared < 2.0
        expect(page.locator("#pending")).to_contain_text("ai-agent")
        page.screenshot(path=str(tmp_path / "inbox-desktop.png"), full_page=True)
        folded = page.locator(f"#pending details[data-key='{ticket['ticket_id']}']")
        folded.locator("summary").click()
        expect(folded).to_contain_text("transform")
        expect(folded).to_contain_text("40")

        link.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Ticket {ticket['ticket_id']}")
        arguments = page.locator("#arguments-heading + dl")
        expect(arguments).to_contain_text("transform")
        expect(arguments).to_contain_text(inbox.failed_session)
        expect(arguments).to_contain_text("40")
        page.screenshot(path=str(tmp_path / "inbox-ticket.png"), full_page=True)
        page.get_by_label("Note for the audit log (optional)").fill("memory fix, looks right")
        page.get_by_role("button", name="Approve and run").click()

        expect(page.locator(".badge").first).to_have_text("executed", timeout=30_000)
        expect(page.locator("#result-heading + dl")).to_contain_text("ses-")
        assert page.get_by_role("button", name="Approve and run").count() == 0

        page.get_by_role("link", name="Back to the inbox").click()
        expect(page.locator("#decided")).to_contain_text("decided by carol")
        page.get_by_role("button", name="Verify the audit log").click()
        expect(page.get_by_text("Audit log verified")).to_be_visible()

        bodies = inbox.hook.wait_for(2, timeout=15)
        kinds = {(b["kind"], b["id"]) for b in bodies}
        assert ("ticket_created", ticket["ticket_id"]) in kinds
        assert ("ticket_decided", ticket["ticket_id"]) in kinds
        created = next(b for b in bodies if b["kind"] == "ticket_created")
        assert created["link"] == f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}"
        shown = inbox.cli.json("approval", "show", ticket["ticket_id"])
        assert (shown["status"], shown["decided_by"]) == ("executed", "carol")
        inbox.cli.json("audit", "verify")
        context.close()
        _keep_screenshot(tmp_path / "inbox-desktop.png")
        _keep_screenshot(tmp_path / "inbox-ticket.png")

    def test_a_viewer_sees_no_decision_controls_and_a_decision_live(self, browser, inbox):
        """Only actors allowed approval:approve get Approve and Reject; a decision made
        elsewhere (the CLI) shows on the open ticket page within 2 s, without a reload."""
        ticket = inbox.agent_requests_rerun(batch_size=41)
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, inbox, "victor")
        page.goto(f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}")
        expect(page.get_by_text("lets you read this ticket, not decide it")).to_be_visible()
        assert page.get_by_role("button", name="Approve and run").count() == 0
        assert page.get_by_role("button", name="Reject").count() == 0
        page.wait_for_function("document.body.dataset.liveSrc.includes('/tickets/')")
        time.sleep(1.0)  # the event stream is open before the decision
        inbox.cli.json("approval", "reject", ticket["ticket_id"], "--reason", "not today")
        expect(page.locator(".badge").first).to_have_text("rejected", timeout=2000)
        expect(page.locator("#ticket")).to_contain_text("not today")
        context.close()


def _forgery_page(target: str, fields: dict[str, str]) -> ThreadingHTTPServer:
    """An attacker's page on another site that auto-submits a form to `target`."""
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    html = (
        f'<html><body><form id="f" method="post" action="{target}">{inputs}</form>'
        "<script>document.getElementById('f').submit()</script></body></html>"
    ).encode()

    class Evil(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *_args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class TestForgery:
    def test_a_cross_site_post_from_a_signed_in_browser_decides_nothing(self, browser, inbox):
        """Carol is signed in; a page on another site posts an approval in her browser. It is
        refused and the ticket stays pending."""
        ticket = inbox.agent_requests_rerun(batch_size=42)
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, inbox, "carol")
        target = f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}/approve"
        evil = _forgery_page(target, {"reason": "forged"})
        try:
            # localhost is another site than 127.0.0.1: SameSite and Origin both apply.
            with page.expect_response(target) as answer:
                page.goto(f"http://localhost:{evil.server_address[1]}/")
            assert answer.value.status in {401, 403}
        finally:
            evil.shutdown()
            evil.server_close()
        assert inbox.cli.json("approval", "show", ticket["ticket_id"])["status"] == "pending"
        context.close()

    def test_a_post_without_the_csrf_token_or_with_a_foreign_origin_is_refused(
        self, browser, inbox
    ):
        """Even with carol's session cookie, a POST needs the page's CSRF token and an
        allowed Origin."""
        ticket = inbox.agent_requests_rerun(batch_size=43)
        context = browser.new_context()
        page = context.new_page()
        sign_in(page, inbox, "carol")
        page.goto(f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}")
        csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
        cookie = next(c["value"] for c in context.cookies() if c["name"] == "bunsui_session")
        context.close()
        target = f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}/approve"
        jar = {"bunsui_session": cookie}
        attempts = [
            ({"Origin": inbox.url}, {"reason": "no token"}),
            ({"Origin": inbox.url}, {"csrf_token": "wrong", "reason": "bad token"}),
            ({"Origin": "http://evil.example"}, {"csrf_token": csrf, "reason": "foreign"}),
            ({}, {"csrf_token": csrf, "reason": "no origin"}),
        ]
        for headers, form in attempts:
            answer = httpx2.post(target, data=form, headers=headers, cookies=jar)
            assert answer.status_code == 403, (form, answer.status_code)
        assert inbox.cli.json("approval", "show", ticket["ticket_id"])["status"] == "pending"


class TestScripts:
    def test_a_script_decides_with_a_bearer_token_and_gets_json(self, inbox):
        """`Authorization: Bearer` works without cookies or CSRF tokens; an agent's bearer
        token is refused; an oversized form is refused before anything is decided."""
        ticket = inbox.agent_requests_rerun(batch_size=44)
        target = f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}/reject"
        agent = {"Authorization": f"Bearer {inbox.tokens['ai-agent']}"}
        assert httpx2.get(f"{inbox.url}/approvals", headers=agent).status_code == 403
        carol = {
            "Authorization": f"Bearer {inbox.tokens['carol']}",
            "Accept": "application/json",
        }
        listed = httpx2.get(f"{inbox.url}/approvals", headers=carol).json()
        assert ticket["ticket_id"] in {t["ticket_id"] for t in listed["pending"]}
        huge = httpx2.post(
            target,
            content=b"reason=" + b"x" * 70_000,
            headers={**carol, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert huge.status_code == 413
        decided = httpx2.post(target, data={"reason": "scripted no"}, headers=carol).json()
        assert (decided["status"], decided["decided_by"]) == ("rejected", "carol")

    def test_two_approvers_racing_in_the_inbox_run_the_ticket_once(self, inbox):
        """Carol and dave approve at the same moment: one execution, one CONFLICT, as on
        the CLI (the inbox decides through the same gateway)."""
        ticket = inbox.agent_requests_rerun(batch_size=46)
        target = f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}/approve"

        def approve(actor: str) -> int:
            headers = {
                "Authorization": f"Bearer {inbox.tokens[actor]}",
                "Accept": "application/json",
            }
            return httpx2.post(target, data={}, headers=headers, timeout=60).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(pool.map(approve, ["carol", "dave"]))
        assert statuses == [200, 409]
        shown = inbox.cli.json("approval", "show", ticket["ticket_id"])
        assert shown["status"] == "executed"
        entries = inbox.cli.json("audit", "list", "--limit", "10000")["entries"]
        executed = [
            e
            for e in entries
            if e["ticket_id"] == ticket["ticket_id"] and e["result"] == "executed"
        ]
        assert len(executed) == 1


class TestPhone:
    def test_the_inbox_and_a_ticket_fit_360_px_without_horizontal_scroll(
        self, browser, inbox, tmp_path
    ):
        """At phone width nothing scrolls sideways, not even 64-character hashes."""
        ticket = inbox.agent_requests_rerun(batch_size=45)
        context = browser.new_context(
            viewport={"width": 360, "height": 740}, device_scale_factor=2, is_mobile=True
        )
        page = context.new_page()
        sign_in(page, inbox, "carol")
        expect(page.locator("#pending")).to_contain_text(ticket["ticket_id"])
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(tmp_path / "inbox-phone.png"))
        page.goto(f"{inbox.url}/approvals/tickets/{ticket['ticket_id']}")
        expect(page.get_by_role("button", name="Approve and run")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        unlabeled = page.evaluate(
            "[...document.querySelectorAll('input:not([type=hidden]), textarea')]"
            ".filter(e => !(e.labels && e.labels.length)).length"
        )
        assert unlabeled == 0
        assert page.locator("h1").count() == 1
        context.close()
        _keep_screenshot(tmp_path / "inbox-phone.png")


def _keep_screenshot(path: Path) -> None:
    """Copy a screenshot to $BUNSUI_SCREENSHOTS (how docs/inbox-*.png are made)."""
    target = os.environ.get("BUNSUI_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)
