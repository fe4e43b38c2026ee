"""Evaluation results, read through inspect-ai's log API (never from console output).

One result per run x task x epoch: the latest successful log wins; a run whose logs all
failed is reported as failed, and an unreadable file is a problem naming the file, never fatal.
The log's own `eval.task` and its location (EXP/<run>/eval/logs/) say what it is; the epoch comes
from the model path (`.../epoch_<N>`), control runs evaluate the base model (epoch None).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_EPOCH = re.compile(r"epoch_(\d+)")


@dataclass
class EvalResult:
    run_dir: str
    task: str
    epoch: int | None
    status: str
    path: str
    created: str = ""
    scorer: str = ""
    metric: str = ""
    value: float | None = None  # the primary metric: first scorer's accuracy (else its first metric)
    metrics: dict[str, float] = field(default_factory=dict)  # "scorer/metric" -> value
    samples: int = 0
    error: str = ""
    stderr: float | None = None  # the log's own stderr metric for the primary scorer, if it has one
    unscored: int = 0            # samples the primary scorer left unscored (NaN), e.g. no number found
    # per-sample values of the primary scorer (sample id -> float; C/I -> 1/0), averaged over inspect
    # epochs; empty when the scorer's values are not scalars or the samples are unreadable
    sample_values: dict[str, float] = field(default_factory=dict)


def task_name(raw: str) -> str:
    """'pkg/name', 'file.py@name' or 'name' -> 'name'."""
    return raw.split("/")[-1].split("@")[-1]


def epoch_of(model: str, model_args: object) -> int | None:
    found = _EPOCH.findall(f"{model} {model_args}")
    return int(found[-1]) if found else None


def read_result(path: Path, run_dir: str) -> EvalResult:
    """Read one .eval log (header only: results live there). Raises on an unreadable file."""
    from inspect_ai.log import read_eval_log

    log = read_eval_log(str(path), header_only=True)
    ev = log.eval
    res = EvalResult(run_dir=run_dir, task=task_name(str(ev.task)), status=str(log.status),
                     epoch=epoch_of(str(ev.model), ev.model_args), path=str(path),
                     created=str(ev.created or ""))
    if log.error is not None:
        res.error = str(getattr(log.error, "message", log.error)).strip().splitlines()[0][:200]
    if log.results is not None:
        res.samples = int(log.results.completed_samples or 0)
        for score in log.results.scores or []:
            for name, m in (score.metrics or {}).items():
                res.metrics[f"{score.name}/{name}"] = float(m.value)
        first = (log.results.scores or [None])[0]
        if first is not None and first.metrics:
            name = "accuracy" if "accuracy" in first.metrics else next(iter(first.metrics))
            res.scorer, res.metric = first.name, name
            res.value = float(first.metrics[name].value)
            if "stderr" in first.metrics:
                res.stderr = float(first.metrics["stderr"].value)
            res.unscored = int(getattr(first, "unscored_samples", 0) or 0)
    if res.scorer and log.status == "success":
        res.sample_values = read_sample_values(path, res.scorer)
    return res


def read_sample_values(path: Path, scorer: str) -> dict[str, float]:
    """Per-sample values of one scorer from the log's sample summaries (no transcripts are read).
    NaN (unscored) samples are left out, as inspect's metrics leave them out."""
    import math

    from inspect_ai.log import read_eval_log_sample_summaries
    from inspect_ai.scorer import value_to_float

    to_float = value_to_float()
    per_id: dict[str, list[float]] = {}
    for s in read_eval_log_sample_summaries(str(path)):
        score = (s.scores or {}).get(scorer)
        if score is None or isinstance(score.value, (dict, list)):
            continue
        v = float(to_float(score.value))
        if not math.isnan(v):
            per_id.setdefault(str(s.id), []).append(v)
    return {k: sum(v) / len(v) for k, v in per_id.items()}


@dataclass
class EvalScan:
    results: dict[tuple[str, str, int | None], EvalResult] = field(default_factory=dict)
    failed: dict[tuple[str, str, int | None], EvalResult] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def scan_run(exp_dir: Path, run_dir: str, scan: EvalScan) -> None:
    """Add the latest result per task x epoch found under EXP/<run_dir>/eval/logs/ to `scan`."""
    logs = exp_dir / run_dir / "eval" / "logs"
    if not logs.is_dir():
        return
    for path in sorted(logs.rglob("*.eval")):
        try:
            res = read_result(path, run_dir)
        except Exception as exc:  # a corrupt/truncated log must not stop the analysis
            scan.problems.append(f"{path}: not a readable inspect-ai log ({type(exc).__name__}: "
                                 f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no detail'}); "
                                 "skipped - re-run that evaluation or delete the file")
            continue
        key = (run_dir, res.task, res.epoch)
        target = scan.results if res.status == "success" else scan.failed
        old = target.get(key)
        # file names start with inspect's timestamp; `created` breaks ties across renamed files
        if old is None or (res.created, res.path) >= (old.created, old.path):
            target[key] = res
    for key in list(scan.failed):
        if key in scan.results:  # a later retry succeeded, or an old success exists: use it
            del scan.failed[key]
