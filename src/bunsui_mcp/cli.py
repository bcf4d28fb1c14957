"""The `bunsui` CLI: `bunsui <resource> <action>`, one command per registry action.

Commands are generated from the action registry, so the CLI can never drift from the MCP
tools: the options are the action's input fields, typing and validation are the gateway's.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import select
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from importlib.metadata import version as package_version
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
from bunsui_core.actions.registry import ACTION_NAMES
from bunsui_core.config import PRIVATE_UMASK, Settings, os_user
from bunsui_core.errors import BunsuiError, ErrorCode, InvalidArgumentError
from bunsui_core.governance.approvals import PendingApproval
from bunsui_core.governance.tickets import Ticket
from bunsui_core.model.session import SessionStatus
from bunsui_core.model.untrusted import terminal_safe
from bunsui_mcp._cli_help import (
    argument_metavar,
    cli_words,
    metavar,
    option_help,
    plain_arguments,
    with_examples,
)
from bunsui_mcp._cli_live import RunProgress, new_lines, on_terminal, watch_live
from bunsui_mcp._cli_render import OutputFormat, print_error, render
from bunsui_mcp._cli_signals import cancel_on_interrupt
from bunsui_mcp._insight_view import insight_view
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
    ErrorCode.INTERRUPTED: 130,
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
EXIT_BROKEN_PIPE = 141
"""stdout's reader went away (`| head`): 128 + SIGPIPE, as a shell reports a writer it killed."""


@dataclass
class CliState:
    """Global options, resolved once per invocation."""

    output_format: OutputFormat
    home: str | None
    actor: str
    policy: str | None = None
    read_only: bool = False
    backend: str | None = None
    wide: bool = False

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
    if not on_terminal():
        return None
    return lambda message: print(terminal_safe(f"· {message}"), file=sys.stderr, flush=True)


app = typer.Typer(
    name="bunsui",
    help="Run data pipelines; diagnose and recover failed sessions.\n\n"
    "Global options may also follow the command (`bunsui session list --format json`).",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=True,
)


def _print_version(value: bool) -> None:
    if value:
        print(f"bunsui {package_version('bunsui')}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    *,
    output_format: Annotated[
        OutputFormat | None,
        typer.Option(
            "--format",
            metavar="[json|yaml|table]",
            help="Output format (default: table on a terminal, json when piped; "
            "BUNSUI_FORMAT overrides the default).",
        ),
    ] = None,
    home: Annotated[
        str | None,
        typer.Option(
            "--home", metavar="PATH", help="State directory (default: $BUNSUI_HOME or ~/.bunsui)."
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            metavar="TEXT",
            envvar="BUNSUI_ACTOR",
            help="Who is acting (default: OS user).",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            metavar="PATH",
            help="Policy file (default: $BUNSUI_POLICY or the shipped one).",
        ),
    ] = None,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="Refuse every write (also BUNSUI_READ_ONLY=1)."),
    ] = False,
    backend: Annotated[
        str | None,
        typer.Option(
            "--backend",
            metavar="[local|aws]",
            help="Where state and runs live (default: $BUNSUI_BACKEND, config.yaml, local).",
        ),
    ] = None,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Table format: show every column, full timestamps."),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Run data pipelines; diagnose and recover failed sessions."""
    STATE.output_format = output_format or _default_format()
    STATE.wide = wide
    STATE.home = home
    STATE.actor = actor or os_user()
    STATE.policy = policy
    STATE.read_only = read_only
    STATE.backend = backend


