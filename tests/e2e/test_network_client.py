"""A network client against the real `bunsui-mcp --transport http`: tokens, token files,
human actors without tokens, and the OAuth metadata the server must not invent."""

from __future__ import annotations

import getpass
import json
import subprocess
import time

import httpx2
import pytest

from tests.e2e.test_cli import Cli
from tests.e2e.test_mcp_transports import BUNSUI_MCP, free_port, server_env


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path / "home")


def refused(cli: Cli, *args: str) -> dict:
    """bunsui-mcp exits at once with a coded error on stderr."""
    result = subprocess.run(
        [BUNSUI_MCP, "--transport", "http", "--port", str(free_port()), *args],
        env=server_env(cli),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    return json.loads(result.stderr.strip().splitlines()[-1])["error"]


def new_token(tokens, actor: str) -> str:
    made = subprocess.run(
        [BUNSUI_MCP, "--tokens", str(tokens), "--new-token", actor],
        capture_output=True,
        text=True,
        check=True,
    )
    return made.stdout.strip()


class TestTokens:
    @pytest.mark.parametrize("text", ["tokens: []\n", ""])
    def test_an_empty_token_list_is_an_error_not_open_access(self, cli, tmp_path, text):
        """A tokens file with no token refuses to start instead of serving without auth."""
        tokens = tmp_path / "tokens.yaml"
        tokens.write_text(text)
        tokens.chmod(0o600)
        error = refused(cli, "--tokens", str(tokens))
        assert error["code"] == "INVALID_ARGUMENT"
        assert "no tokens" in error["message"]

    @pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
    def test_a_group_or_world_writable_tokens_file_is_refused(self, cli, tmp_path, mode):
        """Whoever can write the tokens file could add their own token: refused."""
        tokens = tmp_path / "tokens.yaml"
        new_token(tokens, "alice")
        assert tokens.stat().st_mode & 0o777 == 0o600
        tokens.chmod(mode)
        error = refused(cli, "--tokens", str(tokens))
        assert "writable by other users" in error["message"]

    def test_loopback_without_tokens_refuses_a_human_actor(self, cli):
        """Without tokens any local process could connect: the local user (operator and
        approver under the shipped policy) is refused as the server's actor."""
        error = refused(cli, "--actor", getpass.getuser())
        assert error["code"] == "INVALID_ARGUMENT"
        assert "human role" in error["message"]


def test_no_oauth_authorization_server_is_advertised(cli, tmp_path):
    """With tokens, a 401 points at no resource metadata, and neither the protected-resource
    nor the authorization-server well-known document exists (there is no OAuth server)."""
    tokens = tmp_path / "tokens.yaml"
    token = new_token(tokens, "ai-agent")
    port = free_port()
    process = subprocess.Popen(
        [BUNSUI_MCP, "--transport", "http", "--port", str(port), "--tokens", str(tokens)],
        env=server_env(cli),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                unauthorized = httpx2.post(
                    f"{base}/mcp",
                    json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                    headers={"Accept": "application/json, text/event-stream"},
                )
                break
            except httpx2.TransportError:
                assert process.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert unauthorized.status_code == 401
        assert "resource_metadata" not in unauthorized.headers.get("www-authenticate", "")
        for path in (
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ):
            assert httpx2.get(base + path).status_code == 404, path
        ok = httpx2.post(
            f"{base}/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            },
            headers={
                "Accept": "application/json, text/event-stream",
                "Authorization": f"Bearer {token}",
            },
        )
        assert ok.status_code == 200
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "MCPDeprecationWarning" not in stderr
