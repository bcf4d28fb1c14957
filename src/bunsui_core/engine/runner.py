"""The detached runner: `python -m bunsui_core.engine.runner --home DIR SESSION_ID`.

`bunsui pipeline run` without `--wait` starts this in its own process session and returns at
once; its output goes to `sessions/<id>/runner.log`.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
import threading
from types import FrameType

from bunsui_core.config import Settings
from bunsui_core.engine.local import LocalEngine
from bunsui_core.errors import BunsuiError
from bunsui_core.store.sqlite import SqliteStore


def spawn_detached(settings: Settings, session_id: str) -> int:
    """Start a runner process for the session that outlives the caller; returns its pid."""
    log_path = settings.session_dir(session_id) / "runner.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bunsui_core.engine.runner",
                "--home",
                str(settings.home),
                session_id,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    # A long-lived caller (the MCP server) must still reap it to avoid a zombie.
    threading.Thread(target=proc.wait, daemon=True).start()
    return proc.pid


def main(argv: list[str] | None = None) -> int:
    """Run one session to its end; the exit code says only whether the runner itself worked."""
    parser = argparse.ArgumentParser(prog="bunsui-runner")
    parser.add_argument("--home", required=True)
    parser.add_argument("session_id")
    args = parser.parse_args(argv)
    # What is imported stays until exit: frozen, the collections a run's allocations trigger
    # (and the interpreter's final one) do not scan it again (see bunsui_mcp.cli_main).
    gc.freeze()
    settings = Settings.resolve(args.home)
    store = SqliteStore(settings.database_path)
    engine = LocalEngine(store, settings, progress=lambda m: print(m, flush=True))

    def cancel(_signum: int, _frame: FrameType | None) -> None:
        # A runner told to stop cancels its session: no job may outlive it.
        engine.cancel()

    signal.signal(signal.SIGTERM, cancel)
    try:
        session = engine.run(args.session_id)
    except BunsuiError as exc:
        print(f"runner error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
        gc.freeze()
    print(f"session {session.session_id} ended {session.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
