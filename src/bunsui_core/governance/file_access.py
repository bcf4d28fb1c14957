"""Which files an agent may name: pipeline files under the configured pipeline roots only.

A path is judged by where it really leads (symlinks and `..` resolved), never by how it is
spelt, and a path outside every root is refused whether or not it exists, so the answer
tells an agent nothing about the rest of the file system. Relative paths resolve against
the roots, never against the server's working directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from bunsui_core.errors import InvalidArgumentError, PermissionDeniedError
from bunsui_core.model.path_kind import PathKind, kind_of

PIPELINE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _denied(value: str, roots: Sequence[Path]) -> PermissionDeniedError:
    where = ", ".join(str(r) for r in roots) or "none configured"
    return PermissionDeniedError(
        f"{value!r} is not under a pipeline root ({where}); agents may name only pipeline "
        "files there (a human sets them with `bunsui-mcp --pipelines-dir DIR` or "
        "`pipeline_roots` in config.yaml)",
        details={"path": value, "pipeline_roots": [str(r) for r in roots]},
    )


def confine(value: str, roots: Sequence[Path], *, may_be_id: bool = False) -> str:
    """The real absolute path of a file an agent names, if it lies under a pipeline root;
    PERMISSION_DENIED otherwise.

    With `may_be_id`, a value shaped like a pipeline id that names no file under a root is
    returned unchanged (the caller looks the id up); it still may not name a file in the
    working directory.
    """
    if "\x00" in value:
        raise InvalidArgumentError(
            "a path cannot contain a NUL byte", details={"errors": [{"message": "NUL in path"}]}
        )
    try:
        candidates = [Path(value)] if os.path.isabs(value) else [root / value for root in roots]
        real = [Path(os.path.realpath(c)) for c in candidates]
    except (ValueError, OSError):  # a loop of symlinks, a name too long
        raise _denied(value, roots) from None
    existing = [p for p in real if kind_of(p) is not PathKind.MISSING]
    if (
        may_be_id
        and not existing
        and PIPELINE_ID.match(value)
        and kind_of(Path(value)) is PathKind.MISSING
    ):
        return value
    chosen = existing[0] if existing else real[0] if real else None
    if chosen is None or not _under(chosen, roots):
        raise _denied(value, roots)
    return str(chosen)
