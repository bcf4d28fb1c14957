"""The closed vocabularies of diagnosis: failure categories and remediation actions.

Plain enums in their own module, so code that only names an action (the engine recording
an outcome) does not load the catalog.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """Where a failure comes from; the flowchart branches on it."""

    RESOURCE = "RESOURCE"
    NETWORK = "NETWORK"
    PERMISSION = "PERMISSION"
    APPLICATION = "APPLICATION"
    TIMEOUT = "TIMEOUT"
    THROTTLING = "THROTTLING"
    DATA = "DATA"
    CONFIGURATION = "CONFIGURATION"
    DEPENDENCY = "DEPENDENCY"
    UNKNOWN = "UNKNOWN"

    @property
    def never_transient(self) -> bool:
        """A missing module, file, image or permission does not fix itself on a retry."""
        return self in {Category.DEPENDENCY, Category.PERMISSION}


class RecoveryAction(StrEnum):
    """The one vocabulary of remediations, shared by catalog, plans and learning."""

    RETRY = "retry"
    RETRY_WITH_BACKOFF = "retry_with_backoff"
    INCREASE_MEMORY = "increase_memory"
    INCREASE_TIMEOUT = "increase_timeout"
    RETRY_WITH_SMALLER_BATCH = "retry_with_smaller_batch"
    FIX_PERMISSIONS = "fix_permissions"
    FIX_CONFIGURATION = "fix_configuration"
    FIX_CODE_OR_DATA = "fix_code_or_data"
    ESCALATE = "escalate"

    @property
    def retries(self) -> bool:
        """Run the same thing again (at once or after a backoff): the advice for a transient
        failure."""
        return self in {RecoveryAction.RETRY, RecoveryAction.RETRY_WITH_BACKOFF}

    @property
    def needs_human(self) -> bool:
        """Fixes only a person can make (code, data, IAM, config outside bunsui)."""
        return self in {
            RecoveryAction.FIX_PERMISSIONS,
            RecoveryAction.FIX_CONFIGURATION,
            RecoveryAction.FIX_CODE_OR_DATA,
            RecoveryAction.ESCALATE,
        }


class Layer(StrEnum):
    """Which recognition layer decided a classification (each is measured on its own)."""

    RUN_FACTS = "run_facts"
    TAXONOMY = "taxonomy"
    CATALOG = "catalog"
    MODEL = "model"
    LEARNED_TEMPLATE = "learned_template"
    NONE = "none"