def _parameter(action: Action, name: str, info: FieldInfo) -> inspect.Parameter:
    """The Typer parameter for one input field; values stay text so the gateway validates them."""
    option = option_name(name)
    help_text = option_help(name, info, action.input_model.model_fields)
    required = info.is_required() and name != action.cli_stdin and not is_mapping_field(info)
    if name in action.cli_arguments:
        annotation: Any = Annotated[
            str,
            typer.Argument(help=help_text, show_default=False, metavar=argument_metavar(name)),
        ]
        default: Any = inspect.Parameter.empty
    elif is_flag(info):
        flags = f"{option}/--no-{option.removeprefix('--')}"
        annotation = Annotated[bool, typer.Option(flags, help=help_text, show_default=False)]
        default = bool(info.default)
    elif is_mapping_field(info) or is_list(info):
        suffix = " Repeatable." if help_text else "Repeatable."
        annotation = Annotated[
            list[str] | None,
            typer.Option(option, help=help_text + suffix, metavar=metavar(name, info)),
        ]
        default = None
    else:
        # A required option is typed `str` with no default: Typer marks it [required].
        annotation = Annotated[
            str if required else str | None,
            typer.Option(
                option,
                help=help_text,
                metavar=metavar(name, info),
                show_default=False,
            ),
        ]
        default = inspect.Parameter.empty if required else None
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def _exit_code_for(action: Action, raw: dict[str, Any], result: BaseModel) -> int:
    """A ticket instead of the action is 6; waiting commands (run, reruns) report the
    session's outcome; an approval whose action failed reports that failure's code."""
    if isinstance(result, PendingApproval):
        return EXIT_PENDING_APPROVAL
    status = getattr(result, "status", None)
    if raw.get("wait") and isinstance(status, SessionStatus):
        return SESSION_EXIT_CODES.get(status, 1)
    if isinstance(result, Ticket) and result.error:
        return EXIT_CODES.get(ErrorCode(result.error["code"]), 1)
    return 0


def run_action(action: Action, values: dict[str, Any]) -> None:
    """Invoke through the gateway, print the result, exit with the documented code."""
    raw = raw_arguments(action, values)
    if action.cli_stdin and action.cli_stdin not in raw and not sys.stdin.isatty():
        raw[action.cli_stdin] = sys.stdin.read()
    waits = bool(raw.get("wait"))
    live = RunProgress() if waits and on_terminal() else None
    with (
        cancel_on_interrupt() if waits else nullcontext(),
        live.shown() if live else nullcontext(),
    ):
        progress = live or _progress_printer()
        result = STATE.gateway.invoke(STATE.actor, action.name, raw, progress=progress)
    data = result.model_dump(mode="json")
    if STATE.output_format is OutputFormat.TABLE and isinstance(result, Ticket | PendingApproval):
        print(ticket_text(data))
    elif STATE.output_format is OutputFormat.TABLE and action.name == "approval:list":
        print(ticket_list_text(data["tickets"]))
    elif action.cli_json_lines and not isinstance(result, PendingApproval):
        for item in data[action.cli_json_lines]:
            print(terminal_safe(json.dumps(item, ensure_ascii=False)))
    elif (view := insight_view(action.name, data, STATE.output_format)) is not None:
        print(view)
    else:
        print(render(data, STATE.output_format, wide=STATE.wide))
    code = _exit_code_for(action, raw, result)
    if code:
        raise typer.Exit(code)


FOLLOW_OPTION = inspect.Parameter(
    "follow",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[
        bool, typer.Option("--follow", help="Keep printing new lines until the job ends.")
    ],
)


def _command_for(action: Action) -> Any:
    def command(**values: Any) -> None:
        if values.pop("follow", False):
            follow_logs(action, values)
        else:
            run_action(action, values)

    parameters = [
        _parameter(action, name, info) for name, info in action.input_model.model_fields.items()
    ]
    if action.name == "job:logs":
        parameters.append(FOLLOW_OPTION)
    # Typer reads the signature and annotations; positional arguments first, as on the CLI.
    parameters.sort(key=lambda p: p.default is not inspect.Parameter.empty)
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = with_examples(
        cli_words(action.description, action.input_model.model_fields), action.name
    )
    return command


RESOURCE_HELP = {
    "approval": "Approval tickets: list, show, approve (executes once), reject, cancel.",
    "audit": "The hash-chained audit log: list, export, head, verify.",
    "aws": "The AWS backend: init (create tables), doctor (check what is missing).",
    "policy": "The policy in force: check one call, explain an actor's permissions.",
    "error": "Classify errors, analyze failed sessions, see what was learned.",
    "events": "The feed of session and ticket status changes (tail, --follow).",
    "insight": "Insights from run history: list, show (with a chart), apply, dismiss.",
    "job": "Jobs of a session: list, describe, logs, update-config, rerun, mark.",
    "pipeline": "Pipelines: validate, register, list, describe, run, stats, cost, update-config.",
    "notify": "Notifications: test (send one message to each configured webhook).",
    "recovery": "Recovery plans: suggest, execute.",
    "session": "Sessions (runs): list, describe, watch, cancel, rerun.",
}
COMPLETION_VARIABLE = "_BUNSUI_COMPLETE"
GLOBAL_OPTIONS_WITH_VALUES = {"--format", "--home", "--actor", "--policy", "--backend"}
GLOBAL_FLAGS = {"--read-only", "--wide"}


