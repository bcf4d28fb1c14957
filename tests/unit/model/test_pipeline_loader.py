"""Pipeline YAML validation: every problem at once with its location, hashing and ids."""

import json
import re
import textwrap
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bunsui_core.errors import ErrorCode, InvalidArgumentError, PipelineInvalidError
from bunsui_core.model.location import location
from bunsui_core.model.pipeline import OperationType, Pipeline, canonical_json, content_hash
from bunsui_core.model.pipeline_loader import (
    MAX_PIPELINE_BYTES,
    load_pipeline_file,
    parse_pipeline_text,
    pipeline_id_for,
    validate_pipeline_data,
)

AWS_PIPELINE = textwrap.dedent("""\
    name: customer-analytics
    description: Nightly analytics on AWS
    version: "1.0.0"
    timeout_seconds: 3600
    max_concurrent_jobs: 2
    tags:
      team: analytics
      cost-center: "1234"
    metadata:
      owner: someone@example.com
      sla_minutes: 90
    jobs:
      - job_id: ingest
        name: Ingest raw events
        description: Pull events into S3
        operations:
          - operation_id: fetch-events
            name: Fetch
            config:
              operation_type: lambda
              resource_arn: arn:aws:lambda:us-east-1:123456789012:function:fetch-events
              timeout_seconds: 300
              parameters:
                bucket: raw-events
                prefix: "2024/"
              retry:
                max_attempts: 3
                interval_seconds: 2.0
                backoff_rate: 2.0
                max_delay_seconds: 60.0
        dependencies: []
      - job_id: aggregate
        name: Aggregate
        description: ""
        operations:
          - operation_id: run-task
            name: Aggregate on ECS
            config:
              operation_type: ecs
              resource_arn: arn:aws:ecs:us-east-1:123456789012:task-definition/aggregate:7
              parameters:
                cluster: analytics
                cpu: 1024
        dependencies: [ingest]
""")


def op(op_id: str = "op", **config: Any) -> dict[str, Any]:
    """An operation document; `config` defaults to a valid command operation."""
    return {
        "operation_id": op_id,
        "config": config or {"operation_type": "command", "parameters": {"command": ["true"]}},
    }


