"""The CLI on the AWS backend, against moto's HTTP server (the real boto3 wire path)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.server import ThreadedMotoServer

from tests.conftest import command_job, pipeline_data
from tests.e2e.test_cli import Cli

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's HTTP server; its Step Functions interpreter calls the other services back
    through MOTO_PORT, so that names this server's port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("MOTO_PORT", str(port))
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_cli(tmp_path: Path, moto_url: str) -> Cli:
    """A home whose config.yaml selects the aws backend on the moto server."""
    home = tmp_path / "home"
    home.mkdir()
    config = {"backend": "aws", "aws": {"region": "us-east-1", "endpoint_url": moto_url}}
    (home / "config.yaml").write_text(yaml.safe_dump(config))
    return Cli(home)


def test_init_is_idempotent_and_doctor_reports_what_is_missing(aws_cli):
    """`aws init` creates the tables once; `aws doctor` then finds them and the identity, and
    names what is still missing (the state machine role) with exit 0 for the report."""
    first = aws_cli.json("aws", "init", env=FAKE_AWS)
    assert "bunsui-sessions" in " ".join(first["created"])
    assert aws_cli.json("aws", "init", env=FAKE_AWS)["created"] == []
    doctor = aws_cli.json("aws", "doctor", env=FAKE_AWS)
    checks = {c["check"]: c for c in doctor["checks"]}
    assert checks["credentials"]["ok"]
    assert all(c["ok"] for name, c in checks.items() if name.startswith("table "))
    assert not checks["state machine role"]["ok"]
    assert doctor["ok"] is False
    assert "states:StartExecution" in doctor["required_iam_actions"]["engine (Step Functions)"]
    assert "testing" not in aws_cli.run("aws", "doctor", env=FAKE_AWS).stdout


def test_governance_works_the_same_on_dynamodb(aws_cli, tmp_path):
    """Registering, a ticket for the agent, the audit chain: all stored in DynamoDB."""
    aws_cli.json("aws", "init", env=FAKE_AWS)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(pipeline_data(command_job("only", "pass"), name="aws-demo")))
    registered = aws_cli.json("pipeline", "register", str(path), env=FAKE_AWS)
    assert registered["pipeline_id"] == "aws-demo"
    listed = aws_cli.json("pipeline", "list", env=FAKE_AWS)
    assert [p["pipeline_id"] for p in listed["pipelines"]] == ["aws-demo"]
    ticket = aws_cli.json(
        "--actor", "ai-agent", "pipeline", "run", "aws-demo", expect=6, env=FAKE_AWS
    )
    assert ticket["status"] == "pending_approval"
    pending = aws_cli.json("approval", "list", "--status", "pending", env=FAKE_AWS)
    assert [t["ticket_id"] for t in pending["tickets"]] == [ticket["ticket_id"]]
    actors = {e["actor"] for e in aws_cli.json("audit", "list", env=FAKE_AWS)["entries"]}
    assert actors == {getpass.getuser(), "ai-agent"}
    assert aws_cli.json("audit", "verify", env=FAKE_AWS)["ok"] is True
    assert not (aws_cli.home / "bunsui.db").exists()


def _calls_by_bunsui(recording: str) -> set[str]:
    """`service:Operation` of every request moto's recorder saw signed with bunsui's (fake)
    credentials; Step Functions' own calls to Lambda are signed with moto's."""
    import base64  # noqa: PLC0415
    import json  # noqa: PLC0415
    import re  # noqa: PLC0415
    from urllib.parse import parse_qs  # noqa: PLC0415

    calls = set()
    for line in recording.splitlines():
        entry = json.loads(line)
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        signed = re.search(
            r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/", headers.get("authorization", "")
        )
        if not signed or signed[1] != FAKE_AWS["AWS_ACCESS_KEY_ID"]:
            continue
        if target := headers.get("x-amz-target"):
            operation = target.rsplit(".", 1)[-1]
        else:
            body = entry["body"] or ""
            body = base64.b64decode(body).decode() if entry["body_encoded"] else body
            operation = parse_qs(body).get("Action", ["<a REST call>"])[0]
        calls.add(f"{signed[2]}:{operation}")
    return calls


@pytest.fixture
def recorder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's request recorder (one per process, shared by every moto server), writing to
    this test's directory and stopped however the test ends, so no later test records."""
    from moto.moto_api import recorder  # noqa: PLC0415

    monkeypatch.setattr(recorder, "_location", str(tmp_path / "moto_recording"))
    recorder.reset_recording()
    recorder.start_recording()
    try:
        yield recorder
    finally:
        recorder.stop_recording()


def test_lambda_pipeline_runs_on_step_functions_with_parallel_jobs(
    aws_cli, moto_url, tmp_path, recorder
):
    """`pipeline run --wait` on the aws backend compiles the pipeline, runs it as a Step
    Functions execution (moto interprets the ASL; its Lambda stand-in succeeds), and folds
    the history back into job runs that `job list` and `session describe` show. Every AWS
    call bunsui made on the way is one `aws doctor` lists as needed, so a user granted
    exactly that list is refused nothing."""
    import json  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    config = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
    request = urllib.request.Request(  # noqa: S310 - the local moto server
        f"{moto_url}/moto-api/config", data=json.dumps(config).encode(), method="POST"
    )
    urllib.request.urlopen(request).close()  # noqa: S310
    home_config = yaml.safe_load((aws_cli.home / "config.yaml").read_text())
    home_config["aws"]["state_machine_role_arn"] = "arn:aws:iam::123456789012:role/bunsui-states"
    (aws_cli.home / "config.yaml").write_text(yaml.safe_dump(home_config))
    aws_cli.json("aws", "init", env=FAKE_AWS)

    def lambda_job(job_id: str, deps: list[str]) -> dict:
        arn = f"arn:aws:lambda:us-east-1:123456789012:function:{job_id}"
        return {
            "job_id": job_id,
            "operations": [
                {
                    "operation_id": f"{job_id}-op",
                    "config": {
                        "operation_type": "lambda",
                        "resource_arn": arn,
                        "parameters": {"batch_size": 100},
                    },
                }
            ],
            "dependencies": deps,
        }

    path = tmp_path / "aws.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "aws-lambdas",
                "jobs": [lambda_job("a", []), lambda_job("b", []), lambda_job("c", ["a", "b"])],
            }
        )
    )
    done = aws_cli.json("pipeline", "run", str(path), "--wait", env=FAKE_AWS, timeout=120)
    assert done["status"] == "completed"
    jobs = aws_cli.json("job", "list", "--session-id", done["session_id"], env=FAKE_AWS)
    assert {j["job_id"]: j["status"] for j in jobs["jobs"]} == {
        "a": "completed",
        "b": "completed",
        "c": "completed",
    }
    logs = aws_cli.json("job", "logs", "a", "--session-id", done["session_id"], env=FAKE_AWS)
    [excerpt] = logs["logs"]
    assert excerpt["operation_id"] == "a-op"
    assert excerpt["content"]["trust"] == "untrusted_pipeline_output"
    synced = aws_cli.json("session", "sync", done["session_id"], env=FAKE_AWS)
    assert synced["status"] == "completed"
    assert synced["error_count"] == 0
    needed = aws_cli.json("aws", "doctor", env=FAKE_AWS)["required_iam_actions"]
    calls = _calls_by_bunsui(recorder.download_recording())
    assert {"states:StartExecution", "logs:DescribeLogStreams", "dynamodb:PutItem"} <= calls
    granted = {action for actions in needed.values() for action in actions}
    assert calls - {"sts:GetCallerIdentity"} <= granted, calls - granted
