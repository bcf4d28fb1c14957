"""The `bunsui` console script: the CLI server's fast path first, else the CLI in-process.

A call first offers itself to this user's warm CLI server (`cli_client`), which runs it in a
forked copy of an interpreter that has already imported everything. Where there is none
(the first call, BUNSUI_CLI_SERVER=0, a call the server refuses), the call runs here.

In-process, the cyclic garbage collector would pay three times for the heap the imports
build: full collections while the imports allocate it, collections during the command that
scan it again (a foreground `pipeline run` allocates per job), and the interpreter's final
collection, which on its own cost 150-200 ms. Nothing imported is garbage, so the collector
is off while importing and the heap is then frozen (moved out of its reach): it still
collects what the command itself leaves behind, and exit runs as before (atexit, flushes)
minus that scan. The server does the same once for all its commands.
"""

from __future__ import annotations

import gc
import sys


def main() -> int:
    """`bunsui`: served by the CLI server when one runs, else `run_in_process`."""
    from bunsui_mcp import cli_client  # noqa: PLC0415 - the standard library only

    code = cli_client.run_remote(sys.argv)
    if code is not None:
        return code
    try:
        return run_in_process(sys.argv[1:])
    finally:
        cli_client.start_missing_server()


def import_cli() -> None:
    """Import the CLI with the collector off, then freeze what was imported."""
    gc.disable()
    try:
        import bunsui_mcp.cli  # noqa: F401, PLC0415 - imported with the collector off
    finally:
        gc.freeze()
        gc.enable()


def run_in_process(arguments: list[str]) -> int:
    """`bunsui_mcp.cli.main` with the imported heap frozen."""
    import_cli()
    from bunsui_mcp.cli import main as cli  # noqa: PLC0415 - imported just above

    try:
        return cli(arguments)
    finally:
        gc.freeze()  # the interpreter's final collection would scan all of it once more
