"""Reading pipeline YAML and reporting every problem in it at once, each with its location."""

from __future__ import annotations

import os
import re
import shlex
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bunsui_core.errors import PipelineInvalidError
from bunsui_core.model.dag import find_cycle
from bunsui_core.model.location import location
from bunsui_core.model.pipeline import PASS_ENV_PATTERN, OperationType, Pipeline, content_hash
from bunsui_core.model.project import PARAMETER_MODELS

MAX_PIPELINE_BYTES = 1_000_000

Problem = dict[str, str]

NOT_A_PIPELINE = "not a pipeline: expected a mapping with `name` and `jobs`"


def parse_pipeline_text(text: str, *, source: str = "<text>") -> Pipeline:
    """Validate YAML text into a Pipeline, or raise PIPELINE_INVALID listing every problem."""
    return validate_pipeline_data(parse_yaml_text(text, source=source), source=source)


def parse_yaml_text(text: str, *, source: str = "<text>") -> Any:
    """Safe YAML (no aliases, bounded size and depth), or PIPELINE_INVALID saying where not."""
    if len(text.encode()) > MAX_PIPELINE_BYTES:
        raise PipelineInvalidError(
            f"{source}: pipeline file is larger than {MAX_PIPELINE_BYTES} bytes",
            details={"source": source, "problems": []},
        )
    try:
        data = _safe_load_without_aliases(text)
    except RecursionError:
        raise PipelineInvalidError(
            f"{source}: YAML nested too deeply",
            details={"source": source, "problems": [_root("YAML nested too deeply")]},
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(unknown)"
        problem = {"location": where, "message": f"malformed YAML: {getattr(exc, 'problem', exc)}"}
        raise PipelineInvalidError(
            f"{source}: malformed YAML at {where}",
            details={"source": source, "problems": [problem]},
        ) from None
    return data


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a few hundred bytes of nested aliases expand
    to gigabytes (or loop), and pipelines never need them."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # unannotated in the stubs
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases are not allowed in pipelines", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[arg-type]


MAX_FAST_NESTING = 100
"""Nesting past which the C parser's result is not used (real pipelines stay under ten)."""
_OPENS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSES = (yaml.MappingEndEvent, yaml.SequenceEndEvent)
_NOT_FAST = object()


def _fast_load(text: str) -> Any:
    """libyaml's C parser, ten times the pure Python one on a large pipeline; _NOT_FAST when
    it is missing or the text is anything but plain: an alias, deep nesting (its composer
    recurses in C, where no RecursionError stops it), or what it rejects (escaped surrogate
    pairs, malformed YAML). The Python loader then decides, with its own messages."""
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None:
        return _NOT_FAST
    depth = 0
    try:
        for event in yaml.parse(text, Loader=fast):
            depth += isinstance(event, _OPENS) - isinstance(event, _CLOSES)
            if isinstance(event, yaml.AliasEvent) or depth > MAX_FAST_NESTING:
                return _NOT_FAST
        return yaml.load(text, Loader=fast)  # noqa: S506, TID251 - CSafeLoader: safe constructor
    except yaml.YAMLError:
        return _NOT_FAST


def _safe_load_without_aliases(text: str) -> Any:
    data = _fast_load(text)
    if data is not _NOT_FAST:
        return data
    loader = _NoAliasLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _root(message: str) -> Problem:
    return {"location": "(root)", "message": message}


def load_pipeline_file(path: Path) -> Pipeline:
    """Read and validate a pipeline file; unreadable files are reported like invalid ones."""
    return load_pipeline_source(path)[0]


def load_pipeline_source(path: Path) -> tuple[Pipeline, bytes]:
    """The pipeline and the exact bytes it was parsed from (read once: hashing them binds
    what was parsed); unreadable files are reported like invalid ones."""
    data = read_definition_bytes(path)
    return parse_pipeline_text(data.decode("utf-8"), source=str(path)), data


def read_pipeline_text(path: Path) -> str:
    """The text of a definition file (a pipeline or a project's YAML), with the same bounds."""
    return read_definition_bytes(path).decode("utf-8")


def read_definition_bytes(path: Path) -> bytes:
    """The bytes of a definition file, checked to be UTF-8; unreadable files are reported
    like invalid ones.

    Only regular files are read, and never more than the size limit (plus one byte to tell):
    /dev/zero, a FIFO or a `/proc/kmsg`-like file must not hang or exhaust memory.
    """
    try:
        data = read_regular_file(path, MAX_PIPELINE_BYTES + 1)
        if len(data) > MAX_PIPELINE_BYTES:
            raise PipelineInvalidError(
                f"{path}: pipeline file is larger than {MAX_PIPELINE_BYTES} bytes",
                details={"source": str(path), "problems": []},
            )
        data.decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: NUL in the path
        raise PipelineInvalidError(
            f"cannot read pipeline file {path}: {exc}",
            details={"source": str(path), "problems": []},
        ) from None
    return data


READ_DEADLINE_SECONDS = 5.0
"""Longest a pipeline file may take to read; past it the read is given up."""


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of a regular file, opened without blocking (a FIFO nobody
    writes, a device) and read against a deadline; anything else is OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError("not a regular file")
        deadline = time.monotonic() + READ_DEADLINE_SECONDS
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            if time.monotonic() > deadline:
                raise OSError(f"not read within {READ_DEADLINE_SECONDS:g} s")
            chunk = os.read(fd, min(65536, limit - size))  # BlockingIOError is an OSError
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def validate_pipeline_data(data: Any, *, source: str = "<data>") -> Pipeline:
    """Check structure (types, unknown keys) and meaning (ids, dependencies, cycles) together."""
    problems: list[Problem] = []
    pipeline: Pipeline | None = None
    try:
        data = _as_json_value(data, (), problems)
    except RecursionError:
        raise PipelineInvalidError(
            f"{source}: pipeline nested too deeply",
            details={"source": source, "problems": [_root("nested too deeply")]},
        ) from None
    if isinstance(data, dict) and "jobs" not in data:
        # Not a pipeline at all (/etc/shadow, a config file): its keys are not echoed back
        # as "unknown key" problems, so validating a file never discloses its content.
        raise PipelineInvalidError(
            f"{source}: not a pipeline",
            details={"source": source, "problems": [_root(NOT_A_PIPELINE)]},
        )
    try:
        pipeline = Pipeline.model_validate(data)
    except ValidationError as exc:
        problems.extend(
            {"location": location(err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False)
        )
    if isinstance(data, dict):
        problems.extend(_semantic_problems(data))
    if problems or pipeline is None:
        count = len(problems)
        raise PipelineInvalidError(
            f"{source}: {count} problem{'s' if count != 1 else ''} in pipeline",
            details={"source": source, "problems": problems},
        )
    return pipeline


def _as_json_value(value: Any, loc: tuple[str | int, ...], problems: list[Problem]) -> Any:
    """The value with JSON-escaped surrogate pairs joined; binary and lone surrogates are problems.

    YAML reads JSON's `\\ud83d\\ude80` as two surrogates, so a JSON-layout file would otherwise
    differ from its YAML twin; bytes (`!!binary`) have no JSON form, so they could not be hashed.
    """
    if isinstance(value, str):
        try:
            return value.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            problems.append({"location": location(loc), "message": "text has a lone surrogate"})
            return value
    if isinstance(value, bytes | bytearray):
        problems.append({"location": location(loc), "message": "binary values are not supported"})
        return value
    if isinstance(value, dict):
        return {
            _as_json_value(k, loc, problems): _as_json_value(v, (*loc, str(k)), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_as_json_value(v, (*loc, i), problems) for i, v in enumerate(value)]
    return value


def _semantic_problems(data: dict[str, Any]) -> Iterator[Problem]:
    """Problems no field type can express; tolerant of bad types reported elsewhere."""
    jobs = data.get("jobs")
    if not isinstance(jobs, list):
        return
    job_ids = [j.get("job_id") for j in jobs if isinstance(j, dict)]
    seen: set[Any] = set()
    for index, job in enumerate(jobs):
        if not isinstance(job, dict):
            continue
        job_id = job.get("job_id")
        if isinstance(job_id, str):
            if job_id in seen:
                yield {
                    "location": f"jobs[{index}].job_id",
                    "message": f"duplicate job_id {job_id!r}",
                }
            seen.add(job_id)
        yield from _dependency_problems(index, job, job_ids)
        yield from _operation_problems(index, job)
    edges = {
        j["job_id"]: [d for d in j.get("dependencies") or [] if isinstance(d, str)]
        for j in jobs
        if isinstance(j, dict)
        and isinstance(j.get("job_id"), str)
        and isinstance(j.get("dependencies") or [], list)
    }
    cycle = find_cycle(edges)
    if cycle:
        yield {"location": "jobs", "message": f"dependency cycle: {' -> '.join(cycle)}"}


def _dependency_problems(index: int, job: dict[str, Any], job_ids: list[Any]) -> Iterator[Problem]:
    dependencies = job.get("dependencies") or []
    if not isinstance(dependencies, list):
        return
    for dep_index, dep in enumerate(dependencies):
        where = f"jobs[{index}].dependencies[{dep_index}]"
        if dep == job.get("job_id"):
            yield {"location": where, "message": f"job {dep!r} depends on itself"}
        elif isinstance(dep, str) and dep not in job_ids:
            yield {"location": where, "message": f"unknown job {dep!r}"}


def _operation_problems(index: int, job: dict[str, Any]) -> Iterator[Problem]:
    operations = job.get("operations")
    if not isinstance(operations, list):
        return
    seen: set[Any] = set()
    for op_index, operation in enumerate(operations):
        if not isinstance(operation, dict):
            continue
        where = f"jobs[{index}].operations[{op_index}]"
        op_id = operation.get("operation_id")
        if isinstance(op_id, str):
            if op_id in seen:
                yield {
                    "location": f"{where}.operation_id",
                    "message": f"duplicate operation_id {op_id!r}",
                }
            seen.add(op_id)
        config = operation.get("config")
        if isinstance(config, dict):
            yield from _config_problems(f"{where}.config", config)


def _config_problems(where: str, config: dict[str, Any]) -> Iterator[Problem]:
    parameters = config.get("parameters") or {}
    if not isinstance(parameters, dict):
        return
    kind = config.get("operation_type")
    if kind == OperationType.COMMAND:
        command = parameters.get("command")
        argv = _argv(command) if isinstance(command, str | list) else command
        if argv is None and isinstance(command, str):
            yield {
                "location": f"{where}.parameters.command",
                "message": "command string cannot be split (unbalanced quote or trailing \\)",
            }
        elif not argv:
            yield {
                "location": f"{where}.parameters.command",
                "message": "command operation needs a command",
            }
        elif not (
            isinstance(command, str)
            or (
                isinstance(command, list) and all(isinstance(a, str | int | float) for a in command)
            )
        ):
            yield {
                "location": f"{where}.parameters.command",
                "message": "command must be an argv list or a string",
            }
        memory = parameters.get("memory")
        if memory is not None and (
            isinstance(memory, bool) or not isinstance(memory, int) or memory < 1
        ):
            yield {
                "location": f"{where}.parameters.memory",
                "message": "memory must be a positive integer (MiB)",
            }
        env = parameters.get("env")
        if env is not None and not (isinstance(env, dict) and all(isinstance(k, str) for k in env)):
            yield {
                "location": f"{where}.parameters.env",
                "message": "env must be a mapping of names to values",
            }
        pass_env = parameters.get("pass_env")
        if pass_env is not None and not (
            isinstance(pass_env, list)
            and all(isinstance(n, str) and PASS_ENV_PATTERN.match(n) for n in pass_env)
        ):
            yield {
                "location": f"{where}.parameters.pass_env",
                "message": "pass_env must be a list of variable names or patterns (AWS_*)",
            }
    elif isinstance(kind, str) and kind in PARAMETER_MODELS:
        yield from parameter_problems(
            f"{where}.parameters", PARAMETER_MODELS[OperationType(kind)], parameters
        )
    elif kind in (OperationType.LAMBDA, OperationType.ECS) and not config.get("resource_arn"):
        yield {
            "location": f"{where}.resource_arn",
            "message": f"{kind} operation needs a resource_arn",
        }


def parameter_problems(where: str, model: type[BaseModel], value: Any) -> Iterator[Problem]:
    """Problems of `value` against a typed config model, located under `where`."""
    try:
        model.model_validate(value)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            inner = location(err["loc"])
            yield {
                "location": where if inner == "(root)" else f"{where}.{inner}".replace(".[", "["),
                "message": err["msg"],
            }


def _argv(command: str | list[Any]) -> list[Any] | None:
    """The argv a command stands for, or None when a string cannot be split."""
    if isinstance(command, list):
        return command
    try:
        return shlex.split(command)
    except ValueError:
        return None


def pipeline_id_for(pipeline: Pipeline, *, fallback: str) -> str:
    """A URL- and CLI-safe id from the pipeline name, or from `fallback` (the file stem)."""
    for text in (pipeline.name, fallback):
        slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64].strip("-")
        if slug:
            return slug
    return "pipeline-" + content_hash(pipeline)[:12]
