"""The Step Functions engine: pipelines compiled to ASL, executions folded back into runs.

asl.py      compile_pipeline, execution_input, ensure_state_machine (pure but the last)
history.py  fold_history: GetExecutionHistory events -> job/operation runs, error records
engine.py   StepFunctionsEngine: start, sync, stop, job_logs (the only module with boto3)
logs.py     log_tail over CloudWatch Logs
"""

from __future__ import annotations

from bunsui_core._lazy import lazy_exports

__getattr__ = lazy_exports(
    __name__,
    {
        "FoldedHistory": "history",
        "LogTail": "logs",
        "StateMachineRef": "asl",
        "StepFunctionsEngine": "engine",
        "compile_pipeline": "asl",
        "ensure_state_machine": "asl",
        "execution_input": "asl",
        "execution_plan": "asl",
        "fold_history": "history",
        "log_tail": "logs",
        "state_machine_name": "asl",
    },
)

__all__ = [
    "FoldedHistory",
    "LogTail",
    "StateMachineRef",
    "StepFunctionsEngine",
    "compile_pipeline",
    "ensure_state_machine",
    "execution_input",
    "execution_plan",
    "fold_history",
    "log_tail",
    "state_machine_name",
]