def _resource_index(argv: list[str]) -> int | None:
    """Where the resource is named on the command line, skipping global options."""
    index = 0
    while index < len(argv):
        word = argv[index]
        if word in GLOBAL_OPTIONS_WITH_VALUES:
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            return index
    return None


def requested_command(argv: list[str]) -> tuple[str | None, str | None]:
    """The resource and the verb named on the command line, skipping global options."""
    index = _resource_index(argv)
    if index is None:
        return None, None
    rest = argv[index + 1 :]
    verb = _resource_index(rest)
    return argv[index], None if verb is None else rest[verb]


def _own_options(root: Any, argv: list[str], start: int) -> dict[str, bool]:
    """The options of the command named at `start` (resource, then verb): whether each takes
    a value. A command's own `--actor` (a filter) is never mistaken for the global one."""
    options: dict[str, bool] = {}
    command = root
    for word in argv[start : start + 2]:
        command = getattr(command, "commands", {}).get(word)
        if command is None:
            break
        for param in command.params:
            if param.param_type_name == "option":
                for name in [*param.opts, *param.secondary_opts]:
                    options[name] = not param.is_flag
    return options


def hoist_global_options(argv: list[str], root: Any) -> list[str]:
    """Global options given after the command move in front of it, as if typed there."""
    start = _resource_index(argv)
    if start is None:
        return argv
    own = _own_options(root, argv, start)
    front, rest = list(argv[:start]), []
    index = start
    while index < len(argv):
        word = argv[index]
        name = word.split("=", 1)[0]
        if word == "--":
            rest.extend(argv[index:])
            break
        if name in own:
            width = 2 if own[name] and "=" not in word else 1
            rest.extend(argv[index : index + width])
            index += width
        elif name in GLOBAL_OPTIONS_WITH_VALUES or name in GLOBAL_FLAGS:
            width = 2 if name in GLOBAL_OPTIONS_WITH_VALUES and "=" not in word else 1
            front.extend(argv[index : index + width])
            index += width
        else:
            rest.append(word)
            index += 1
    return front + rest


def build_commands(resource: str | None, verb: str | None = None) -> None:
    """Every resource group, with commands generated for the requested resource only, and
    of it only the named command when it exists: a command pays for loading its own
    action's module, not everyone's (a mistyped verb gets them all, for suggestions)."""
    for name in sorted(RESOURCE_MODULES):
        group = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help=RESOURCE_HELP[name])
        app.add_typer(group, name=name)
        if name != resource:
            continue
        named = f"{name}:{verb}"
        single = named in ACTION_NAMES or named in OWN_COMMANDS
        actions = [REGISTRY.get(named)] if single else REGISTRY.of_resource(name)
        for action in actions:
            if action is not None and action.name not in OWN_COMMANDS:
                group.command(action.verb, short_help=action.title)(_command_for(action))
        for command, (function, title) in OWN_COMMANDS.items():
            own_resource, _, own_verb = command.partition(":")
            if own_resource == name and (command == named or not single):
                text = with_examples(inspect.cleandoc(function.__doc__ or ""), command)
                group.command(own_verb, short_help=title, help=text)(function)


