"""Lazy package exports: `from pkg import Name` works, but nothing loads until it is used.

Importing any submodule runs its package's `__init__`; eager re-exports there would make
`bunsui session list` pay for YAML parsing, subprocess machinery and every model.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # the job shim imports this (via engine/__init__) on every job start
    from collections.abc import Callable
    from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` resolving `name` from `exports[name]` (a submodule) on first use."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        import importlib  # noqa: PLC0415 - first use only; see TYPE_CHECKING above

        module = importlib.import_module(f"{package}.{exports[name]}")
        return module if exports[name] == name else getattr(module, name)

    return __getattr__
