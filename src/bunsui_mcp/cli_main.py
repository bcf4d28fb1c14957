"""The `bunsui` console script: the CLI without the garbage collector's start-up and exit costs.

A CLI call imports a few hundred modules (typer, pydantic, the registry's models), then runs
one command and exits. The cyclic collector pays three times for that heap: full collections
while the imports allocate it, collections during the command that scan it again (a
foreground `pipeline run` allocates per job), and the interpreter's final collection, which
on its own cost 150-200 ms. Nothing imported is garbage, so the collector is off while
importing and the heap is then frozen (moved out of its reach): it still collects what the
command itself leaves behind, and exit runs as before (atexit, flushes) minus that scan.
"""

from __future__ import annotations

import gc


def main() -> int:
    """`bunsui`: `bunsui_mcp.cli.main` with the imported heap frozen."""
    gc.disable()
    try:
        from bunsui_mcp.cli import main as cli  # noqa: PLC0415 - imported with the collector off
    finally:
        gc.freeze()
        gc.enable()
    try:
        return cli()
    finally:
        gc.freeze()  # the interpreter's final collection would scan all of it once more
