"""The `bunsui` CLI: `bunsui <resource> <action>`, one command per registry action.

Commands are generated from the action registry, so the CLI can never drift from the MCP
tools: the options are the action's input fields, typing and validation are the gateway's.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from typer.exceptions import TyperException

from bunsui_core.actions import REGISTRY, RESOURCE_MODULES, Action, Gateway
from bunsui_core.actions.command_line import (
    is_flag,
    is_list,
    is_mapping_field,
    option_name,
    raw_arguments,
)
from bunsui_core.config import PRIVATE_UMASK, Settings, os_user
from bunsui_core.errors import BunsuiError, ErrorCode, InvalidArgumentError
from bunsui_core.governance.approvals import PendingApproval
from bunsui_core.governance.tickets import Ticket
from bunsui_core.model.session import SessionStatus
from bunsui_core.model.untrusted import terminal_safe
from bunsui_mcp._cli_render import OutputFormat, print_error, render
from bunsui_mcp._ticket_render import ticket_list_text, ticket_text

EXIT_CODES: dict[ErrorCode, int] = {
    ErrorCode.INTERNAL: 1,
    ErrorCode.INVALID_ARGUMENT: 2,
    ErrorCode.PIPELINE_INVALID: 2,
    ErrorCode.POLICY_INVALID: 2,
    ErrorCode.NOT_FOUND: 3,
    ErrorCode.CONFLICT: 4,
    ErrorCode.INVALID_TRANSITION: 4,
    ErrorCode.SESSION_ACTIVE: 4,
    ErrorCode.TICKET_EXPIRED: 4,
    ErrorCode.PERMISSION_DENIED: 5,
    ErrorCode.READ_ONLY: 5,
    ErrorCode.STORE_LOCKED: 7,
    ErrorCode.STORE_CORRUPT: 7,
    ErrorCode.STORE_SCHEMA_TOO_NEW: 7,
    ErrorCode.ENGINE_UNSUPPORTED: 8,
    ErrorCode.SPAWN_FAILED: 8,
    ErrorCode.RETRY_BUDGET_EXHAUSTED: 9,
    ErrorCode.ESCALATED: 4,
    ErrorCode.THROTTLED: 14,
    ErrorCode.NOT_EXECUTABLE: 9,
    ErrorCode.STEP_FAILED: 9,
    ErrorCode.AUDIT_CHAIN_BROKEN: 13,
}
"""Exit code per error code (README: "Exit codes")."""

SESSION_EXIT_CODES: dict[SessionStatus, int] = {
    SessionStatus.COMPLETED: 0,
    SessionStatus.FAILED: 10,
    SessionStatus.TIMEOUT: 11,
    SessionStatus.CANCELLED: 12,
}
"""Exit code of `pipeline run --wait` and `session watch` by the session's final status."""

EXIT_PENDING_APPROVAL = 6
"""The call became an approval ticket (printed on stdout) instead of acting."""

EXIT_INTERRUPTED = 130


@dataclass
class CliState:
    """Global options, resolved once per invocation."""

    output_format: OutputFormat
    home: str | None
    actor: str
    policy: str | None = None
    read_only: bool = False
    backend: str | None = None

    @property
    def gateway(self) -> Gateway:
        """A gateway over the chosen home, policy, mode and backend."""
        return Gateway(
            Settings.resolve(
                self.home, policy=self.policy, read_only=self.read_only, backend=self.backend
            )
        )


STATE = CliState(output_format=OutputFormat.JSON, home=None, actor="")


def _default_format() -> OutputFormat:
    chosen = os.environ.get("BUNSUI_FORMAT")
    if chosen:
        try:
            return OutputFormat(chosen)
        except ValueError:
            raise InvalidArgumentError(
                f"BUNSUI_FORMAT must be one of json, yaml, table (got {chosen!r})",
                details={"field": "BUNSUI_FORMAT"},
            ) from None
    return OutputFormat.TABLE if sys.stdout.isatty() else OutputFormat.JSON


def _progress_printer() -> Any:
    """Progress lines on a terminal's stderr; silent when output is captured."""
    if not sys.stderr.isatty():
        return None
    return lambda message: print(terminal_safe(f"· {message}"), file=sys.stderr, flush=True)


