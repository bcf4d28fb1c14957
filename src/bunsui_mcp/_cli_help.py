"""Help text in the CLI's own words: metavars, option names instead of field names, examples.

Action descriptions are written once, for agents and people alike, naming input fields
(`from_job`) and tools (`session_describe`); the CLI's help says `--from-job` and
`bunsui session describe` instead, mechanically, so the two can never drift apart.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any, Literal, get_args, get_origin

from pydantic.fields import FieldInfo
from typer.core import TyperArgument

from bunsui_core.actions.command_line import is_flag, is_list, is_mapping_field, option_name
from bunsui_core.actions.registry import ACTION_NAMES
from bunsui_mcp._cli_layout import terminal_width, wrap_command

ARGUMENT_METAVARS = {"pipeline": "FILE_OR_ID", "file": "FILE"}
"""Positional arguments whose name alone would not say what they take."""

PATH_FIELDS = {"file": "PATH", "endpoint_url": "URL"}
"""Text fields that name a file or an address."""

EXAMPLES: dict[str, tuple[str, ...]] = {
    "approval:approve": ("bunsui approval approve tkt-5e6f7a8b9c0d --reason 'checked the diff'",),
    "approval:cancel": ("bunsui approval cancel tkt-5e6f7a8b9c0d",),
    "approval:list": (
        "bunsui approval list --status pending",
        "bunsui approval list --requested-by ai-agent",
    ),
    "approval:reject": ("bunsui approval reject tkt-5e6f7a8b9c0d --reason 'not tonight'",),
    "approval:show": ("bunsui approval show tkt-5e6f7a8b9c0d",),
    "audit:export": ("bunsui audit export > audit.jsonl",),
    "audit:head": ("bunsui audit head",),
    "audit:list": (
        "bunsui audit list --actor ai-agent",
        "bunsui audit list --session-id ses-3f9c1a7b2d4e --after-seq 40",
    ),
    "audit:verify": ("bunsui audit verify", "bunsui audit verify --expect-head 87:31f03b32..."),
    "aws:doctor": ("bunsui --backend aws aws doctor",),
    "aws:init": ("bunsui --backend aws aws init",),
    "error:analyze": ("bunsui error analyze --session-id ses-3f9c1a7b2d4e",),
    "error:classify": (
        "bunsui error classify --message 'Task timed out after 300.00 seconds'",
        "tail -n 20 job.log | bunsui error classify",
    ),
    "error:label": (
        "bunsui error label err-7a7e644d615e --category DATA --action fix_code_or_data "
        "--note 'vendor sends N/A for missing amounts'",
    ),
    "error:learn": (
        "bunsui error learn --error-code AWS_THROTTLING --action retry_with_backoff "
        "--outcome failure --note 'still throttled at 02:00'",
    ),
    "error:resolutions": ("bunsui error resolutions --error-code LOCAL_MEMORY_LIMIT",),
    "events:tail": ("bunsui events tail --follow", "bunsui events tail --after-seq 120"),
    "job:describe": ("bunsui job describe transform --session-id ses-3f9c1a7b2d4e",),
    "job:list": ("bunsui job list --session-id ses-3f9c1a7b2d4e",),
    "job:logs": (
        "bunsui job logs transform --session-id ses-3f9c1a7b2d4e --stream stderr",
        "bunsui job logs transform --session-id ses-3f9c1a7b2d4e --follow",
    ),
    "job:mark": (
        "bunsui job mark load --session-id ses-3f9c1a7b2d4e --status succeeded "
        "--reason 'loaded by hand'",
    ),
    "job:rerun": (
        "bunsui job rerun transform --session-id ses-3f9c1a7b2d4e --skip-successful --wait",
    ),
    "job:update-command": (
        "bunsui job update-command transform --session-id ses-3f9c1a7b2d4e "
        "--command 'python3 transform.py --rows 20000' --reason 'smaller batches'",
        "bunsui job update-command transform --session-id ses-3f9c1a7b2d4e --env LOG_LEVEL=debug",
    ),
    "job:update-config": (
        "bunsui job update-config transform --session-id ses-3f9c1a7b2d4e --memory 320",
        "bunsui job update-config transform --session-id ses-3f9c1a7b2d4e --revert-to 0",
    ),
    "pipeline:describe": ("bunsui pipeline describe nightly-orders-etl --version 1",),
    "pipeline:list": ("bunsui pipeline list",),
    "pipeline:register": ("bunsui pipeline register examples/nightly_etl/pipeline.yaml",),
    "pipeline:run": (
        "bunsui pipeline run examples/nightly_etl/pipeline.yaml --wait",
        "bunsui pipeline run nightly-orders-etl",
    ),
    "pipeline:validate": ("bunsui pipeline validate examples/nightly_etl/pipeline.yaml",),
    "insight:apply": (
        "bunsui insight apply ins-nightly-etl-1a2b3c4d --dry-run",
        "bunsui insight apply ins-nightly-etl-1a2b3c4d",
    ),
    "insight:dismiss": (
        "bunsui insight dismiss ins-nightly-etl-1a2b3c4d --reason 'month-end spike'",
    ),
    "insight:list": (
        "bunsui insight list",
        "bunsui insight list --pipeline nightly-orders-etl --kind cost --min-confidence 0.6",
    ),
    "insight:show": ("bunsui insight show ins-nightly-etl-1a2b3c4d",),
    "notify:test": ("bunsui notify test",),
    "pipeline:cost": ("bunsui pipeline cost nightly-orders-etl",),
    "pipeline:stats": ("bunsui pipeline stats nightly-orders-etl --runs 50",),
    "pipeline:update-config": (
        "bunsui pipeline update-config nightly-orders-etl --job transform --memory 384 --dry-run",
        "bunsui pipeline update-config nightly-orders-etl --revert-to 1",
    ),
    "policy:check": ("bunsui policy check --actor ai-agent --action job:rerun",),
    "policy:explain": ("bunsui policy explain --actor ai-agent",),
    "recovery:execute": (
        "bunsui recovery execute plan-1a2b3c4d5e6f",
        "bunsui recovery execute plan-1a2b3c4d5e6f --no-dry-run",
    ),
    "recovery:suggest": ("bunsui recovery suggest --session-id ses-3f9c1a7b2d4e",),
    "session:cancel": ("bunsui session cancel ses-3f9c1a7b2d4e",),
    "session:claim": ("bunsui session claim ses-3f9c1a7b2d4e --ttl 600 --note 'on it'",),
    "session:claims": ("bunsui session claims", "bunsui session claims --claimed-by ai-agent"),
    "session:escalate": (
        "bunsui session escalate ses-3f9c1a7b2d4e --reason 'needs a schema change'",
    ),
    "session:release": ("bunsui session release ses-3f9c1a7b2d4e",),
    "session:resolve-escalation": ("bunsui session resolve-escalation ses-3f9c1a7b2d4e",),
    "session:describe": ("bunsui session describe ses-3f9c1a7b2d4e",),
    "session:list": (
        "bunsui session list --filter status=failed --filter pipeline_id=etl",
        "bunsui session list --filter created_after=2026-11-01T00:00:00Z --limit 20",
    ),
    "session:rerun": (
        "bunsui session rerun ses-3f9c1a7b2d4e --strategy failed-only --wait",
        "bunsui session rerun ses-3f9c1a7b2d4e --from-job transform",
    ),
    "session:rerun-many": (
        "bunsui session rerun-many --filter status=failed "
        "--filter pipeline_id=nightly-orders-etl --from-failed",
    ),
    "session:sync": ("bunsui --backend aws session sync ses-3f9c1a7b2d4e",),
    "session:watch": ("bunsui session watch ses-3f9c1a7b2d4e",),
}
"""One or two command lines per command, shown at the end of its help."""


def _choices(annotation: Any) -> list[str] | None:
    """The values of an enum or Literal field (inside `X | None` too), else None."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Enum):
            return [str(member.value) for member in candidate]
        if get_origin(candidate) is Literal:
            return [str(value) for value in get_args(candidate)]
    return None


