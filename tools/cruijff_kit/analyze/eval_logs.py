"""Evaluation results for analyze: a thin facade over cruijff_kit.state.artifacts, the one reader of
inspect-ai logs, so analyze counts exactly what `ck run` counts as done: a successful log that is
not the current evaluation of its job (another task or epoch, an older version of the eval
script or task file) is reported as a problem, not as a result."""
from __future__ import annotations

from pathlib import Path

from ..state import artifacts
from ..state.artifacts import (EvalResult, EvalScan, ExpectedEval, epoch_of, read_result, read_sample_values,
                         task_name)
from ..errors import CkError

__all__ = ["EvalResult", "EvalScan", "epoch_of", "read_result", "read_sample_values", "scan_run", "task_name"]

# one plan per scan (analyze scans every run of one experiment into one EvalScan)
_LAST: list = [None, None]  # [(experiment path, id(scan)), expectations]


def _expected(exp_dir: Path, run_dir: str, scan: EvalScan) -> list[ExpectedEval] | None:
    """The evaluations the plan expects in run_dir; None when the plan cannot be read (then
    every readable log counts, as before plans were checked)."""
    key = (str(Path(exp_dir).resolve()), id(scan))
    if _LAST[0] != key:
        from ..state.jobs import expected_evals

        try:
            plan = expected_evals(exp_dir)
        except CkError:
            plan = None
        _LAST[:] = [key, plan]
    plan = _LAST[1]
    return None if plan is None else plan.get(run_dir)


def scan_run(exp_dir: Path, run_dir: str, scan: EvalScan,
             expected: list[ExpectedEval] | None = None) -> None:
    """Add the latest result per task x epoch of EXP/<run_dir>/eval/logs/ to `scan`."""
    if expected is None:
        expected = _expected(Path(exp_dir), run_dir, scan)
    artifacts.scan_run(Path(exp_dir), run_dir, scan, expected)
