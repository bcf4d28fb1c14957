"""Overrides layered on a pipeline: what a rerun really runs."""

from __future__ import annotations

from bunsui_core.engine.stepfunctions.asl import ECS_RESERVED_PARAMETERS
from bunsui_core.model.overrides import SPECIAL_PARAMETERS, apply_overrides, merge_overrides
from bunsui_core.model.pipeline import RESERVED_COMMAND_PARAMETERS
from bunsui_core.model.pipeline_loader import validate_pipeline_data
from bunsui_core.model.session import JobOverride
from tests.conftest import command_job, pipeline_data

PIPELINE = validate_pipeline_data(
    pipeline_data(command_job("a", "pass", parameters={"memory": 64, "env": {"MODE": "x"}}))
)


def config_of(overrides: dict[str, JobOverride]) -> dict[str, object]:
    return apply_overrides(PIPELINE, overrides).job("a").operations[0].config.parameters


class TestSpecialParameters:
    def test_every_key_an_engine_treats_specially_is_reserved(self):
        """The local engine's and the ECS compiler's special keys are all refused as --param."""
        assert RESERVED_COMMAND_PARAMETERS <= SPECIAL_PARAMETERS
        assert ECS_RESERVED_PARAMETERS <= SPECIAL_PARAMETERS

    def test_a_stored_override_cannot_set_command_env_or_memory_through_parameters(self):
        """Only the override's own fields change argv, environment and memory: the same keys
        smuggled in `parameters` (an override stored before the check) are ignored."""
        smuggled = JobOverride(parameters={"command": ["sh"], "env": {"X": "1"}, "memory": 1})
        parameters = config_of({"a": smuggled})
        assert parameters["command"][1:] == ["-c", "pass"]
        assert (parameters["env"], parameters["memory"]) == ({"MODE": "x"}, 64)

    def test_a_stored_override_cannot_pass_launcher_variables_through(self):
        """No override field sets `pass_env` (only the pipeline file does): one smuggled in
        `parameters` (stored before the check, or copied into a rerun) passes nothing."""
        smuggled = JobOverride(parameters={"pass_env": ["AWS_*", "BUNSUI_HOME"], "mode": "x"})
        effective = apply_overrides(PIPELINE, {"a": smuggled}).job("a").operations[0].config
        assert effective.pass_env == []
        assert "pass_env" not in effective.parameters
        assert effective.process_parameters()["mode"] == "x"

    def test_command_and_env_fields_apply_and_merge(self):
        """update-command's argv replaces the operation's; its env is layered over the
        pipeline's, and a later version's values win key by key."""
        first = JobOverride(command={"a-op": ["python", "new.py"]}, env={"A": "1"})
        later = JobOverride(env={"A": "2", "B": "3"}, memory_mb=128)
        parameters = config_of({"a": merge_overrides(first, later)})
        assert parameters["command"] == ["python", "new.py"]
        assert parameters["env"] == {"MODE": "x", "A": "2", "B": "3"}
        assert parameters["memory"] == 128
