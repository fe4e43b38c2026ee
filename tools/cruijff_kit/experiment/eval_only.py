"""Eval-only runs: evaluate a model that this experiment does not train.

A runs-table row of type `Eval-only` evaluates, with every task the plan names for it:
  * its `Checkpoint` cell, when given: a Hugging Face model directory (e.g. another experiment's
    epoch_2/) or a torchtune adapter directory (adapter_model.pt + adapter_config.json), which is
    merged into the row's Model (its base) for the evaluation;
  * else the row's Model itself (Resources > Models): a base model without training, like the
    control but any model, and not the baseline the analysis compares with.

The Model also names the prompt format (the chat template training would use), so a checkpoint
is evaluated in the format it was trained in. The eval script is `base.slurm` (no epoch:
the model as it is); `ck run` submits them without a fine-tuning dependency.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CkError
from ..state.artifacts import is_adapter_only
from .model import Experiment, Run

CHECKPOINT_COLUMN = "Checkpoint"


def checkpoint_cell(run: Run) -> str:
    """The run's Checkpoint cell ('' when the table has none or the cell is empty / '-')."""
    for key, value in run.extra:
        if key.strip().lower() == CHECKPOINT_COLUMN.lower():
            value = value.strip()
            return "" if value.lower() in ("", "-", "—", "–", "n/a", "na", "none") else value
    return ""


def problems(runs) -> list[tuple[str, int | None]]:
    """(message, line) for every Checkpoint cell ck would otherwise ignore."""
    out = []
    for run in runs:
        if checkpoint_cell(run) and not run.eval_only:
            out.append((f"run {run.name!r} has a Checkpoint but is of type {run.type.value!r}: only "
                        "Eval-only runs evaluate a given checkpoint (fine-tuned runs evaluate what they "
                        "train, controls their base model)", run.line))
    return out


def is_adapter_dir(path: Path) -> bool:
    return is_adapter_only(path)


def evaluated_model(exp: Experiment, run: Run, exp_dir: Path, summary: str | None = None) -> tuple[str, str | None]:
    """(directory the eval script evaluates, base model for an adapter directory or None).

    Relative checkpoint paths are relative to the experiment directory. A checkpoint that does
    not exist (yet) is an error: scaffolding an evaluation of nothing would fail only on the cluster."""
    base = exp.model_path(run.model)
    cell = checkpoint_cell(run)
    if not cell:
        return base, None
    p = Path(cell).expanduser()
    if not p.is_absolute():
        p = (exp_dir / p)
    if not p.is_dir():
        raise CkError(f"checkpoint of eval-only run {run.name!r} not found: {p}", file=summary, line=run.line,
                      field=CHECKPOINT_COLUMN, hint="a Hugging Face model directory or a torchtune adapter directory")
    p = p.resolve()
    if is_adapter_dir(p):
        return str(p), base
    if not (p / "config.json").is_file():
        raise CkError(f"checkpoint of eval-only run {run.name!r} is neither a Hugging Face model directory "
                      f"(no config.json) nor a torchtune adapter directory (adapter_model.pt + adapter_config.json): {p}",
                      file=summary, line=run.line, field=CHECKPOINT_COLUMN)
    return str(p), None


def runs_from_spec(value, source: str | None, line: int | None, models: list[str], field: str = "eval_only") -> list[Run]:
    """`eval_only:` of a design spec: {run name: {model: NAME, checkpoint: PATH}} (checkpoint
    optional: without it the model itself is evaluated), or the CLI's NAME=MODEL[@CHECKPOINT]."""
    from .model import RunType
    from .naming import check_safe_name

    if value in (None, {}, []):
        return []
    if not isinstance(value, dict):
        raise CkError("eval_only maps a run name to {model, checkpoint}", file=source, line=line, field=field)
    runs = []
    for name, entry in value.items():
        name = str(name)
        check_safe_name(name, file=source, line=line, fld=f"{field}.{name[:40]}")
        entry = {"model": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or set(entry) - {"model", "checkpoint"} or not entry.get("model"):
            raise CkError(f"eval-only run {name!r}: expected {{model: NAME, checkpoint: PATH}}", file=source,
                          line=line, field=f"{field}.{name[:40]}")
        model = str(entry["model"])
        if model not in models:
            raise CkError(f"eval-only run {name!r} names model {model!r}, which is not under models",
                          file=source, line=line, field=f"{field}.{name[:40]}.model",
                          hint="models: " + ", ".join(models))
        ckpt = entry.get("checkpoint")
        extra = ((CHECKPOINT_COLUMN, str(ckpt)),) if ckpt else ()
        runs.append(Run(name=name, model=model, type=RunType.EVAL_ONLY, est_time="N/A", est_disk="N/A",
                        extra=extra))
    return runs
