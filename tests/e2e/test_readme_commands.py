"""Every README command block marked runnable runs as printed, against a fresh home."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"<!-- runnable -->\n```console\n(.*?)```", README, flags=re.S)
EXPECTED_EXIT = re.compile(r"#\s*exit (\d+)")


def script(block: str) -> str:
    """The block's `$ ` lines as one bash script that stops at the first unexpected exit."""
    steps = []
    for number, line in enumerate(block.splitlines(), 1):
        if not line.startswith("$ "):
            continue
        command = line.removeprefix("$ ")
        expected = EXPECTED_EXIT.search(command)
        code = expected[1] if expected else "0"
        steps.append(
            f"{command}\nrc=$?\nif [ $rc -ne {code} ]; then "
            f'echo "block line {number} exited $rc, expected {code}" >&2; exit 99; fi'
        )
    return "\n".join(steps)


def test_the_readme_marks_runnable_blocks():
    """At least the quick start is marked runnable, so this test checks something."""
    assert BLOCKS
    assert all("$ bunsui " in block for block in BLOCKS)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_runnable_block_runs_as_printed(block, tmp_path):
    """Each command exits as the README says (0 unless it says `# exit N`), no traceback."""
    env = {
        **os.environ,
        "BUNSUI_HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("BUNSUI_FORMAT", None)
    result = subprocess.run(
        ["bash", "-c", script(block)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
