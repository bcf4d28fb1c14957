"""Notification actions: `notify:test` sends one message to each configured webhook."""

from __future__ import annotations

from pydantic import Field

from bunsui_core.actions._models import ActionInput, ActionOutput
from bunsui_core.actions.context import ActionContext
from bunsui_core.actions.registry import REGISTRY, Effect
from bunsui_core.errors import InvalidArgumentError, NotFoundError
from bunsui_core.model.session import utc_now
from bunsui_core.notify import Notice, NoticeKind, NotificationSettings, post_json, send_once


class NotifyTestInput(ActionInput):
    """Which targets to try."""

    target: str | None = Field(
        None, max_length=100, description="Only the target with this name (default: all)."
    )


class TargetResult(ActionOutput):
    """How the test message fared at one target."""

    target: str = Field(description="The target's name.")
    host: str = Field(description="scheme://host of its URL (the rest may be a secret).")
    delivered: bool = Field(description="The receiver answered 2xx.")
    status: int | None = Field(description="HTTP status, when the receiver answered.")
    error: str | None = Field(description="Why it failed, when it did.")


class NotifyTestOutput(ActionOutput):
    """One result per target tried."""

    results: list[TargetResult] = Field(description="Per target, in config order.")


@REGISTRY.define(
    "notify:test",
    title="Send a test notification",
    input_model=NotifyTestInput,
    output_model=NotifyTestOutput,
    effect=Effect.WRITE,
)
def test(ctx: ActionContext, args: NotifyTestInput) -> NotifyTestOutput:
    """Send one test message to each webhook under `notifications:` in the home's
    config.yaml (or only to `target`), once, and report what each answered. The running
    server sends the real notices in the background; this checks the wiring."""
    settings = NotificationSettings.of(ctx.settings)
    targets = [t for t in settings.targets if args.target in (None, t.name)]
    if not settings.targets:
        raise InvalidArgumentError(
            f"no notification targets: add `notifications: targets:` to "
            f"{ctx.settings.home / 'config.yaml'}"
        )
    if not targets:
        raise NotFoundError(
            f"no notification target named {args.target!r}",
            details={"known": [t.name for t in settings.targets]},
        )
    link = settings.link("/approvals")
    text = f"bunsui test notification sent by {ctx.actor}"
    notice = Notice(
        kind=NoticeKind.TEST,
        id="test",
        status="test",
        at=utc_now(),
        text=f"{text} {link}" if link else text,
        link=link,
        ticket=None,
    )
    results = [
        TargetResult.model_validate(
            send_once(target, notice, settings.timeout_seconds, post_json), from_attributes=True
        )
        for target in targets
    ]
    return NotifyTestOutput(results=results)
