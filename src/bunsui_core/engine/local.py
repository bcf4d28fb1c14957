"""The local engine: a session's jobs as real child processes, in dependency order."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from bunsui_core.config import Settings
from bunsui_core.diagnosis.learning import record_rerun_outcome
from bunsui_core.engine._process import (
    LiveProcessGroups,
    ProcessResult,
    ProcessSpec,
    run_process,
)
from bunsui_core.engine.cgroups import CgroupHost, discover
from bunsui_core.engine.job_env import BASE_NAMES, job_environment, passed_through
from bunsui_core.engine.local_operations import LOCAL_ARGV
from bunsui_core.engine.native_shim import NativeShim
from bunsui_core.engine.native_shim import load as load_native_shim
from bunsui_core.engine.process_tree import set_child_subreaper
from bunsui_core.engine.project_jobs import (
    AttemptFacts,
    AttemptPlan,
    check_project_runnable,
    collect_attempt,
    parameters_of,
    plan_attempt,
    unfinished_dbt_attempt,
)
from bunsui_core.engine.shim_server import ShimServer
from bunsui_core.errors import EngineError, ErrorCode, NotFoundError
from bunsui_core.model.dag import topological_order
from bunsui_core.model.overrides import apply_overrides
from bunsui_core.model.pipeline import Job, Operation, Pipeline
from bunsui_core.model.session import (
    ErrorRecord,
    FailureKind,
    JobRun,
    MemoryEnforcement,
    OperationAttempt,
    OperationRun,
    RunnerInfo,
    RunStatus,
    Session,
    SessionStatus,
    utc_now,
)
from bunsui_core.store.base import Store, update_session
from bunsui_core.store.patient import PatientStore

ProgressCallback = Callable[[str], None]

MESSAGE_TAIL_CHARS = 2000
SATISFIED = frozenset({RunStatus.COMPLETED, RunStatus.SKIPPED})
"""A dependency is satisfied when it completed here or succeeded in the session rerun."""


def check_runnable(pipeline: Pipeline) -> None:
    """Refuse, before any session exists, a pipeline the local engine cannot run."""
    foreign = [
        f"{job.job_id}/{op.operation_id} ({op.config.operation_type})"
        for job in pipeline.jobs
        for op in job.operations
        if op.config.operation_type not in LOCAL_ARGV
    ]
    if foreign:
        runnable = ", ".join(f"`{t}`" for t in LOCAL_ARGV)
        raise EngineError(
            f"the local engine runs only {runnable} operations; these need the aws backend: "
            + ", ".join(foreign),
            code=ErrorCode.ENGINE_UNSUPPORTED,
            details={"operations": foreign},
        )
    check_project_runnable(pipeline)


def memory_enforcer(setting: str) -> CgroupHost | None:
    """The cgroup host that caps jobs' memory, or None when the watchdog does it.

    `auto` takes the best this host allows; naming a cgroup mechanism it does not allow is
    ENGINE_UNSUPPORTED rather than a silent fallback.
    """
    if setting == MemoryEnforcement.WATCHDOG:
        return None
    forced = None if setting == "auto" else MemoryEnforcement(setting)
    host = discover(forced)
    if forced is not None and host is None:
        raise EngineError(
            f"memory_enforcement {setting} is not available here (no writable {setting} "
            "memory controller); use auto or watchdog",
            code=ErrorCode.ENGINE_UNSUPPORTED,
            details={"memory_enforcement": setting},
        )
    return host


class _JobRecords:
    """A job's run records, stored together at the moments that must be durable: a process
    started (its pid lets a runner-loss check kill it), an attempt failed, the job ended.
    So a job that succeeds costs two transactions, not a write per record."""

    def __init__(self, store: Store, job_run: JobRun) -> None:
        self.store = store
        self.job_run = job_run
        self._job_unsaved = True
        self._operations_unsaved: dict[str, OperationRun] = {}

    def job(self, job_run: JobRun) -> None:
        """The job's new state, stored at the next save."""
        self.job_run, self._job_unsaved = job_run, True

    def operation(self, op_run: OperationRun) -> None:
        """An operation's new state (the object as it is at the next save)."""
        self._operations_unsaved[op_run.operation_id] = op_run

    def save(self) -> None:
        """Store every unsaved record in one transaction."""
        self.save_together([self])

    @staticmethod
    def save_together(jobs: list[_JobRecords]) -> None:
        """Store the unsaved records of several jobs in one transaction (jobs that ended in
        the same scheduler tick)."""
        if not jobs:
            return
        jobs[0].store.put_runs(
            job_runs=[r.job_run for r in jobs if r._job_unsaved],
            operation_runs=[op for r in jobs for op in r._operations_unsaved.values()],
        )
        for records in jobs:
            records._job_unsaved = False
            records._operations_unsaved.clear()


