"""Project directories (bunsui.yaml + jobs/*.yaml) load as pipelines, with located problems."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bunsui_core.errors import PipelineInvalidError
from bunsui_core.model.pipeline import OperationType, content_hash
from bunsui_core.model.pipeline_loader import parse_pipeline_text
from bunsui_core.model.project_loader import load_definition, load_project

SAMPLE = Path(__file__).resolve().parents[2] / "projects" / "sample_project"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of upstream's sample project to edit."""
    return Path(shutil.copytree(SAMPLE, tmp_path / "sample_project"))


def problems(root: Path) -> list[dict[str, str]]:
    with pytest.raises(PipelineInvalidError) as caught:
        load_project(root)
    return caught.value.details["problems"]


class TestSampleProject:
    def test_upstream_sample_maps_onto_one_job_per_file(self):
        """Each job file becomes a job with one operation of its type, chained by depends_on."""
        pipeline = load_project(SAMPLE)
        assert pipeline.name == "sample-project"
        assert pipeline.version == "1"
        assert pipeline.max_concurrent_jobs == 1
        jobs = {j.job_id: j for j in pipeline.jobs}
        assert sorted(jobs) == ["example_dbt", "example_duckdb_load", "example_python"]
        assert jobs["example_python"].dependencies == ["example_dbt"]
        kinds = {j: job.operations[0].config.operation_type for j, job in jobs.items()}
        assert kinds == {
            "example_dbt": OperationType.DBT,
            "example_duckdb_load": OperationType.DUCKDB_LOAD,
            "example_python": OperationType.PYTHON,
        }
        dbt = jobs["example_dbt"].operations[0].config.parameters
        assert (dbt["command"], dbt["select"], dbt["dbt_dir"]) == ("build", "example", "dbt")
        assert dbt["warehouse"] == ".bunsui/warehouse.duckdb"

    def test_directory_and_its_bunsui_yaml_are_the_same_definition(self):
        """`DIR` and `DIR/bunsui.yaml` load the same pipeline, registered from bunsui.yaml."""
        by_dir = load_definition(SAMPLE)
        by_file = load_definition(SAMPLE / "bunsui.yaml")
        assert by_dir.pipeline == by_file.pipeline
        assert by_dir.source == by_file.source == SAMPLE / "bunsui.yaml"

    def test_retries_become_the_operation_retry_policy(self, project):
        """retries/retry_delay_seconds/timeout_seconds become attempts, wait and timeout."""
        (project / "jobs" / "example_dbt.yaml").write_text(
            "name: example_dbt\ntype: dbt\n"
            "config: {command: build, retries: 2, retry_delay_seconds: 5, timeout_seconds: 90}\n"
        )
        job = next(j for j in load_project(project).jobs if j.job_id == "example_dbt")
        config = job.operations[0].config
        assert config.retry is not None
        assert (config.retry.max_attempts, config.retry.delay_before(3)) == (3, 5.0)
        assert config.timeout_seconds == 90
        assert "retries" not in config.parameters


class TestJobFileLayouts:
    def test_a_jobs_list_a_yaml_list_and_inline_jobs(self, project):
        """A file may hold one job, `jobs:` or a plain list; bunsui.yaml may list jobs inline."""
        for name in ("example_dbt", "example_python", "example_duckdb_load"):
            (project / "jobs" / f"{name}.yaml").unlink()
        (project / "jobs" / "listed.yaml").write_text(
            "jobs:\n  - {name: a, type: python, config: {callable: sample:main}}\n"
        )
        (project / "jobs" / "plain.yml").write_text(
            "- {name: b, type: python, depends_on: [a], config: {callable: sample:main}}\n"
        )
        with (project / "bunsui.yaml").open("a") as handle:
            handle.write(
                "jobs:\n  - {name: c, type: python, depends_on: [b], config: {callable: m:f}}\n"
            )
        pipeline = load_project(project)
        assert [j.job_id for j in pipeline.jobs] == ["c", "a", "b"]