def tail_events(
    after_seq: Annotated[
        int | None, typer.Option(help="Resume after this seq (a previous event's seq).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Most events per read.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", help="Keep printing new events.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between reads when following.")] = 1.0,
) -> None:
    """Session, ticket and claim status changes, one JSON object per line, oldest first.
    With --follow, keeps printing as they happen; pass the last seq as --after-seq to
    resume."""
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
    session_id: Annotated[
        str, typer.Argument(metavar="SESSION_ID", help="Session id (ses-...).", show_default=False)
    ],
    interval: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds between checks.")
    ] = 1.0,
) -> None:
    """Follow a session until it ends, then print it; the exit code is its outcome
    (0 completed, 10 failed, 11 timeout, 12 cancelled). On a terminal, a live view of its
    jobs (status, duration, peak memory against the limit) is redrawn meanwhile."""
    gateway = STATE.gateway
    pause = max(0.1, interval)

    def describe() -> dict[str, Any]:
        detail = gateway.invoke(STATE.actor, "session:describe", {"session_id": session_id})
        return detail.model_dump(mode="json")

    def read() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        jobs = gateway.invoke(STATE.actor, "job:list", {"session_id": session_id})
        return describe(), jobs.model_dump(mode="json")["jobs"]

    def is_over(session: dict[str, Any]) -> bool:
        return SessionStatus(session["status"]).is_terminal

    if on_terminal():
        watch_live(read, pause, is_over)
    while not is_over(data := describe()):
        time.sleep(pause)
    print(render(data, STATE.output_format, wide=STATE.wide))
    raise typer.Exit(SESSION_EXIT_CODES[SessionStatus(data["status"])])


FOLLOW_TAIL_LINES = 1000
"""Lines read per poll when following: more than a job writes between two polls."""


def follow_logs(action: Action, values: dict[str, Any], interval: float = 1.0) -> None:
    """`job logs --follow`: print each new line of the job's logs until the job ends."""
    gateway = STATE.gateway
    request = {**raw_arguments(action, values), "tail_lines": FOLLOW_TAIL_LINES}
    seen: dict[tuple[str, int, str], list[str]] = {}
    while True:
        status = gateway.invoke(
            STATE.actor,
            "job:describe",
            {"job_id": request["job_id"], "session_id": request["session_id"]},
        ).model_dump(mode="json")["status"]
        page = gateway.invoke(STATE.actor, "job:logs", request).model_dump(mode="json")
        for log in page["logs"]:
            key = (log["operation_id"], log["attempt"], log["stream"])
            current = log["content"]["text"].splitlines()
            for line in new_lines(seen.get(key, []), current):
                print(f"{log['operation_id']} {log['stream']} | {line}", flush=True)
            seen[key] = current
        if status not in {"pending", "running"}:
            return
        time.sleep(interval)


OWN_COMMANDS: dict[str, tuple[Any, str]] = {
    "events:tail": (tail_events, "Print status changes as JSON lines"),
    "session:watch": (watch, "Follow a session until it ends"),
}
"""Commands written by hand rather than generated from an action: (function, title)."""


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
            # Click words a near miss two ways; say it one way, as for commands.
            "message": re.sub(
                r" \(Possible options: (.+)\)$", r". Did you mean \1?", exc.format_message()
            ),
            "details": {"usage": ctx.get_usage() if ctx is not None else ""},
        },
        STATE.output_format,
    )
    return EXIT_CODES[ErrorCode.INVALID_ARGUMENT]


def _completion_words() -> list[str]:
    """During shell completion, the words typed so far (after `bunsui`): the resource among
    them decides which commands to generate, as it does when the command runs."""
    if COMPLETION_VARIABLE not in os.environ:
        return []
    typed = os.environ.get("COMP_WORDS") or os.environ.get("_TYPER_COMPLETE_ARGS", "")
    return typed.split()[1:]


def main(argv: list[str] | None = None) -> int:
    """Entry point: every failure becomes a coded error and a documented exit code."""
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught below
    except BrokenPipeError:
        pass
    except SystemExit:
        # click ends a command whose output met a closed pipe with a bare exit 1
        if not _reader_gone():
            raise
    else:
        return code
    # Whatever is still buffered has nowhere to go: point stdout at /dev/null so the
    # interpreter's last flush does not print a traceback either.
    os.dup2(os.open(os.devnull, os.O_WRONLY), STDOUT_FD)
    return EXIT_BROKEN_PIPE


STDOUT_FD = 1


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader closed it (poll reports an error on it)."""
    poller = select.poll()
    poller.register(STDOUT_FD, select.POLLOUT)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _main(arguments: list[str]) -> int:
    os.umask(PRIVATE_UMASK)
    build_commands(*requested_command(arguments or _completion_words()))
    command = typer.main.get_command(app)
    plain_arguments(command)
    arguments = hoist_global_options(arguments, command)
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