app = typer.Typer(
    name="bunsui",
    help="Run data pipelines; diagnose and recover failed sessions.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    *,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            help="json | yaml | table (default: table on a terminal, json "
            "when piped; BUNSUI_FORMAT overrides the default).",
        ),
    ] = None,
    home: Annotated[
        str | None,
        typer.Option("--home", help="State directory (default: $BUNSUI_HOME or ~/.bunsui)."),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", envvar="BUNSUI_ACTOR", help="Who is acting (default: OS user)."),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Policy file (default: $BUNSUI_POLICY or the shipped one)."),
    ] = None,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="Refuse every write (also BUNSUI_READ_ONLY=1)."),
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend", help="local | aws (default: $BUNSUI_BACKEND, config.yaml, local)."
        ),
    ] = None,
) -> None:
    STATE.output_format = output_format or _default_format()
    STATE.home = home
    STATE.actor = actor or os_user()
    STATE.policy = policy
    STATE.read_only = read_only
    STATE.backend = backend


def _parameter(action: Action, name: str, info: FieldInfo) -> inspect.Parameter:
    """The Typer parameter for one input field; values stay text so the gateway validates them."""
    option = option_name(name)
    help_text = info.description or ""
    if name in action.cli_arguments:
        annotation: Any = Annotated[str, typer.Argument(help=help_text, show_default=False)]
        default: Any = inspect.Parameter.empty
    elif is_flag(info):
        flags = f"{option}/--no-{option.removeprefix('--')}"
        annotation = Annotated[bool, typer.Option(flags, help=help_text)]
        default = bool(info.default)
    elif is_mapping_field(info) or is_list(info):
        suffix = " Repeatable key=value." if is_mapping_field(info) else " Repeatable."
        annotation = Annotated[list[str] | None, typer.Option(option, help=help_text + suffix)]
        default = None
    else:
        annotation = Annotated[str | None, typer.Option(option, help=help_text)]
        default = None
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _exit_code_for(action: Action, raw: dict[str, Any], result: BaseModel) -> int:
    """A ticket instead of the action is 6; waiting commands report the session's outcome;
    an approval whose action failed reports that failure's code."""
    if isinstance(result, PendingApproval):
        return EXIT_PENDING_APPROVAL
    if action.name == "pipeline:run" and raw.get("wait"):
        return SESSION_EXIT_CODES.get(SessionStatus(result.model_dump()["status"]), 1)
    if isinstance(result, Ticket) and result.error:
        return EXIT_CODES.get(ErrorCode(result.error["code"]), 1)
    return 0


def run_action(action: Action, values: dict[str, Any]) -> None:
    """Invoke through the gateway, print the result, exit with the documented code."""
    raw = raw_arguments(action, values)
    if action.cli_stdin and action.cli_stdin not in raw and not sys.stdin.isatty():
        raw[action.cli_stdin] = sys.stdin.read()
    result = STATE.gateway.invoke(STATE.actor, action.name, raw, progress=_progress_printer())
    data = result.model_dump(mode="json")
    if STATE.output_format is OutputFormat.TABLE and isinstance(result, Ticket | PendingApproval):
        print(ticket_text(data))
    elif STATE.output_format is OutputFormat.TABLE and action.name == "approval:list":
        print(ticket_list_text(data["tickets"]))
    elif action.cli_json_lines and not isinstance(result, PendingApproval):
        for item in data[action.cli_json_lines]:
            print(terminal_safe(json.dumps(item, ensure_ascii=False)))
    else:
        print(render(data, STATE.output_format))
    code = _exit_code_for(action, raw, result)
    if code:
        raise typer.Exit(code)


def _command_for(action: Action) -> Any:
    def command(**values: Any) -> None:
        run_action(action, values)

    parameters = [
        _parameter(action, name, info) for name, info in action.input_model.model_fields.items()
    ]
    # Typer reads the signature and annotations; positional arguments first, as on the CLI.
    parameters.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = action.description
    return command


RESOURCE_HELP = {
    "approval": "Approval tickets: list, show, approve (executes once), reject, cancel.",
    "audit": "The hash-chained audit log: list, export, head, verify.",
    "aws": "The AWS backend: init (create tables), doctor (check what is missing).",
    "policy": "The policy in force: check one call, explain an actor's permissions.",
    "error": "Classify errors, analyze failed sessions, see what was learned.",
    "events": "The feed of session and ticket status changes (tail, --follow).",
    "job": "Jobs of a session: list, describe, logs, update-config, rerun, mark.",
    "pipeline": "Pipelines: validate, register, list, describe, run.",
    "recovery": "Recovery plans: suggest, execute.",
    "session": "Sessions (runs): list, describe, watch, cancel, rerun.",
}
GLOBAL_OPTIONS_WITH_VALUES = {"--format", "--home", "--actor", "--policy", "--backend"}


