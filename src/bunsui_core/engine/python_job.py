"""Child-process entry point of a `python` job: import `module:function` and call it.

Runs as `python -m bunsui_core.engine.python_job` in the job's own process (so the engine's
limits, timeout and kill apply), with the project directory first on `sys.path`. An async
callable is awaited; an exception ends the process with its traceback on stderr and exit 1.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
from typing import Any


def resolve(target: str) -> Any:
    """The object `module:attr.attr` names."""
    module_name, _, attribute = target.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def main() -> int:
    """Call the job's callable with its kwargs; its return value is printed as JSON."""
    params = json.loads(os.environ.get("BUNSUI_PARAMS", "{}"))
    sys.path.insert(0, os.environ.get("BUNSUI_PROJECT_DIR") or os.getcwd())
    function = resolve(params["callable"])
    result = function(**params.get("kwargs", {}))
    if inspect.isawaitable(result):
        result = asyncio.run(_awaited(result))
    if result is not None:
        print(json.dumps(result, default=str))
    return 0


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


if __name__ == "__main__":
    sys.exit(main())
