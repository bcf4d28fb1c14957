"""What `notifications:` in `$BUNSUI_HOME/config.yaml` may say: webhook targets and events.

```yaml
notifications:
  base_url: https://bunsui.example.com   # links point at {base_url}/approvals/...
  attempts: 5                            # tries per message before it is dropped (logged)
  targets:
    - name: ops
      url: https://hooks.slack.com/services/T000/B000/XXXX
      format: slack                      # {"text": ...}; `json` sends the whole notice
      events: [ticket_created, ticket_decided, ticket_expired, session_failed]
```
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bunsui_core.config import Settings
from bunsui_core.errors import InvalidArgumentError


class NoticeKind(StrEnum):
    """Which happenings a target can be told about."""

    TICKET_CREATED = "ticket_created"
    TICKET_DECIDED = "ticket_decided"
    TICKET_EXPIRED = "ticket_expired"
    SESSION_FAILED = "session_failed"
    SESSION_ESCALATED = "session_escalated"
    TEST = "test"
    """Sent only by `bunsui notify test`, to every target."""


class WebhookFormat(StrEnum):
    """The body a target expects."""

    SLACK = "slack"
    """A Slack-compatible incoming webhook: `{"text": ...}`."""
    JSON = "json"
    """The whole notice as a JSON object (kind, id, status, text, link, ticket)."""


def every_event() -> list[NoticeKind]:
    """What a target hears of when its `events` are not given."""
    return [kind for kind in NoticeKind if kind is not NoticeKind.TEST]


def host_of(url: str) -> str:
    """`scheme://host[:port]` of a webhook URL: all a log line may show (paths and query
    strings of webhook URLs are secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


class WebhookTarget(BaseModel):
    """One receiver of notices."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Shown in logs and tests.")
    url: str = Field(max_length=2000, description="http(s) URL; treated as a secret.")
    format: WebhookFormat = WebhookFormat.JSON
    events: list[NoticeKind] = Field(
        default_factory=every_event,
        description="What this target hears of (default: everything).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            msg = "must be an http:// or https:// URL with a host"
            raise ValueError(msg)
        return url


class NotificationSettings(BaseModel):
    """Where notices go and how hard bunsui tries."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None, max_length=500, description="Links in messages start here (default: the server)."
    )
    targets: list[WebhookTarget] = Field(default_factory=list)
    attempts: int = Field(5, ge=1, le=20, description="Tries per message before it is dropped.")
    backoff_seconds: float = Field(1.0, gt=0, le=300, description="First retry delay; doubles.")
    timeout_seconds: float = Field(5.0, gt=0, le=60, description="Per request.")

    @classmethod
    def of(cls, settings: Settings) -> NotificationSettings:
        """The validated `notifications:` of these settings; bad config is INVALID_ARGUMENT."""
        try:
            return cls.model_validate(settings.notifications)
        except ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(p) for p in err["loc"]),
                    "message": err["msg"],
                }
                for err in exc.errors(include_url=False, include_input=False)
            ]
            raise InvalidArgumentError(
                f"{settings.home / 'config.yaml'}: invalid notifications",
                details={"errors": errors},
            ) from None

    def link(self, path: str, default_base: str | None = None) -> str | None:
        """An absolute link to `path` under the configured (or default) base URL."""
        base = self.base_url or default_base
        return f"{base.rstrip('/')}{path}" if base else None