def requested_resource(argv: list[str]) -> str | None:
    """The resource named on the command line, skipping global options and their values."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in GLOBAL_OPTIONS_WITH_VALUES:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            return word
    return None


def build_commands(resource: str | None) -> None:
    """Every resource group, with commands generated for the requested resource only:
    a command pays for loading its own actions, not everyone's."""
    for name in sorted(RESOURCE_MODULES):
        group = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help=RESOURCE_HELP[name])
        app.add_typer(group, name=name)
        if name != resource:
            continue
        for action in REGISTRY.of_resource(name):
            if action.name == "events:tail":
                continue  # its own command below: it can follow
            group.command(action.verb, help=action.description, short_help=action.title)(
                _command_for(action)
            )
        if name == "session":
            group.command("watch", short_help="Follow a session until it ends")(watch)
        if name == "events":
            group.command("tail", short_help="Print status changes as JSON lines")(tail_events)


def tail_events(
    after_seq: Annotated[
        int | None, typer.Option(help="Resume after this seq (a previous event's seq).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most events per read.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing new events.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between reads when following.")] = 1.0,
) -> None:
    """Session and ticket status changes, one JSON object per line, oldest first. With
    --follow, keeps printing as they happen; pass the last seq as --after-seq to resume."""
    gateway = STATE.gateway
    cursor = after_seq
    while True:
        page = gateway.invoke(
            STATE.actor, "events:tail", {"after_seq": cursor, "limit": limit}
        ).model_dump(mode="json")
        for event in page["events"]:
            print(terminal_safe(json.dumps(event, ensure_ascii=False)), flush=True)
        cursor = page["next_after_seq"]
        if not follow:
            return
        if not page["events"]:
            time.sleep(max(0.1, interval))


def watch(
    session_id: Annotated[str, typer.Argument(help="Session id (ses-...).")],
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 1.0,
) -> None:
    """Follow a session until it ends, then print it; the exit code is its outcome
    (0 completed, 10 failed, 11 timeout, 12 cancelled)."""
    gateway = STATE.gateway
    progress = _progress_printer()
    seen: dict[str, str] = {}
    while True:
        detail = gateway.invoke(STATE.actor, "session:describe", {"session_id": session_id})
        data = detail.model_dump(mode="json")
        for job in data["jobs"]:
            if progress and seen.get(job["job_id"]) != job["status"]:
                progress(f"job {job['job_id']}: {job['status']}")
            seen[job["job_id"]] = job["status"]
        status = SessionStatus(data["status"])
        if status.is_terminal:
            print(render(data, STATE.output_format))
            raise typer.Exit(SESSION_EXIT_CODES[status])
        time.sleep(max(0.1, interval))


def _usage_error(exc: TyperException) -> int:
    """Bad command lines get the same coded error as bad arguments; bare groups show help."""
    ctx = getattr(exc, "ctx", None)
    # A group called without a command raises its help text as the "error": show it.
    if type(exc).__name__ == "NoArgsIsHelpError":
        print(exc.format_message())
        return 0
    print_error(
        {
            "code": str(ErrorCode.INVALID_ARGUMENT),
            "message": exc.format_message(),
            "details": {"usage": ctx.get_usage() if ctx is not None else ""},
        },
        STATE.output_format,
    )
    return EXIT_CODES[ErrorCode.INVALID_ARGUMENT]


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure becomes a coded error and a documented exit code."""
    os.umask(PRIVATE_UMASK)
    arguments = sys.argv[1:] if argv is None else argv
    build_commands(requested_resource(arguments))
    command = typer.main.get_command(app)
    try:
        STATE.output_format = _default_format()
        returned = command.main(args=arguments, prog_name="bunsui", standalone_mode=False)
    except BunsuiError as exc:
        print_error(exc.to_dict(), STATE.output_format)
        return EXIT_CODES[exc.code]
    except TyperException as exc:
        return _usage_error(exc)
    except typer.Abort:
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    # With standalone_mode off, click returns the code of a typer.Exit instead of raising it.
    return returned if isinstance(returned, int) else 0


if __name__ == "__main__":
    sys.exit(main())
