"""A job's environment, built from an allow-list rather than copied from the launcher.

The process that starts a run may be a human's `bunsui approval approve` holding
BUNSUI_HOME, cloud credentials and tokens: a job gets none of that unless its pipeline (or
the installation's config) names it in `pass_env`, as tox does.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

BASE_NAMES = ("PATH", "HOME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR", "USER", "LOGNAME")
"""What every job inherits: where programs are, the user's home, locale, time zone, temp."""


def passed_through(launcher: Mapping[str, str], patterns: Iterable[str]) -> dict[str, str]:
    """The launcher's variables whose names match one of `patterns` (case-sensitive)."""
    wanted = list(patterns)
    return {
        name: value
        for name, value in launcher.items()
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in wanted)
    }


def job_environment(
    launcher: Mapping[str, str],
    *,
    pass_env: Iterable[str],
    pipeline_env: Mapping[str, str],
    run_variables: Mapping[str, str],
) -> dict[str, str]:
    """Allow-listed launcher variables, then the pipeline's own `env`, then BUNSUI_* run
    variables (last, so a pipeline cannot fake its session or job id)."""
    env = passed_through(launcher, [*BASE_NAMES, *pass_env])
    env.update(pipeline_env)
    env.update(run_variables)
    return env