_ACTIVE: set[LocalEngine] = set()
_ACTIVE_LOCK = threading.Lock()


def cancel_active_runs() -> list[str]:
    """Cancel every session this process is running in the foreground; returns their ids.

    Safe to call from a signal handler (Ctrl-C, SIGTERM during `pipeline run --wait`): it only
    flags the engines, whose scheduling loops kill every job's process tree within one poll.
    """
    with _ACTIVE_LOCK:
        engines = list(_ACTIVE)
    for engine in engines:
        engine.cancel()
    return sorted(e.session_id for e in engines if e.session_id)


class LocalEngine:
    """Drives one session from queued to a terminal status; one instance per run."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        progress: ProgressCallback | None = None,
        poll_seconds: float = 0.2,
        heartbeat_seconds: float = 2.0,
    ) -> None:
        self.store: Store = PatientStore(store)
        self.settings = settings
        self.progress = progress or (lambda _message: None)
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._live = LiveProcessGroups()
        self._stop_reason: SessionStatus | None = None
        self._cancel_requested = threading.Event()
        self._cgroups: CgroupHost | None = None
        self._shims: ShimServer | NativeShim | None = None
        self._passable: dict[tuple[str, ...], dict[str, str]] = {}
        self.session_id: str | None = None
        self._next_heartbeat = self._next_store_check = 0.0

    def cancel(self) -> None:
        """Ask the running session to stop as cancelled: every job's tree is killed at the
        next poll, jobs and the session end `cancelled`. Signal-handler safe."""
        self._cancel_requested.set()

    def run(self, session_id: str) -> Session:
        """Claim the session, run every job, record the outcome; returns the final session.

        An interrupt (Ctrl-C on a foreground run) or `cancel()` kills every job's process tree
        and cancels the session.
        """
        session = self.store.get_session(session_id)
        if session is None:
            raise NotFoundError(
                f"session {session_id} not found", details={"session_id": session_id}
            )
        version = self.store.get_pipeline(session.pipeline_id, session.pipeline_version)
        if version is None:
            raise NotFoundError(
                f"pipeline {session.pipeline_id} v{session.pipeline_version} not found",
                details={"pipeline_id": session.pipeline_id},
            )
        # A rerun runs the exact version plus the overrides recorded on its session.
        pipeline = apply_overrides(version.pipeline, session.config_overrides)
        check_runnable(pipeline)
        self._cgroups = memory_enforcer(self.settings.engine.memory_enforcement)
        # Orphans of a job (setsid, double fork) come back to us, never to init.
        set_child_subreaper()
        session = self._claim(session)
        self.session_id = session_id
        cwd = Path(version.source).parent if version.source else None
        with _ACTIVE_LOCK:
            _ACTIVE.add(self)
        # A job's parent: the native shim (one small exec) or a clone of the Python one.
        self._shims = load_native_shim() or ShimServer.start()
        try:
            outcome = self._schedule(session, pipeline, cwd)
        except KeyboardInterrupt:
            self._finish(session_id, SessionStatus.CANCELLED, pipeline)
            raise
        except Exception:
            # The store failed mid-run: the session ends `failed` if it still can be written,
            # not `running` until someone notices this runner is gone.
            with contextlib.suppress(Exception):
                self._finish(session_id, SessionStatus.FAILED, pipeline)
            raise
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self)
            if isinstance(self._shims, ShimServer):
                self._shims.close()
        return self._finish(session_id, outcome, pipeline)

    def _claim(self, session: Session) -> Session:
        now = utc_now()
        runner = RunnerInfo(
            pid=os.getpid(), host=socket.gethostname(), started_at=now, heartbeat_at=now
        )
        return update_session(
            self.store,
            session.session_id,
            lambda s: s.model_copy(
                update={"status": SessionStatus.RUNNING, "started_at": now, "runner": runner}
            ),
        )

    def _schedule(self, session: Session, pipeline: Pipeline, cwd: Path | None) -> SessionStatus:
        """Start ready jobs up to the concurrency cap until nothing more can run."""
        jobs = {job.job_id: job for job in pipeline.jobs}
        edges = {job_id: job.dependencies for job_id, job in jobs.items()}
        order = topological_order(edges)
        recorded = {r.job_id: r for r in self.store.list_job_runs(session.session_id)}
        runs: dict[str, JobRun] = {}
        for job_id in order:
            # Jobs a rerun skips were recorded as skipped when it was created: keep them.
            if job_id in session.skipped_jobs and job_id in recorded:
                runs[job_id] = recorded[job_id]
            else:
                runs[job_id] = JobRun(session_id=session.session_id, job_id=job_id)
        self.store.put_runs(job_runs=[r for r in runs.values() if r.job_id not in recorded])
        # Made once here, not per job: each job only adds its own directories below.
        self.settings.pipeline_state_dir(session.pipeline_id).mkdir(parents=True, exist_ok=True)
        (self.settings.session_dir(session.session_id) / "jobs").mkdir(parents=True, exist_ok=True)
        pending = {j: None for j, r in runs.items() if r.status is RunStatus.PENDING}
        blocked = True
        deadline = (
            (time.monotonic() + pipeline.timeout_seconds) if pipeline.timeout_seconds else None
        )
        self._next_heartbeat = time.monotonic() + self.heartbeat_seconds
        self._next_store_check = time.monotonic() + self.poll_seconds
        self.progress(f"session {session.session_id}: running {len(order)} jobs")
        running: dict[Future[_JobRecords], str] = {}
        interrupted = False
        with ThreadPoolExecutor(max_workers=pipeline.max_concurrent_jobs) as pool:
            try:
                while True:
                    if self._stop_reason is None:
                        if blocked:
                            self._mark_upstream_failed(runs, edges, pending)
                        self._start_ready(
                            pool,
                            session,
                            cwd,
                            cap=pipeline.max_concurrent_jobs,
                            jobs=jobs,
                            runs=runs,
                            pending=pending,
                            running=running,
                        )
                    if not running:
                        break
                    # Wakes as soon as a job ends; the timeout only paces the checks below.
                    done, _ = wait(running, timeout=self.poll_seconds, return_when=FIRST_COMPLETED)
                    blocked = self._record_ended(done, running, runs)
                    self._check_external_stop(session.session_id, deadline)
            except KeyboardInterrupt:
                # Kill before the pool's exit waits for its threads: they wait for their jobs.
                self._stop(SessionStatus.CANCELLED)
                interrupted = True
            except Exception:
                # The store failed for good (a full disk, say): this runner is about to die,
                # and no job may run on with nobody to record its end. Killed first, the
                # pool's exit does not wait for them; then their ends are tried once more.
                self._stop(SessionStatus.FAILED)
                self._record_after_failure(running, runs)
                raise
        self._record_ended(list(running), running, runs)  # jobs an interrupt left unrecorded
        if self._stop_reason is not None:
            self._close_unstarted(runs, RunStatus.CANCELLED, "session stopped before the job ran")
        if interrupted:
            raise KeyboardInterrupt
        if self._stop_reason is not None:
            return self._stop_reason
        failed = any(r.status not in SATISFIED for r in runs.values())
        return SessionStatus.FAILED if failed else SessionStatus.COMPLETED

    def _record_ended(
        self,
        done: Iterable[Future[_JobRecords]],
        running: dict[Future[_JobRecords], str],
        runs: dict[str, JobRun],
    ) -> bool:
        """Store the ends of these finished jobs in one transaction; True when one of them
        did not succeed (its dependents may now be blocked)."""
        done = list(done)
        ended = [future.result() for future in done]
        _JobRecords.save_together(ended)
        for future in done:  # only once stored: a failed save leaves them to be tried again
            del running[future]
        for records in ended:
            runs[records.job_run.job_id] = records.job_run
            self.progress(f"job {records.job_run.job_id}: {records.job_run.status}")
        return any(r.job_run.status not in SATISFIED for r in ended)

    def _record_after_failure(
        self, running: dict[Future[_JobRecords], str], runs: dict[str, JobRun]
    ) -> None:
        """Once every job is killed, store the ends of all of them and close the jobs never
        started, best effort: the failure being raised already says what went wrong."""
        wait(running)
        lost = []
        for future, job_id in list(running.items()):
            if (error := future.exception()) is not None:  # records went with its thread
                del running[future]
                runs[job_id] = runs[job_id].model_copy(
                    update={
                        "status": RunStatus.FAILED,
                        "finished_at": utc_now(),
                        "error_summary": f"{job_id}: the engine failed: {error}",
                    }
                )
                lost.append(runs[job_id])
        # Each write on its own: one that fails must not keep the others from being tried.
        for write in (
            lambda: self._record_ended(list(running), running, runs),
            lambda: self.store.put_runs(job_runs=lost),
            lambda: self._close_unstarted(
                runs, RunStatus.CANCELLED, "the engine stopped on an error"
            ),
        ):
            with contextlib.suppress(Exception):
                write()

    def _start_ready(
        self,
        pool: ThreadPoolExecutor,
        session: Session,
        cwd: Path | None,
        *,
        cap: int,
        jobs: dict[str, Job],
        runs: dict[str, JobRun],
        pending: dict[str, None],
        running: dict[Future[_JobRecords], str],
    ) -> None:
        """Submit every pending job whose dependencies are satisfied, up to the concurrency cap
        (`pending` holds only jobs not started, so a long finished head costs nothing)."""
        started = []
        for job_id in pending:
            if len(running) >= cap:
                break
            job = jobs[job_id]
            if all(runs[d].status in SATISFIED for d in job.dependencies):
                runs[job_id].status = RunStatus.RUNNING
                upstream = {d: runs[d].workdir or "" for d in job.dependencies}
                running[pool.submit(self._run_job, session, job, cwd, upstream)] = job_id
                started.append(job_id)
        for job_id in started:
            del pending[job_id]

    def _check_external_stop(self, session_id: str, deadline: float | None) -> None:
        """Cancel requested from elsewhere, or the pipeline's timeout passed: kill everything.
        The store (heartbeat; a `session cancel` from another process) is used once per poll
        at most, however many jobs end in between."""
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self.store.touch_heartbeat(session_id, utc_now())
            self._next_heartbeat = now + self.heartbeat_seconds
        if self._stop_reason is not None:
            return
        if self._cancel_requested.is_set():
            self._stop(SessionStatus.CANCELLED)
            return
        if deadline is not None and time.monotonic() >= deadline:
            self.store.add_error(
                ErrorRecord(
                    session_id=session_id,
                    kind=FailureKind.SESSION_TIMEOUT,
                    message="Session exceeded the pipeline's timeout_seconds and was stopped",
                )
            )
            self._stop(SessionStatus.TIMEOUT)
            return
        if now < self._next_store_check:
            return
        self._next_store_check = now + self.poll_seconds
        current = self.store.get_session(session_id)
        if current is not None and current.status is SessionStatus.CANCELLED:
            self._stop(SessionStatus.CANCELLED)

    def _stop(self, reason: SessionStatus) -> None:
        self._stop_reason = reason
        self._live.kill_all()
        self.progress(f"stopping: {reason}")

    def _mark_upstream_failed(
        self, runs: dict[str, JobRun], edges: dict[str, list[str]], pending: dict[str, None]
    ) -> None:
        """A pending job whose dependency ended without completing can never run; all such
        jobs are stored together (one transaction)."""
        blocked = {
            RunStatus.FAILED,
            RunStatus.TIMEOUT,
            RunStatus.UPSTREAM_FAILED,
            RunStatus.CANCELLED,
        }
        marked: list[JobRun] = []
        changed = True
        while changed:
            changed = False
            for job_id in list(pending):
                if any(runs[d].status in blocked for d in edges[job_id]):
                    job_run = runs[job_id]
                    job_run.status = RunStatus.UPSTREAM_FAILED
                    job_run.skipped_reason = "a dependency did not complete"
                    job_run.finished_at = utc_now()
                    del pending[job_id]
                    marked.append(job_run)
                    changed = True
        self.store.put_runs(job_runs=marked)
        for job_run in marked:
            self.progress(f"job {job_run.job_id}: upstream_failed")

    def _close_unstarted(self, runs: dict[str, JobRun], status: RunStatus, reason: str) -> None:
        closed = [r for r in runs.values() if r.status is RunStatus.PENDING]
        for job_run in closed:
            job_run.status = status
            job_run.skipped_reason = reason
            job_run.finished_at = utc_now()
        self.store.put_runs(job_runs=closed)

    def _run_job(
        self, session: Session, job: Job, cwd: Path | None, upstream: dict[str, str]
    ) -> _JobRecords:
        """Run a job's operations in order; the first failure ends the job. Returns its
        records, the job's end not yet stored.

        `upstream` maps each dependency to its work dir (an earlier session's for a job a
        rerun skipped), so downstream jobs always read the outputs that exist.
        """
        jobs_dir = self.settings.session_dir(session.session_id) / "jobs"
        workdir = jobs_dir / job.job_id / "work"
        job_run = JobRun(
            session_id=session.session_id,
            job_id=job.job_id,
            status=RunStatus.RUNNING,
            started_at=utc_now(),
            workdir=str(workdir),
        )
        # Stored `running` with its first process's start, in the same transaction.
        records = _JobRecords(self.store, job_run)
        self.progress(f"job {job.job_id}: running")
        try:
            for directory in (workdir.parent, workdir):
                directory.mkdir(exist_ok=True)
            status = self._run_operations(
                session, job, cwd, workdir=workdir, upstream=upstream, records=records
            )
        except Exception as exc:
            # Its directories, logs or plan could not be made (a full disk, say): the job
            # fails with the reason on record instead of staying `running` forever.
            self._record_broken_job(session, job, exc)
            status = RunStatus.FAILED
        job_run = job_run.model_copy(
            update={
                "status": status,
                "finished_at": utc_now(),
                "error_summary": None
                if status is RunStatus.COMPLETED
                else f"{job.job_id}: {status}",
            }
        )
        records.job(job_run)
        return records  # stored by the scheduler with the other jobs that ended with it

    def _run_operations(
        self,
        session: Session,
        job: Job,
        cwd: Path | None,
        *,
        workdir: Path,
        upstream: dict[str, str],
        records: _JobRecords,
    ) -> RunStatus:
        """The job's operations in order; after the first that does not complete, the rest
        are skipped. Returns the job's status."""
        status = RunStatus.COMPLETED
        for operation in job.operations:
            if status is not RunStatus.COMPLETED:
                records.operation(
                    OperationRun(
                        session_id=session.session_id,
                        job_id=job.job_id,
                        operation_id=operation.operation_id,
                        status=RunStatus.SKIPPED,
                    )
                )
                continue
            env = self._environment(session, job, operation, workdir, upstream)
            status = self._run_operation(
                session, job, operation, env, cwd or workdir, workdir=workdir, records=records
            )
        return status

    def _record_broken_job(self, session: Session, job: Job, exc: Exception) -> None:
        """The error record of a job the engine itself could not run."""
        self.store.add_error(
            ErrorRecord(
                session_id=session.session_id,
                job_id=job.job_id,
                kind=FailureKind.SPAWN_FAILED,
                message=f"The engine could not run the job: {type(exc).__name__}: {exc}",
            )
        )

    def _environment(
        self,
        session: Session,
        job: Job,
        operation: Operation,
        workdir: Path,
        upstream: dict[str, str],
    ) -> dict[str, str]:
        config = operation.config
        state_dir = self.settings.pipeline_state_dir(session.pipeline_id)  # made by _schedule
        pass_env = (*self.settings.engine.pass_env, *config.pass_env)
        if pass_env not in self._passable:
            # Matched once per run and pattern set, not per job against every variable.
            self._passable[pass_env] = passed_through(os.environ, [*BASE_NAMES, *pass_env])
        return job_environment(
            self._passable[pass_env],
            pass_env=pass_env,
            pipeline_env={str(k): str(v) for k, v in (config.parameters.get("env") or {}).items()},
            run_variables={
                "BUNSUI_SESSION_ID": session.session_id,
                "BUNSUI_PIPELINE_ID": session.pipeline_id,
                "BUNSUI_JOB_ID": job.job_id,
                "BUNSUI_OPERATION_ID": operation.operation_id,
                "BUNSUI_PARAMS": json.dumps(config.process_parameters(), sort_keys=True),
                "BUNSUI_WORKDIR": str(workdir),
                "BUNSUI_UPSTREAM_DIRS": json.dumps(upstream, sort_keys=True),
                "BUNSUI_STATE_DIR": str(state_dir),
            },
        )

    def _run_operation(
        self,
        session: Session,
        job: Job,
        operation: Operation,
        env: dict[str, str],
        cwd: Path,
        *,
        workdir: Path,
        records: _JobRecords,
    ) -> RunStatus:
        """Attempt the operation up to its retry policy's max_attempts."""
        config = operation.config
        max_attempts = config.retry.max_attempts if config.retry else 1
        # Beside the work dir, not in a directory of their own: each new inode costs (on an
        # ext4 where files come and go, a scan of the recently freed ones) a third of a short
        # job's engine CPU, and a job needs only its two dirs and two logs.
        logs = workdir.parent
        op_run = OperationRun(
            session_id=session.session_id,
            job_id=job.job_id,
            operation_id=operation.operation_id,
            status=RunStatus.RUNNING,
        )
        retry_state = self._rerun_state(session, job.job_id)
        for attempt in range(1, max_attempts + 1):
            delay = config.retry.delay_before(attempt) if config.retry else 0.0
            if delay and not self._sleep_unless_stopped(delay):
                break
            if self._stop_reason is not None:
                break
            plan = plan_attempt(
                operation,
                project_dir=cwd,
                workdir=workdir,
                attempt=attempt,
                retry_state=retry_state,
            )
            spec = ProcessSpec(
                argv=plan.argv,
                env={**env, **plan.env, "BUNSUI_ATTEMPT": str(attempt)},
                cwd=plan.cwd or cwd,
                stdout_path=logs / f"{operation.operation_id}.{attempt}.stdout",
                stderr_path=logs / f"{operation.operation_id}.{attempt}.stderr",
                memory_limit_mb=config.memory_limit_mb,
                timeout_seconds=config.timeout_seconds,
                log_max_bytes=self.settings.engine.log_max_bytes,
                label=f"{session.session_id}-{job.job_id}"[:96],
            )
            started_at = utc_now()

            def record_start(
                pid: int, attempt: int = attempt, started_at: str = started_at
            ) -> None:
                # Stored with its pid, so a runner-loss check can still kill the group.
                op_run.attempts.append(
                    OperationAttempt(
                        attempt=attempt, status=RunStatus.RUNNING, started_at=started_at, pid=pid
                    )
                )
                records.operation(op_run)
                records.save()

            result = run_process(
                spec, self._live, on_start=record_start, cgroups=self._cgroups, shims=self._shims
            )
            facts = self._collect(
                session, job, operation, plan, spec=spec, result=result, project_dir=cwd
            )
            record = self._attempt_record(attempt, started_at, spec, result, facts)
            if op_run.attempts and op_run.attempts[-1].attempt == attempt:
                op_run.attempts[-1] = record
            else:
                op_run.attempts.append(record)
            op_run.status = record.status
            records.operation(op_run)
            if record.status is RunStatus.COMPLETED:
                return RunStatus.COMPLETED  # stored with the job's end or next operation's start
            records.save()  # before any retry's backoff and the error records
            # A later attempt continues from this one: dbt reruns only what did not succeed.
            if plan.target_dir is not None and facts.nodes:
                retry_state = plan.target_dir
            self._record_error(session, job, operation, record, result, argv=spec.argv, facts=facts)
            self.progress(
                f"job {job.job_id}/{operation.operation_id}: attempt {attempt} {record.status}"
            )
        if op_run.status is RunStatus.RUNNING or self._stop_reason is not None:
            op_run.status = RunStatus.CANCELLED
            records.operation(op_run)
        return op_run.status

    def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Retry backoff that a cancel interrupts; False when the session is stopping."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self._stop_reason is not None:
                return False
            time.sleep(min(self.poll_seconds, end - time.monotonic()))
        return self._stop_reason is None

    def _rerun_state(self, session: Session, job_id: str) -> Path | None:
        """The dbt target directory a rerun continues from: the last attempt of this job in
        the session being rerun, when that job did not complete (a `full` rerun starts over)."""
        if session.parent_session_id is None or session.rerun_strategy == "full":
            return None
        previous = unfinished_dbt_attempt(self.store, session.parent_session_id, job_id)
        return Path(previous.artifacts["run_results"]).parent if previous else None

    def _collect(
        self,
        session: Session,
        job: Job,
        operation: Operation,
        plan: AttemptPlan,
        *,
        spec: ProcessSpec,
        result: ProcessResult,
        project_dir: Path,
    ) -> AttemptFacts:
        """What a project job's attempt left behind (dbt nodes and artifacts)."""
        if plan.target_dir is None:
            return AttemptFacts()
        artifacts = getattr(parameters_of(operation), "artifacts_dir", None)
        return collect_attempt(
            plan,
            succeeded=result.succeeded,
            stdout_path=spec.stdout_path,
            artifacts_dir=project_dir / artifacts / session.session_id / job.job_id
            if artifacts
            else None,
        )

    def _attempt_record(
        self,
        attempt: int,
        started_at: str,
        spec: ProcessSpec,
        result: ProcessResult,
        facts: AttemptFacts,
    ) -> OperationAttempt:
        if result.succeeded:
            status = RunStatus.COMPLETED
        elif result.timed_out:
            status = RunStatus.TIMEOUT
        elif self._stop_reason is not None:
            status = RunStatus.CANCELLED
        else:
            status = RunStatus.FAILED
        return OperationAttempt(
            attempt=attempt,
            status=status,
            started_at=started_at,
            finished_at=utc_now(),
            pid=result.pid,
            exit_code=result.exit_code,
            signal=result.signal,
            peak_rss_mb=result.peak_rss_mb,
            memory_limit_mb=spec.memory_limit_mb,
            memory_enforcement=result.memory_enforcement,
            oom_killed=result.oom_killed,
            timeout_seconds=int(spec.timeout_seconds) if spec.timeout_seconds else None,
            elapsed_seconds=result.elapsed_seconds,
            stdout_path=str(spec.stdout_path),
            stderr_path=str(spec.stderr_path),
            stdout_tail=result.stdout_tail,
            stderr_tail=result.stderr_tail,
            nodes=facts.nodes,
            artifacts=facts.artifacts,
        )

    def _record_error(
        self,
        session: Session,
        job: Job,
        operation: Operation,
        record: OperationAttempt,
        result: ProcessResult,
        *,
        argv: list[str],
        facts: AttemptFacts,
    ) -> None:
        """Keep the facts of a failed attempt for the analyzer, retried or not; a dbt run
        gives one error per failed node."""
        if record.status is RunStatus.CANCELLED:
            return
        kind, headline = describe_failure(record, result)
        message = headline
        if record.stderr_tail.strip():
            message += "\n" + record.stderr_tail.strip()[-MESSAGE_TAIL_CHARS:]
        context = {
            key: value
            for key, value in {
                "exit_code": record.exit_code,
                "signal": record.signal,
                "signal_name": signal.Signals(record.signal).name if record.signal else None,
                "peak_rss_mb": record.peak_rss_mb,
                "memory_limit_mb": record.memory_limit_mb,
                "memory_enforcement": record.memory_enforcement,
                "oom_killed": record.oom_killed or None,
                "timeout_seconds": record.timeout_seconds,
                "elapsed_seconds": record.elapsed_seconds,
                "command": argv,
            }.items()
            if value is not None
        }
        reports = (
            [(report.message, {**context, **report.context}) for report in facts.failures]
            if facts.failures is not None and kind is FailureKind.EXIT_NONZERO
            else [(message, context)]
        )
        for text, facts_of_error in reports:
            self.store.add_error(
                ErrorRecord(
                    session_id=session.session_id,
                    job_id=job.job_id,
                    operation_id=operation.operation_id,
                    attempt=record.attempt,
                    kind=kind,
                    message=text,
                    context=facts_of_error,
                )
            )

    def _finish(self, session_id: str, outcome: SessionStatus, pipeline: Pipeline) -> Session:
        """Write the terminal status, unless someone else already ended the session."""
        runs = self.store.list_job_runs(session_id)
        failed = [
            r.job_id
            for r in sorted(runs, key=lambda r: r.job_id)
            if r.status in {RunStatus.FAILED, RunStatus.TIMEOUT}
        ]
        errors = self.store.list_errors(session_id)
        summary = summarize_error(errors[-1]) if errors else None

        def finish(current: Session) -> Session:
            if current.status.is_terminal:
                return current
            return current.model_copy(
                update={
                    "status": outcome,
                    "finished_at": utc_now(),
                    "failed_jobs": failed,
                    "error_summary": summary if outcome is not SessionStatus.COMPLETED else None,
                }
            )

        final = update_session(self.store, session_id, finish)
        record_rerun_outcome(self.store, final)
        self.progress(f"session {session_id}: {final.status} ({pipeline.name})")
        return final


