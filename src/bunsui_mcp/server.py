"""`bunsui-mcp`: the MCP server entry point.

The server (tools, resources, prompts over stdio and HTTP) is built on the action registry
in the MCP issue; until then the entry point says so instead of pretending to serve.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Exit with a clear message: no MCP tools are served by this version yet."""
    print(
        "bunsui-mcp: the MCP server is not part of this version yet; use the `bunsui` CLI.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