class TestLocatedProblems:
    def test_unknown_keys_and_types_name_their_file_and_key(self, project):
        """Every problem at once, each with its file and key path."""
        (project / "jobs" / "example_dbt.yaml").write_text(
            "name: example_dbt\ntype: dbt\ncolour: blue\nconfig: {comand: build}\n"
        )
        (project / "jobs" / "example_python.yaml").write_text(
            "name: example_python\ntype: spark\nconfig: {callable: sample:main}\n"
        )
        (project / "jobs" / "more.yaml").write_text(
            "jobs:\n  - {name: x, type: duckdb_load,\n"
            "     config: {path: a.csv, table: t, mode: upsert}}\n"
        )
        found = {(p["file"], p["location"]) for p in problems(project)}
        assert found == {
            ("jobs/example_dbt.yaml", "colour"),
            ("jobs/example_python.yaml", "type"),
            ("jobs/more.yaml", "jobs[0].config.mode"),
        }

    def test_config_keys_of_the_job_type_are_checked(self, project):
        """A typo inside config is located under config."""
        (project / "jobs" / "example_dbt.yaml").write_text(
            "name: example_dbt\ntype: dbt\nconfig: {comand: build}\n"
        )
        assert [(p["file"], p["location"]) for p in problems(project)] == [
            ("jobs/example_dbt.yaml", "config.comand")
        ]

    def test_dependencies_duplicates_and_cycles(self, project):
        """Unknown and self dependencies, duplicate names and cycles are reported."""
        (project / "jobs" / "example_python.yaml").write_text(
            "name: example_python\ntype: python\ndepends_on: [nope, example_python]\n"
            "config: {callable: sample:main}\n"
        )
        (project / "jobs" / "twin.yaml").write_text("name: example_dbt\ntype: dbt\nconfig: {}\n")
        messages = {(p["file"], p["location"], p["message"]) for p in problems(project)}
        assert ("jobs/example_python.yaml", "depends_on[0]", "unknown job 'nope'") in messages
        assert (
            "jobs/example_python.yaml",
            "depends_on[1]",
            "job 'example_python' depends on itself",
        ) in messages
        assert any(f == "jobs/twin.yaml" and "duplicate" in m for f, _, m in messages)

    def test_a_cycle_names_its_jobs(self, project):
        """a -> b -> a is reported as a cycle."""
        (project / "jobs" / "cycle.yaml").write_text(
            "- {name: a, type: python, depends_on: [b], config: {callable: m:f}}\n"
            "- {name: b, type: python, depends_on: [a], config: {callable: m:f}}\n"
        )
        assert any("dependency cycle" in p["message"] for p in problems(project))

    def test_malformed_yaml_in_a_job_file_has_line_and_column(self, project):
        """Broken YAML is a problem of that file, at its line."""
        (project / "jobs" / "example_dbt.yaml").write_text("name: [unclosed\n")
        found = [p for p in problems(project) if p["file"] == "jobs/example_dbt.yaml"]
        assert [p["location"] for p in found] == ["line 2, column 1"]
        assert found[0]["message"].startswith("malformed YAML")

    def test_project_without_jobs(self, tmp_path):
        """A bunsui.yaml without any job says where jobs go."""
        (tmp_path / "bunsui.yaml").write_text("name: empty\n")
        (found,) = problems(tmp_path)
        assert (found["file"], found["location"]) == ("bunsui.yaml", "jobs")

    def test_a_directory_without_bunsui_yaml_is_refused(self, tmp_path):
        """A directory is only a project with its bunsui.yaml."""
        with pytest.raises(PipelineInvalidError, match=r"without bunsui\.yaml"):
            load_definition(tmp_path)

    def test_operation_types_in_a_plain_pipeline_file_are_checked(self):
        """`operation_type: dbt` in a pipeline file has its parameters checked the same way."""
        text = (
            "name: p\njobs:\n  - job_id: t\n    operations:\n      - operation_id: o\n"
            "        config: {operation_type: dbt, parameters: {command: deploy}}\n"
        )
        with pytest.raises(PipelineInvalidError) as caught:
            parse_pipeline_text(text)
        (found,) = caught.value.details["problems"]
        assert found["location"] == "jobs[0].operations[0].config.parameters.command"


class TestVersionHash:
    def test_a_changed_dbt_model_is_a_new_version(self, project):
        """The content hash covers the dbt project's files, not only the YAML."""
        before = content_hash(load_project(project))
        (project / "dbt" / "models" / "example.sql").write_text("select 2 as id, 'two' as label\n")
        assert content_hash(load_project(project)) != before

    def test_build_output_and_location_do_not_change_it(self, project, tmp_path):
        """dbt's target/ and logs/ are not definition; a moved project is the same version."""
        before = content_hash(load_project(project))
        (project / "dbt" / "target").mkdir()
        (project / "dbt" / "target" / "run_results.json").write_text("{}")
        moved = Path(shutil.move(project, tmp_path / "elsewhere"))
        assert content_hash(load_project(moved)) == before


class TestUntrustedProject:
    def test_a_fifo_named_like_a_job_file_is_a_problem_not_a_hang(self, project):
        """Only regular files are read: a FIFO in jobs/ is reported, never opened."""
        os.mkfifo(project / "jobs" / "trap.yaml")
        found = [p for p in problems(project) if p["file"] == "jobs/trap.yaml"]
        assert found
        assert "not a regular file" in found[0]["message"]

    def test_yaml_aliases_in_a_job_file_are_refused(self, project):
        """Anchors and aliases (unbounded expansion) are refused in project files too."""
        (project / "jobs" / "example_dbt.yaml").write_text(
            "name: &n example_dbt\ntype: dbt\ndescription: *n\nconfig: {}\n"
        )
        found = [p for p in problems(project) if p["file"] == "jobs/example_dbt.yaml"]
        assert "anchors and aliases are not allowed" in found[0]["message"]
