"""Evaluation results for analyze: a thin facade over cruijff_kit.artifacts, the one reader of
inspect-ai logs (so analyze counts exactly what `ck run` counts as done)."""
from __future__ import annotations

from ..artifacts import EvalResult, EvalScan, epoch_of, read_result, read_sample_values, scan_run, task_name

__all__ = ["EvalResult", "EvalScan", "epoch_of", "read_result", "read_sample_values", "scan_run", "task_name"]
