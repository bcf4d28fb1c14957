"""How a process learns it runs inside a job, each mark on its own, from a real job."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bunsui_core.config import EngineSettings, Settings
from bunsui_core.engine.cgroups import discover
from bunsui_core.engine.job_identity import enclosing_job
from bunsui_core.engine.jobshim import argv_prefix, is_shim_command
from bunsui_core.engine.local import LocalEngine
from bunsui_core.store.sqlite import SqliteStore
from tests.conftest import command_job, pipeline_data, queue_session

# Scrub the run variables first, as a hostile job would, then ask each mark separately.
PROBE = (
    "import json, os, pathlib\n"
    "for name in [n for n in os.environ if n.startswith('BUNSUI_') and n != 'BUNSUI_WORKDIR']:\n"
    "    del os.environ[name]\n"
    "from bunsui_core.engine import job_identity as j, job_marks as m\n"
    "found = j._by_environment()\n"
    "marks = {\n"
    "    '_by_environment': found and found.evidence,\n"
    "    '_by_cgroup': (m.by_cgroup(None) or [None])[0],\n"
    "    '_by_process_tree': (m.by_process_tree(os.getpid(), False) or [None])[0],\n"
    "}\n"
    "out = pathlib.Path(os.environ['BUNSUI_WORKDIR'], 'marks.json')\n"
    "out.write_text(json.dumps(marks))\n"
)


def _marks(tmp_path: Path, enforcement: str) -> dict[str, str | None]:
    settings = Settings(
        home=tmp_path / "home", engine=EngineSettings(memory_enforcement=enforcement)
    )
    store = SqliteStore(settings.database_path)
    job = command_job("probe", "pass")
    job["operations"][0]["config"]["parameters"]["command"] = [sys.executable, "-c", PROBE]
    session = queue_session(store, pipeline_data(job))
    LocalEngine(store, settings, poll_seconds=0.05).run(session.session_id)
    [job_run] = store.list_job_runs(session.session_id)
    store.close()
    assert job_run.status == "completed", job_run
    return json.loads((Path(job_run.workdir) / "marks.json").read_text())


@pytest.mark.usefixtures("job_shim")
def test_a_job_without_its_variables_is_still_found_by_its_process_tree(tmp_path):
    """With the BUNSUI_* variables deleted and no cgroup, the shim in the ancestry tells."""
    marks = _marks(tmp_path, "watchdog")
    assert marks == {
        "_by_environment": None,
        "_by_cgroup": None,
        "_by_process_tree": "process tree",
    }


@pytest.mark.usefixtures("job_shim")
def test_a_job_in_a_cgroup_is_found_by_it(tmp_path):
    """Where jobs get a cgroup, membership alone is enough (it survives a killed shim)."""
    if discover() is None:
        pytest.skip("this host gives bunsui no cgroup to put jobs in")
    assert _marks(tmp_path, "auto")["_by_cgroup"] == "cgroup"


def test_this_test_process_is_not_inside_a_job():
    """The launcher itself (a terminal, a test run) is not a job: humans act as humans."""
    assert enclosing_job() is None


def test_a_shim_is_known_by_its_file_whichever_install_started_it():
    """The runner starts the shim as a file; another install's path, or the older `-m`
    form of a runner still running, names a shim all the same; a plain Python does not."""
    assert is_shim_command(argv_prefix())
    other_install = "/opt/venv/lib/python3.13/site-packages/bunsui_core/engine/jobshim.py"
    assert is_shim_command(["/opt/venv/bin/python", "-I", "-S", other_install, "--status-fd"])
    assert is_shim_command([sys.executable, "-I", "-m", "bunsui_core.engine.jobshim", "--"])
    assert not is_shim_command([sys.executable, "-c", "pass"])
    assert not is_shim_command([])
