"""The detached runner: `python -m bunsui_core.engine.runner --home DIR SESSION_ID`.

`bunsui pipeline run` without `--wait` starts this in its own process session and returns at
once; its output goes to `sessions/<id>/runner.log`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading

from bunsui_core.config import Settings
from bunsui_core.engine.local import LocalEngine
from bunsui_core.errors import BunsuiError
from bunsui_core.store.sqlite import SqliteStore


def spawn_detached(settings: Settings, session_id: str) -> int:
    """Start a runner process for the session that outlives the caller; returns its pid."""
    log_path = settings.session_dir(session_id) / "runner.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
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
    settings = Settings.resolve(args.home)
    store = SqliteStore(settings.database_path)
    try:
        session = LocalEngine(store, settings, progress=lambda m: print(m, flush=True)).run(
            args.session_id
        )
    except BunsuiError as exc:
        print(f"runner error {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"session {session.session_id} ended {session.status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
