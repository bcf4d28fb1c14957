"""Engine tests that pin what a job's shim does run under both shims: the native one (where
a C compiler exists) and the Python one the engine falls back to."""

from __future__ import annotations

import shutil

import pytest

from bunsui_core.engine.native_shim import SWITCH, NativeShim, load


@pytest.fixture(params=["native", "python"])
def job_shim(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> NativeShim | None:
    """The shim jobs run under in this test (the engine's choice follows BUNSUI_NATIVE_SHIM);
    for `run_process`, what to pass as `shims` (None: a Python shim of the attempt's own)."""
    if request.param == "python":
        monkeypatch.setenv(SWITCH, "0")
        return None
    monkeypatch.delenv(SWITCH, raising=False)
    if shutil.which("cc") is None:
        pytest.skip("no C compiler here: the engine runs the Python shim")
    shim = load()
    assert shim is not None, "cc exists, yet the native shim was not built"
    return shim
