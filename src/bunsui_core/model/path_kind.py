"""What a path someone named leads to, without letting the file system's refusals escape.

Agents and users name pipeline files and project directories; a name no file system can hold
(a component over 255 bytes), a loop of symlinks or a directory that may not be searched
makes `Path.is_dir()`/`exists()` raise OSError. Such a name leads to nothing, like a missing
file, and the caller's usual "not found" or "cannot read" answer applies.
"""

from __future__ import annotations

import stat
from enum import StrEnum
from pathlib import Path


class PathKind(StrEnum):
    """What a named path leads to."""

    DIRECTORY = "directory"
    FILE = "file"
    OTHER = "other"
    """A FIFO, a device or a socket: something is there, but not a file to read."""
    MISSING = "missing"


def kind_of(path: Path) -> PathKind:
    """What `path` leads to (symlinks followed); MISSING where the file system refuses to
    look, as well as where nothing is."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):  # ValueError: a NUL byte in the name
        return PathKind.MISSING
    if stat.S_ISDIR(mode):
        return PathKind.DIRECTORY
    return PathKind.FILE if stat.S_ISREG(mode) else PathKind.OTHER