SUMMARY_CHARS = 240


def summarize_error(error: ErrorRecord) -> str:
    """One line for listings: where it failed, the engine's headline, the last stderr line."""
    lines = [line.strip() for line in error.message.splitlines() if line.strip()]
    where = "/".join(part for part in (error.job_id, error.operation_id) if part)
    text = lines[0] if lines else error.kind.value
    if len(lines) > 1:
        text += f": {lines[-1]}"
    text = f"{where}: {text}" if where else text
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def describe_failure(record: OperationAttempt, result: ProcessResult) -> tuple[FailureKind, str]:
    """The engine's plain statement of what happened, with the numbers an analyzer needs."""
    limits = ""
    if record.memory_limit_mb:
        limits = f" (memory limit {record.memory_limit_mb} MiB, peak RSS {record.peak_rss_mb} MiB)"
    if result.spawn_error:
        return FailureKind.SPAWN_FAILED, f"Command could not be started: {result.spawn_error}"
    if result.lost_report:
        return FailureKind.EXIT_NONZERO, (
            "Command ended without a readable report from its shim (the job garbled or filled "
            "the shim's status pipe); the attempt counts as failed"
        )
    if result.timed_out:
        return FailureKind.TIMEOUT, (
            f"Command timed out after {record.timeout_seconds} seconds and was killed{limits}"
        )
    if result.oom_killed:
        # ECS says `OutOfMemoryError: Container killed due to memory usage`; exit 137 = 128+9.
        return FailureKind.KILLED_BY_SIGNAL, (
            "OutOfMemoryError: Command killed due to memory usage (out of memory, exit 137, "
            f"SIGKILL by {record.memory_enforcement}){limits}"
        )
    if record.signal:
        name = signal.Signals(record.signal).name
        return FailureKind.KILLED_BY_SIGNAL, f"Command was killed by signal {name}{limits}"
    return FailureKind.EXIT_NONZERO, f"Command exited with code {record.exit_code}{limits}"