def job(
    job_id: str, *deps: str, operations: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    """A job document with one valid command operation unless told otherwise."""
    if operations is None:
        operations = [op(f"{job_id}-op")]
    return {"job_id": job_id, "operations": operations, "dependencies": list(deps), **extra}


def doc(*jobs: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A pipeline document around these jobs."""
    return {"name": "p", "jobs": list(jobs), **top}


def problems_of(data: Any) -> list[dict[str, str]]:
    """The problems validation reports for `data` (it must fail)."""
    with pytest.raises(PipelineInvalidError) as caught:
        validate_pipeline_data(data)
    assert caught.value.code == ErrorCode.PIPELINE_INVALID
    return caught.value.details["problems"]


def parse_outcome(text: str) -> Pipeline | PipelineInvalidError:
    """The pipeline parsed from `text`, or the PIPELINE_INVALID error it raised."""
    try:
        return parse_pipeline_text(text)
    except PipelineInvalidError as error:
        return error


def has_problem(problems: list[dict[str, str]], where: str, pattern: str) -> bool:
    """Whether a problem at exactly `where` has a message matching `pattern`."""
    return any(p["location"] == where and re.search(pattern, p["message"]) for p in problems)


class TestValidPipelines:
    def test_aws_style_file_validates_unchanged(self, tmp_path):
        """An AWS pipeline (lambda/ecs with resource_arn, tags, version 1.0.0) loads as written."""
        path = tmp_path / "analytics.yaml"
        path.write_text(AWS_PIPELINE, encoding="utf-8")
        pipeline = load_pipeline_file(path)
        assert pipeline.model_dump(mode="json", exclude_unset=True) == yaml.safe_load(AWS_PIPELINE)
        assert pipeline.version == "1.0.0"
        assert pipeline.tags == {"team": "analytics", "cost-center": "1234"}
        kinds = [o.config.operation_type for j in pipeline.jobs for o in j.operations]
        assert kinds == [OperationType.LAMBDA, OperationType.ECS]
        assert pipeline.job("aggregate").dependencies == ["ingest"]

    def test_unquoted_numeric_version_is_kept_as_text(self):
        """`version: 1.0` (a YAML float) is read as the text the author meant."""
        pipeline = parse_pipeline_text(
            "name: p\nversion: 1.0\njobs: [{job_id: a, operations: "
            "[{operation_id: o, config: {operation_type: glue}}]}]"
        )
        assert pipeline.version == "1.0"

    def test_command_with_argv_list(self):
        """A command operation with an argv list validates and runs that argv."""
        text = textwrap.dedent("""\
            name: local
            jobs:
              - job_id: a
                operations:
                  - operation_id: run
                    config:
                      operation_type: command
                      parameters:
                        command: [python3, script.py, --rows, 10]
                        memory: 256
                        env: {MODE: fast}
                        batch: 5
        """)
        config = parse_pipeline_text(text).jobs[0].operations[0].config
        assert config.command_argv() == ["python3", "script.py", "--rows", "10"]
        assert config.memory_limit_mb == 256
        assert config.process_parameters() == {"batch": 5}

    def test_command_as_string_is_split_not_shelled(self):
        """A command string is split with shlex; shell operators stay literal arguments."""
        text = textwrap.dedent("""\
            name: local
            jobs:
              - job_id: a
                operations:
                  - operation_id: run
                    config:
                      operation_type: command
                      parameters:
                        command: "python3 -c 'print(1)' > out.txt; echo $HOME"
        """)
        config = parse_pipeline_text(text).jobs[0].operations[0].config
        assert config.command_argv() == [
            "python3",
            "-c",
            "print(1)",
            ">",
            "out.txt;",
            "echo",
            "$HOME",
        ]


class TestProblemsReportedTogether:
    def test_every_problem_at_once_with_locations(self):
        """One invalid document reports all its problems, each at its precise location."""
        data = doc(
            job("a", "b", operations=[op("dup"), op("dup")]),
            job("b", "a"),
            job("c", "ghost", "c"),
            job("a"),
            job("d", operations=[op("run", operation_type="command", parameters={"memory": 64})]),
            job(
                "e",
                operations=[
                    op(
                        "run",
                        operation_type="command",
                        parameters={"command": ["x"], "memory": "lots"},
                    )
                ],
            ),
            job("f", retries=3),
            max_concurrent_jobs="many",
        )
        problems = problems_of(data)
        expected = [
            ("jobs[0].operations[1].operation_id", r"duplicate operation_id 'dup'"),
            ("jobs[2].dependencies[0]", r"unknown job 'ghost'"),
            ("jobs[2].dependencies[1]", r"'c' depends on itself"),
            ("jobs[3].job_id", r"duplicate job_id 'a'"),
            ("jobs[4].operations[0].config.parameters.command", r"needs a command"),
            ("jobs[5].operations[0].config.parameters.memory", r"positive integer"),
            ("jobs[6].retries", r"Extra inputs are not permitted"),
            ("max_concurrent_jobs", r"valid integer"),
            ("jobs", r"dependency cycle: "),
        ]
        missing = [e for e in expected if not has_problem(problems, *e)]
        assert missing == [], problems

    def test_error_message_counts_problems_and_names_source(self):
        """The message names the source and the number of problems; details repeat the source."""
        with pytest.raises(PipelineInvalidError) as caught:
            parse_pipeline_text(
                "name: p\njobs: [{job_id: a, operations: []}, 7]", source="bad.yaml"
            )
        error = caught.value
        assert isinstance(error, InvalidArgumentError)
        count = len(error.details["problems"])
        assert count == 2
        assert error.message == "bad.yaml: 2 problems in pipeline"
        assert error.details["source"] == "bad.yaml"

    def test_duplicate_job_ids(self):
        """A repeated job_id is reported at its second occurrence."""
        problems = problems_of(doc(job("a"), job("b"), job("a")))
        assert problems == [{"location": "jobs[2].job_id", "message": "duplicate job_id 'a'"}]

    def test_duplicate_operation_ids_within_a_job(self):
        """A repeated operation_id inside one job is reported at its second occurrence."""
        problems = problems_of(doc(job("a", operations=[op("x"), op("y"), op("x")])))
        assert problems == [
            {
                "location": "jobs[0].operations[2].operation_id",
                "message": "duplicate operation_id 'x'",
            }
        ]

    def test_same_operation_id_in_different_jobs_is_fine(self):
        """Operation ids only need to be unique within their job."""
        pipeline = validate_pipeline_data(
            doc(job("a", operations=[op("x")]), job("b", operations=[op("x")]))
        )
        assert [j.job_id for j in pipeline.jobs] == ["a", "b"]

    def test_unknown_dependency(self):
        """A dependency on a job that does not exist is located at that dependency."""
        problems = problems_of(doc(job("a"), job("b"), job("c", "a", "nope")))
        assert problems == [
            {"location": "jobs[2].dependencies[1]", "message": "unknown job 'nope'"}
        ]

    def test_self_dependency(self):
        """A job listing itself as a dependency is reported at that dependency."""
        problems = problems_of(doc(job("a", "a")))
        assert has_problem(problems, "jobs[0].dependencies[0]", r"^job 'a' depends on itself$")

    def test_cycle_names_the_cycle(self):
        """A two-job cycle is reported once, naming the path a -> b -> a."""
        problems = problems_of(doc(job("a", "b"), job("b", "a"), job("c")))
        assert problems == [{"location": "jobs", "message": "dependency cycle: a -> b -> a"}]

    def test_longer_cycle_behind_a_tail(self):
        """A cycle reached from an acyclic job is named without the tail."""
        problems = problems_of(doc(job("start", "x"), job("x", "y"), job("y", "z"), job("z", "x")))
        assert problems == [{"location": "jobs", "message": "dependency cycle: x -> y -> z -> x"}]

    @pytest.mark.parametrize(
        ("data", "where", "pattern"),
        [
            (doc(job("a"), max_concurrent_jobs="many"), "max_concurrent_jobs", "valid integer"),
            (doc(job("a"), tags=["team"]), "tags", "valid dictionary"),
            (doc(job("a"), tags={"team": 5}), "tags.team", "valid string"),
            (doc(job("a"), timeout_seconds=0), "timeout_seconds", "greater than or equal to 1"),
            (
                doc(job("a", operations=[op(operation_type="fortran")])),
                "jobs[0].operations[0].config.operation_type",
                "Input should be",
            ),
            (doc(job("a", "b", 3), job("b")), "jobs[0].dependencies[1]", "valid string"),
            (doc(job("bad id!")), "jobs[0].job_id", "match pattern"),
            (doc(job("a", operations=[])), "jobs[0].operations", "at least 1 item"),
            ({"jobs": [job("a")]}, "name", "Field required"),
            (doc(), "jobs", "at least 1 item"),
            (["not", "a", "mapping"], "(root)", "valid dictionary"),
        ],
    )
    def test_bad_types(self, data, where, pattern):
        """Wrongly typed or out-of-range values are reported at their location."""
        assert has_problem(problems_of(data), where, pattern)

    @pytest.mark.parametrize(
        ("data", "where"),
        [
            (doc(job("a"), schedule="daily"), "schedule"),
            (doc(job("a", timeout=5)), "jobs[0].timeout"),
            (doc(job("a", operations=[{**op(), "retry": {}}])), "jobs[0].operations[0].retry"),
            (
                doc(
                    job(
                        "a",
                        operations=[
                            op(operation_type="command", parameters={"command": ["x"]}, memory=64)
                        ],
                    )
                ),
                "jobs[0].operations[0].config.memory",
            ),
            (
                doc(
                    job(
                        "a",
                        operations=[
                            op(
                                operation_type="command",
                                parameters={"command": ["x"]},
                                retry={"max_attempts": 2, "jitter": True},
                            )
                        ],
                    )
                ),
                "jobs[0].operations[0].config.retry.jitter",
            ),
        ],
    )
    def test_unknown_keys_are_forbidden(self, data, where):
        """A misspelt or misplaced key is an error at its location, never silently ignored."""
        assert has_problem(problems_of(data), where, "Extra inputs are not permitted")

    @pytest.mark.parametrize(
        "parameters", [{}, {"command": None}, {"command": ""}, {"command": []}, {"memory": 64}]
    )
    def test_command_operation_needs_a_command(self, parameters):
        """A command operation without a command is reported at parameters.command."""
        data = doc(job("a", operations=[op(operation_type="command", parameters=parameters)]))
        assert has_problem(
            problems_of(data), "jobs[0].operations[0].config.parameters.command", "needs a command"
        )

    @pytest.mark.parametrize("command", [{"run": "x"}, 42, ["ok", {"nested": 1}], [["x"]]])
    def test_command_must_be_argv_or_string(self, command):
        """A command that is neither an argv list nor a string is reported."""
        data = doc(
            job("a", operations=[op(operation_type="command", parameters={"command": command})])
        )
        assert has_problem(
            problems_of(data),
            "jobs[0].operations[0].config.parameters.command",
            "argv list or a string",
        )

    @pytest.mark.parametrize("command", ["echo 'unterminated", 'echo "x', "echo \\"])
    def test_command_string_that_cannot_be_split_is_reported(self, command):
        """A command string shlex cannot split is a validation problem, not a crash at run time."""
        data = doc(
            job("a", operations=[op(operation_type="command", parameters={"command": command})])
        )
        assert has_problem(
            problems_of(data), "jobs[0].operations[0].config.parameters.command", "command"
        )

    def test_blank_command_string_is_reported(self):
        """A command string of only whitespace (no argv) is reported like a missing command."""
        data = doc(
            job("a", operations=[op(operation_type="command", parameters={"command": "   "})])
        )
        assert has_problem(
            problems_of(data), "jobs[0].operations[0].config.parameters.command", "command"
        )

    @pytest.mark.parametrize("memory", [0, -5, "lots", "512", 1.5, True, [512]])
    def test_bad_memory(self, memory):
        """memory must be a positive integer number of MiB."""
        data = doc(
            job(
                "a",
                operations=[
                    op(operation_type="command", parameters={"command": ["x"], "memory": memory})
                ],
            )
        )
        assert has_problem(
            problems_of(data), "jobs[0].operations[0].config.parameters.memory", "positive integer"
        )

    def test_bad_env(self):
        """env must be a mapping from names to values."""
        data = doc(
            job(
                "a",
                operations=[
                    op(operation_type="command", parameters={"command": ["x"], "env": ["A=1"]})
                ],
            )
        )
        assert has_problem(
            problems_of(data), "jobs[0].operations[0].config.parameters.env", "mapping"
        )

    @pytest.mark.parametrize("kind", ["lambda", "ecs"])
    def test_lambda_and_ecs_need_a_resource_arn(self, kind):
        """Lambda and ECS operations without resource_arn are reported there."""
        data = doc(job("a", operations=[op(operation_type=kind, parameters={})]))
        assert has_problem(
            problems_of(data),
            "jobs[0].operations[0].config.resource_arn",
            f"{kind} operation needs a resource_arn",
        )

    @pytest.mark.parametrize(
        "data",
        [
            doc({"job_id": ["a"], "operations": [op()]}),
            doc({"job_id": {"a": 1}, "operations": [op()]}, job("b")),
            doc(
                job("a", operations=[{"operation_id": ["x"], "config": {"operation_type": "glue"}}])
            ),
            doc(job("a", operations=[op(operation_type=["command"])])),
            doc(job("a", operations=[op(operation_type={"kind": "lambda"})])),
        ],
    )
    def test_unhashable_ids_and_types_are_problems_not_crashes(self, data):
        """Lists or mappings where an id or operation_type belongs are reported, not a TypeError."""
        assert problems_of(data)


class TestMalformedInput:
    def test_malformed_yaml_reports_line_and_column(self):
        """Broken YAML is PIPELINE_INVALID with the line and column of the problem."""
        text = "name: p\njobs:\n\t- job_id: a\n"
        with pytest.raises(PipelineInvalidError) as caught:
            parse_pipeline_text(text, source="tabs.yaml")
        error = caught.value
        assert error.code == ErrorCode.PIPELINE_INVALID
        assert error.message == "tabs.yaml: malformed YAML at line 3, column 1"
        [problem] = error.details["problems"]
        assert problem["location"] == "line 3, column 1"
        assert problem["message"].startswith("malformed YAML: ")

    def test_unclosed_flow_sequence(self):
        """An unclosed bracket is located by line and column too."""
        with pytest.raises(PipelineInvalidError) as caught:
            parse_pipeline_text("name: p\njobs: [a, b\nother: 1\n")
        [problem] = caught.value.details["problems"]
        assert re.fullmatch(r"line \d+, column \d+", problem["location"])

    @pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "null", "42", "- a\n"])
    def test_documents_that_are_not_mappings(self, text):
        """Empty files and non-mapping documents are reported at the root."""
        with pytest.raises(PipelineInvalidError) as caught:
            parse_pipeline_text(text)
        assert has_problem(caught.value.details["problems"], "(root)", "valid dictionary")

    def test_deeply_nested_yaml_is_invalid_not_a_crash(self):
        """Deeply nested YAML far below the size cap is PIPELINE_INVALID, not RecursionError."""
        with pytest.raises(PipelineInvalidError):
            parse_pipeline_text("[" * 20_000)

    def test_oversize_text(self):
        """Text over MAX_PIPELINE_BYTES is rejected before parsing."""
        text = "name: p\n#" + "x" * MAX_PIPELINE_BYTES
        with pytest.raises(PipelineInvalidError) as caught:
            parse_pipeline_text(text, source="big.yaml")
        assert "larger than" in caught.value.message
        assert caught.value.details == {"source": "big.yaml", "problems": []}

    def test_size_cap_counts_bytes_not_characters(self):
        """Multi-byte characters count by their UTF-8 size."""
        text = "#" + "é" * (MAX_PIPELINE_BYTES // 2)
        assert len(text) < MAX_PIPELINE_BYTES < len(text.encode())
        with pytest.raises(PipelineInvalidError, match="larger than"):
            parse_pipeline_text(text)

    def test_oversize_file(self, tmp_path):
        """An oversize file is rejected by load_pipeline_file with its path as source."""
        path = tmp_path / "huge.yaml"
        path.write_text(AWS_PIPELINE + "#" + "x" * MAX_PIPELINE_BYTES, encoding="utf-8")
        with pytest.raises(PipelineInvalidError) as caught:
            load_pipeline_file(path)
        assert caught.value.details["source"] == str(path)

    def test_missing_file(self, tmp_path):
        """A file that cannot be read is reported like an invalid pipeline."""
        with pytest.raises(PipelineInvalidError, match="cannot read pipeline file"):
            load_pipeline_file(tmp_path / "absent.yaml")

    def test_file_that_is_not_utf8(self, tmp_path):
        """A file that is not UTF-8 is reported like an invalid pipeline."""
        path = tmp_path / "latin1.yaml"
        path.write_bytes("name: café\n".encode("latin-1"))
        with pytest.raises(PipelineInvalidError, match="cannot read pipeline file"):
            load_pipeline_file(path)


class TestContentHash:
    BLOCK = textwrap.dedent("""\
        name: hashed
        version: "2.0"
        tags:
          a: "1"
          b: "2"
        jobs:
          - job_id: one
            operations:
              - operation_id: run
                config:
                  operation_type: command
                  parameters:
                    command: [python3, x.py]
    """)
    FLOW = textwrap.dedent("""\
        # Same content: flow style, other key order, comments and explicit defaults.
        jobs: [{dependencies: [], operations: [{config: {parameters: {command: [python3, x.py]},
                operation_type: command}, operation_id: run}], job_id: one}]
        tags: {b: '2', a: '1'}   # reordered
        max_concurrent_jobs: 4
        version: '2.0'
        name: "hashed"
    """)

    def test_same_content_different_layout_same_hash(self):
        """Layout, key order, comments and spelt-out defaults do not change the hash."""
        block, flow = parse_pipeline_text(self.BLOCK), parse_pipeline_text(self.FLOW)
        assert canonical_json(block) == canonical_json(flow)
        assert content_hash(block) == content_hash(flow)
        assert re.fullmatch(r"[0-9a-f]{64}", content_hash(block))

    def test_different_content_different_hash(self):
        """Any change of content changes the hash."""
        changed = parse_pipeline_text(self.BLOCK.replace("x.py", "y.py"))
        assert content_hash(changed) != content_hash(parse_pipeline_text(self.BLOCK))

    def test_every_valid_pipeline_can_be_hashed(self):
        """A pipeline that validates can always be hashed (here: a !!binary parameter)."""
        text = (
            "name: p\njobs: [{job_id: a, operations: [{operation_id: o, config: "
            "{operation_type: glue, parameters: {blob: !!binary /w==}}}]}]"
        )
        result = parse_outcome(text)
        if isinstance(result, Pipeline):
            assert re.fullmatch(r"[0-9a-f]{64}", content_hash(result))

    @pytest.mark.parametrize("where", ["name", "description", "tags", "parameter", "nested_key"])
    def test_json_layout_with_astral_characters(self, where):
        """JSON text escaping 🚀 as a surrogate pair (as json.dumps does) means the real 🚀."""
        parameters: dict[str, Any] = {"plain": 1}
        top: dict[str, Any] = {}
        if where in {"name", "description"}:
            top[where] = "rocket 🚀"
        elif where == "tags":
            top["tags"] = {"icon": "🚀"}
        elif where == "parameter":
            parameters["icons"] = ["🚀"]
        else:
            parameters["nested"] = {"🚀": 1}
        data = doc(job("a", operations=[op(operation_type="glue", parameters=parameters)]), **top)
        text = json.dumps(data)
        assert "\\ud83d\\ude80" in text
        expected = validate_pipeline_data(data)
        parsed = parse_pipeline_text(text)
        assert parsed == expected
        assert content_hash(parsed) == content_hash(expected)


def named(name: str) -> Pipeline:
    """A minimal valid pipeline with this name."""
    return validate_pipeline_data(doc(job("a"), name=name))


class TestPipelineIdFor:
    @pytest.mark.parametrize(
        ("name", "slug"),
        [
            ("nightly-orders-etl", "nightly-orders-etl"),
            ("Nightly Orders ETL!", "nightly-orders-etl"),
            ("  __Data   Quality__ v2 ", "data-quality-v2"),
            ("Café Résumé", "caf-r-sum"),
        ],
    )
    def test_slug_from_name(self, name, slug):
        """The id is the lower-cased name with runs of other characters turned into one dash."""
        assert pipeline_id_for(named(name), fallback="file") == slug

    def test_slug_is_capped_without_trailing_dash(self):
        """Long names are cut to 64 characters and never end with a dash."""
        slug = pipeline_id_for(named("a" * 63 + " " + "b" * 50), fallback="file")
        assert slug == "a" * 63
        assert len(pipeline_id_for(named("x" * 200), fallback="file")) == 64

    def test_fallback_when_name_has_no_usable_characters(self):
        """A name with nothing sluggable falls back to the file stem."""
        assert pipeline_id_for(named("日本語のパイプライン"), fallback="My_Pipeline File") == (
            "my-pipeline-file"
        )

    def test_hash_when_nothing_is_usable(self):
        """With neither name nor fallback usable, the id comes from the content hash."""
        pipeline = named("!!!")
        expected = "pipeline-" + content_hash(pipeline)[:12]
        assert pipeline_id_for(pipeline, fallback="???") == expected


class TestLocation:
    @pytest.mark.parametrize(
        ("loc", "text"),
        [
            ((), "(root)"),
            (("name",), "name"),
            (("jobs", 2, "dependencies", 0), "jobs[2].dependencies[0]"),
            (("tags", "team"), "tags.team"),
        ],
    )
    def test_rendering(self, loc, text):
        """Pydantic locations render as dotted paths with [index] for list positions."""
        assert location(loc) == text


# --- property: any input either validates or is PIPELINE_INVALID -------------------------

KEYS = st.sampled_from(
    [
        "name",
        "jobs",
        "job_id",
        "operations",
        "operation_id",
        "config",
        "operation_type",
        "parameters",
        "command",
        "memory",
        "env",
        "dependencies",
        "resource_arn",
        "retry",
        "version",
        "tags",
        "metadata",
        "timeout_seconds",
        "max_concurrent_jobs",
        "max_attempts",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["a", "b", "command", "lambda", "ecs", "glue", "1.0.0", "x y 'z"])
)
JSONISH = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.text(max_size=6), inner, max_size=5)
    ),
    max_leaves=25,
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the well-typed strategy, one time in ten any JSON-ish value instead."""
    return st.integers(0, 9).flatmap(lambda n: strategy if n else JSONISH)


def fields(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A mapping with these (possibly ill-typed) fields, sometimes missing a required one."""
    complete = st.fixed_dictionaries(required, optional=optional)
    partial = st.fixed_dictionaries({}, optional={**required, **optional})
    return st.integers(0, 9).flatmap(lambda n: complete if n else partial)


IDS = st.sampled_from(["a", "b", "c", "a", "b", "c", "a b", ""])
PARAMETERS = st.fixed_dictionaries(
    {},
    optional={
        "command": maybe(
            st.lists(st.sampled_from(["python3", "-c", "x", "'"]), max_size=3)
            | st.sampled_from(["echo hi", "echo 'x", "  ", "a \\"])
        ),
        "memory": maybe(st.integers(-2, 2048)),
        "env": maybe(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)),
        "rows": JSONISH,
    },
)
CONFIGS = fields(
    {"operation_type": maybe(st.sampled_from([t.value for t in OperationType]))},
    {
        "resource_arn": maybe(st.just("arn:aws:lambda:us-east-1:1:function:f")),
        "timeout_seconds": maybe(st.integers(0, 10)),
        "parameters": maybe(PARAMETERS),
        "retry": maybe(
            st.fixed_dictionaries({}, optional={"max_attempts": maybe(st.integers(0, 3))})
        ),
    },
)
OPERATIONS = fields(
    {"operation_id": maybe(IDS), "config": maybe(CONFIGS)}, {"name": maybe(st.text(max_size=5))}
)
JOBS = fields(
    {"job_id": maybe(IDS), "operations": maybe(st.lists(maybe(OPERATIONS), max_size=3))},
    {"dependencies": maybe(st.lists(maybe(IDS), max_size=2))},
)
DOCUMENTS = (
    fields(
        {"name": maybe(st.text(max_size=8)), "jobs": maybe(st.lists(maybe(JOBS), max_size=4))},
        {
            "version": maybe(st.sampled_from(["1.0.0", 1.0, 2])),
            "tags": maybe(st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2)),
            "metadata": maybe(st.dictionaries(st.text(max_size=4), JSONISH, max_size=3)),
        },
    )
    | JSONISH
)


# Layout property: text stays in the BMP; astral characters have their own test
# (TestContentHash.test_json_layout_with_astral_characters).
def bmp(*, min_size: int = 0, max_size: int) -> st.SearchStrategy[str]:
    """Text of Basic Multilingual Plane characters."""
    alphabet = st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc", "Zl", "Zp"))
    return st.text(alphabet, min_size=min_size, max_size=max_size)


PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | bmp(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(bmp(max_size=4), inner, max_size=3),
    max_leaves=10,
)
VALID_CONFIGS = st.one_of(
    st.fixed_dictionaries(
        {
            "operation_type": st.just("command"),
            "parameters": st.fixed_dictionaries(
                {
                    "command": st.lists(bmp(min_size=1, max_size=6), min_size=1, max_size=3)
                    | st.sampled_from(["python3 job.py", "echo 'two words' x"])
                },
                optional={
                    "memory": st.integers(1, 4096),
                    "env": st.dictionaries(bmp(max_size=4), bmp(max_size=4), max_size=2),
                    "rows": PLAIN,
                },
            ),
        },
        optional={
            "timeout_seconds": st.integers(1, 3600),
            "retry": st.fixed_dictionaries({}, optional={"max_attempts": st.integers(1, 5)}),
        },
    ),
    st.fixed_dictionaries(
        {
            "operation_type": st.sampled_from(["lambda", "ecs"]),
            "resource_arn": st.just("arn:aws:lambda:us-east-1:1:function:f"),
        },
        optional={"parameters": st.dictionaries(bmp(max_size=4), PLAIN, max_size=3)},
    ),
    st.fixed_dictionaries({"operation_type": st.sampled_from(["glue", "emr", "sagemaker"])}),
)


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A pipeline document that is valid by construction (unique ids, acyclic, well typed)."""
    jobs = []
    for index in range(draw(st.integers(1, 5))):
        earlier = [f"j{k}" for k in range(index)]
        deps = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
        operations = [
            {"operation_id": f"o{k}", "config": draw(VALID_CONFIGS)}
            for k in range(draw(st.integers(1, 3)))
        ]
        jobs.append({"job_id": f"j{index}", "operations": operations, "dependencies": deps})
    return draw(
        st.fixed_dictionaries(
            {"name": bmp(min_size=1, max_size=20), "jobs": st.permutations(jobs)},
            optional={
                "version": st.sampled_from(["1.0.0", "2"]),
                "tags": st.dictionaries(bmp(max_size=4), bmp(max_size=4), max_size=2),
                "metadata": st.dictionaries(bmp(max_size=4), PLAIN, max_size=3),
                "max_concurrent_jobs": st.integers(1, 8),
            },
        )
    )


def as_text(data: Any, style: str) -> str:
    """Serialize a document as block YAML, flow YAML or JSON (JSON is YAML too)."""
    if style == "json":
        return json.dumps(data)
    return yaml.safe_dump(data, default_flow_style=(style == "flow"), allow_unicode=True)


PIPELINE_TEXTS = (
    st.builds(as_text, DOCUMENTS | valid_documents(), st.sampled_from(["block", "flow", "json"]))
    | st.text(max_size=200)
    | st.lists(
        st.sampled_from(
            [
                "name: p\n",
                "jobs:\n",
                "  - job_id: a\n",
                "    operations:\n",
                "      - {operation_id: o, config: {operation_type: command}}\n",
                "    dependencies: [a]\n",
                "[",
                "{",
                ": ",
                "&x ",
                "*x ",
                "!!binary ",
                "'",
                '"',
                "\t",
                "- ",
                "? ",
                "%YAML 1.1\n",
                "---\n",
            ]
        ),
        max_size=15,
    ).map("".join)
)


class TestParseProperty:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(PIPELINE_TEXTS)
    @example("name: p\njobs: [{job_id: [a], operations: []}]")
    @example(
        "name: p\njobs: [{job_id: a, operations: [{operation_id: o, "
        "config: {operation_type: [command]}}]}]"
    )
    def test_returns_pipeline_or_raises_pipeline_invalid(self, text):
        """Any text either validates into a hashable Pipeline or raises PIPELINE_INVALID."""
        result = parse_outcome(text)
        if isinstance(result, PipelineInvalidError):
            assert result.code == ErrorCode.PIPELINE_INVALID
            assert all(set(p) == {"location", "message"} for p in result.details["problems"])
        else:
            assert isinstance(result, Pipeline)
            assert len(content_hash(result)) == 64

    @settings(max_examples=200, deadline=None)
    @given(valid_documents(), st.permutations(["block", "flow", "json"]))
    def test_valid_documents_parse_to_one_hash_in_every_layout(self, data, styles):
        """A valid document parses in block, flow and JSON layout, always to the same hash."""
        hashes = {content_hash(parse_pipeline_text(as_text(data, style))) for style in styles}
        assert hashes == {content_hash(validate_pipeline_data(data))}
