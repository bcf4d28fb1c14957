"""The wheel users install: shipped data files, console scripts, lean CLI imports."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bunsui_core.resources import shipped_file

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("bunsui-*.whl")
    return zipfile.ZipFile(built)


class TestWheel:
    def test_policies_and_prompts_ship_inside_the_package(self, wheel):
        """policies/ and prompts/ are packaged under bunsui_core/_data with their content."""
        names = set(wheel.namelist())
        for relative in ("policies/default.yaml", "prompts/system.md"):
            packaged = f"bunsui_core/_data/{relative}"
            assert packaged in names
            assert wheel.read(packaged) == (ROOT / relative).read_bytes()

    def test_insight_prices_and_prompt_ship(self, wheel):
        """The price table insights quote and the review_insights prompt are in the wheel."""
        names = set(wheel.namelist())
        assert "bunsui_core/insights/prices.yaml" in names
        assert "bunsui_core/_data/prompts/review_insights.md" in names

    def test_console_scripts_are_declared(self, wheel):
        """The wheel installs the `bunsui` and `bunsui-mcp` commands."""
        [entry_points] = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
        text = wheel.read(entry_points).decode()
        assert "bunsui = bunsui_mcp.cli_main:main" in text
        assert "bunsui-mcp = bunsui_mcp.server:main" in text


class TestShippedFiles:
    def test_installed_package_finds_its_data(self):
        """The running installation (wheel or checkout) resolves shipped files by name."""
        policy = shipped_file("policies/default.yaml")
        assert "ai_agent:" in policy.read_text()
        assert shipped_file("prompts/system.md").is_file()

    def test_mcp_entry_point_refuses_an_open_bind_without_tokens(self):
        """`bunsui-mcp` is installed; serving HTTP beyond loopback without tokens is refused
        with a coded error on stderr (stdout stays clean for the protocol), no traceback."""
        script = Path(sys.executable).parent / "bunsui-mcp"
        result = subprocess.run(
            [str(script), "--transport", "http", "--host", "0.0.0.0"],  # noqa: S104 - the point
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 2
        assert result.stdout == ""
        assert json.loads(result.stderr)["error"]["code"] == "INVALID_ARGUMENT"
        assert "Traceback" not in result.stderr
