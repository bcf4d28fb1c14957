"""`bunsui notify test` through the real CLI against a local webhook receiver."""

from __future__ import annotations

import yaml

from tests.e2e.test_cli import Cli
from tests.webhook import receiver


def configure(cli: Cli, targets: list[dict[str, str]]) -> None:
    cli.home.mkdir(parents=True, exist_ok=True)
    config = {"notifications": {"base_url": "https://inbox.example", "targets": targets}}
    (cli.home / "config.yaml").write_text(yaml.safe_dump(config))


def test_notify_test_sends_one_message_per_target_and_reports_each(tmp_path):
    """A Slack-style target gets `{"text"}` with the inbox link; a dead one is reported as
    not delivered, naming only its host."""
    cli = Cli(tmp_path / "home")
    with receiver() as hook:
        configure(
            cli,
            [
                {"name": "ops", "url": f"{hook.url}/services/SECRET", "format": "slack"},
                {"name": "gone", "url": "http://127.0.0.1:9/hook/SECRET"},
            ],
        )
        result = cli.run("notify", "test")
        [body] = hook.wait_for(1)
    assert result.returncode == 0, result.stderr
    out = yaml.safe_load(result.stdout)["results"]
    assert [(r["target"], r["delivered"]) for r in out] == [("ops", True), ("gone", False)]
    assert out[1]["host"] == "http://127.0.0.1:9"
    assert "SECRET" not in result.stdout + result.stderr
    assert body["text"].endswith("https://inbox.example/approvals")
    assert hook.requests[0][0] == "/services/SECRET"


def test_notify_test_is_refused_to_agents_and_explains_missing_config(tmp_path):
    """Agents may not send messages; without targets the error says where to add them."""
    cli = Cli(tmp_path / "home")
    configure(cli, [{"name": "ops", "url": "http://127.0.0.1:9/x"}])
    denied = cli.json("--actor", "ai-agent", "notify", "test", expect=5)
    assert denied["error"]["code"] == "PERMISSION_DENIED"
    configure(cli, [])
    missing = cli.json("notify", "test", expect=2)
    assert missing["error"]["code"] == "INVALID_ARGUMENT"
    assert "config.yaml" in missing["error"]["message"]