CHOICES_IN_METAVAR = 40
"""Longer choice lists go into the help text, so the option column stays readable."""


def metavar(name: str, info: FieldInfo) -> str:
    """What an option takes, as CLIs say it: INTEGER, PATH, KEY=VALUE, [a|b|c], TEXT."""
    choices = _choices(info.annotation)
    if choices:
        listed = "|".join(choices)
        return f"[{listed}]" if len(listed) <= CHOICES_IN_METAVAR else "CHOICE"
    if is_mapping_field(info):
        return "KEY=VALUE"
    kinds = {info.annotation, *get_args(info.annotation)}
    by_kind = {int: "INTEGER", float: "NUMBER"}
    found = next((label for kind, label in by_kind.items() if kind in kinds), None)
    return found or PATH_FIELDS.get(name, "TEXT")


def argument_metavar(name: str) -> str:
    """A positional argument as usage lines show it: SESSION_ID, FILE_OR_ID."""
    return ARGUMENT_METAVARS.get(name, name.upper())


def option_help(name: str, info: FieldInfo, fields: dict[str, FieldInfo]) -> str:
    """An option's help: its description in CLI words, long choice lists, its default."""
    text = cli_words(info.description or "", fields)
    choices = _choices(info.annotation)
    if choices and metavar(name, info) == "CHOICE":
        text += " One of: " + ", ".join(choices) + "."
    no_default = info.is_required() or info.default_factory is not None or info.default is None
    if not (no_default or is_flag(info) or is_list(info)):
        value = info.default
        text += f"  [default: {value.value if isinstance(value, Enum) else value}]"
    return text.strip()


_TOOL = re.compile(r"\b([a-z]+)_([a-z_]+)\b")


def cli_words(text: str, fields: dict[str, FieldInfo]) -> str:
    """A description for agents in the CLI's words: fields as options, tools as commands."""
    # Single words (`filter`, `wait`) read as prose; only snake_case names are fields.
    for name in sorted((f for f in fields if "_" in f), key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(name)}(?![\w-])", option_name(name), text)

    def command(match: re.Match[str]) -> str:
        resource, verb = match[1], match[2].replace("_", "-")
        if f"{resource}:{verb}" in ACTION_NAMES:
            return f"bunsui {resource} {verb}"
        return match[0]

    return _TOOL.sub(command, text)


class PlainArgument(TyperArgument):
    """A positional argument shown as gh and git show theirs: `SESSION_ID`, no `<str>`."""

    def _usage_display_name(self) -> str:
        return str(self.display_name_raw) if self.required else f"[{self.display_name_raw}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


def plain_arguments(command: Any) -> None:
    """Every positional argument of a command tree shown plainly (see PlainArgument)."""
    for param in getattr(command, "params", []):
        if isinstance(param, TyperArgument):
            param.__class__ = PlainArgument
    for child in getattr(command, "commands", {}).values():
        plain_arguments(child)


def with_examples(text: str, name: str) -> str:
    """Help text ending with its examples, kept verbatim (`\\b` stops click rewrapping)."""
    examples = EXAMPLES.get(name, ())
    if not examples:
        return text
    width = terminal_width() - 4
    lines = "\n".join(f"  {line}" for e in examples for line in wrap_command(e, width))
    return f"{text}\n\n\b\nExamples:\n{lines}"
