"""Notifications: webhook messages about tickets and sessions, sent off the action's path."""

from __future__ import annotations

from bunsui_core.notify.delivery import Courier, Delivery, DeliveryError, post_json, send_once
from bunsui_core.notify.notices import Notice, build_notice, notice_kind, ticket_path
from bunsui_core.notify.notifier import Notifier
from bunsui_core.notify.settings import (
    NoticeKind,
    NotificationSettings,
    WebhookFormat,
    WebhookTarget,
    host_of,
)

__all__ = [
    "Courier",
    "Delivery",
    "DeliveryError",
    "Notice",
    "NoticeKind",
    "NotificationSettings",
    "Notifier",
    "WebhookFormat",
    "WebhookTarget",
    "build_notice",
    "host_of",
    "notice_kind",
    "post_json",
    "send_once",
    "ticket_path",
]
