"""Design-time warnings: plans that run fine but would answer the question wrongly.

- the evaluation split shares rows with the training split (the score measures recall, not learning);
- the evaluation split has fewer than MIN_EVAL_ROWS rows (its accuracy has a standard error of
  0.09 or more: differences between runs drown in noise);
- a run's learning-rate warmup is WARMUP_FRACTION or more of its optimizer steps (with a fixed
  warmup, runs with bigger batches spend more of their training warming up: batch size gets
  confounded with warmup).

Also `steps_per_run`, the optimizer steps torchtune 0.6.1 will take, for the runs table.
Pure Python (pyarrow only for parquet data, imported when needed): `ck design` starts fast.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .model import Experiment, Run

MIN_EVAL_ROWS = 30
WARMUP_FRACTION = 0.25
DEFAULT_WARMUP_STEPS = 100  # finetune.config.DEFAULTS["lr_warmup_steps"]
MAX_DATASET_BYTES = 200_000_000  # larger files are not read at design time


@dataclass(frozen=True)
class DesignWarning:
    code: str  # eval_split_overlaps_train | eval_split_small | eval_split_missing | warmup_fraction | no_steps
    #          | model_missing | dataset_missing | task_missing | checkpoint_missing | tpe_without_results
    message: str
    run: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def read_split(dataset: str | Path, split: str) -> list[dict] | None:
    """Rows of one split of a JSON file {"train": [...], ...} or a directory of <split>.parquet files;
    None when the data is missing, too big to read at design time, or has no such split."""
    p = Path(dataset).expanduser()
    try:
        if p.is_dir():
            f = p / f"{split}.parquet"
            if not f.is_file() or f.stat().st_size > MAX_DATASET_BYTES:
                return None
            import pyarrow.parquet as pq

            return pq.read_table(f).to_pylist()
        if p.suffix == ".json" and p.is_file() and p.stat().st_size <= MAX_DATASET_BYTES:
            data = json.loads(p.read_text(encoding="utf-8"))
            rows = data.get(split) if isinstance(data, dict) else None
            return rows if isinstance(rows, list) else None
    except (OSError, ValueError, ImportError):
        return None
    except Exception as e:  # pyarrow's errors do not share a base class we can import cheaply
        if type(e).__module__.startswith("pyarrow"):
            return None
        raise
    return None


def _row_key(row) -> str:
    """What makes two rows the same example: the input, else the whole row."""
    if isinstance(row, dict) and "input" in row:
        return json.dumps(row["input"], sort_keys=True)
    return json.dumps(row, sort_keys=True, default=str)


def _config_int(exp: Experiment, key: str, default: int | None, run: Run | None = None,
                setup_key: str | None = None) -> int | None:
    """A setting's effective value: the run's own when the plan model has per-run settings
    (Experiment.value of the settings schema), else the plan's Configuration line."""
    value = getattr(exp, "value", None)
    if value is not None and setup_key is not None:
        v = value(setup_key, run)
        return default if v is None else int(v)
    text = exp.config_value(key)
    if text is None or text.strip() in ("", "-"):
        return default
    try:
        return int(float(text))
    except ValueError:
        return default  # the scaffold reports the bad value with its line


def world_size(exp: Experiment) -> int:
    """Data-parallel ranks of a run: GPUs x nodes, or CPU ranks when training on CPU."""
    if exp.gpus > 0:
        return exp.gpus * max(_config_int(exp, "Nodes", 1, setup_key="num_nodes") or 1, 1)
    return max(_config_int(exp, "CPU ranks", 1, setup_key="num_cpu_ranks") or 1, 1)


def steps_per_run(exp: Experiment, run: Run, train_rows: int | None) -> int | None:
    """Optimizer steps torchtune 0.6.1 takes for `run` (None for control runs or unknown data).

    Its dataloader drops the last partial batch; each rank sees ceil(rows / ranks) rows;
    steps per epoch = batches // gradient accumulation, capped by max_steps_per_epoch.
    """
    if not run.finetuned or train_rows is None:
        return None
    batch = _config_int(exp, "Batch size", None, run, "batch_size") or run.batch_size or exp.batch_size
    accum = max(_config_int(exp, "Gradient accumulation steps", 1, run, "gradient_accumulation_steps") or 1, 1)
    per_rank = math.ceil(train_rows / world_size(exp))
    per_epoch = (per_rank // max(batch, 1)) // accum
    cap = _config_int(exp, "Max steps per epoch", None, run, "max_steps_per_epoch")
    if cap is not None and cap < per_epoch:
        per_epoch = cap
    return per_epoch * (_config_int(exp, "Epochs", None, run, "epochs") or exp.epochs)


def steps_by_run(exp: Experiment) -> dict[str, int | None]:
    """Optimizer steps of every run (None: a control, or data not readable now), for the runs table."""
    train = read_split(exp.dataset, "train") if exp.dataset else None
    n_train = len(train) if train is not None else None
    return {run.name: steps_per_run(exp, run, n_train) for run in exp.runs}


def eval_splits(exp: Experiment) -> list[str]:
    """The splits the plan evaluates on (per task when the plan model has them; default test)."""
    per_task = getattr(exp, "eval_split", None)
    if per_task is not None:
        return sorted({per_task(ev) for ev in exp.evaluations}) or [per_task_default(exp)]
    return [(exp.config_value("Evaluation split") or "test").strip() or "test"]


def per_task_default(exp: Experiment) -> str:
    return str(exp.value("eval_split") or "test")


def design_warnings(exp: Experiment) -> list[DesignWarning]:
    out: list[DesignWarning] = []
    if exp.search is not None and exp.search.algorithm == "tpe":
        # TPE models good and bad trials from results; at design time there are none, so its draws
        # are its random start-up ones: the plan must not read as more than it is
        out.append(DesignWarning(
            "tpe_without_results",
            "TPE samples these trials when the plan is designed, before any result exists: they are its "
            "random start-up draws (as with asha), and the rungs prune them as ASHA does. For TPE that "
            "learns from results, run this search, then design a follow-up search around its best region"))
    train = read_split(exp.dataset, "train") if exp.dataset else None
    train_keys = {_row_key(r) for r in train} if train is not None else None
    for split in eval_splits(exp):
        rows = read_split(exp.dataset, split) if exp.dataset else None
        if rows is None:
            if train is not None and split != "train":  # the data is readable, the split is not in it
                out.append(DesignWarning(
                    "eval_split_missing", f"the dataset has no evaluation split '{split}': evaluations will fail"))
            continue
        if len(rows) < MIN_EVAL_ROWS:
            out.append(DesignWarning(
                "eval_split_small",
                f"evaluation split '{split}' has {len(rows)} rows (< {MIN_EVAL_ROWS}): an accuracy on it has a "
                f"standard error of about {0.5 / math.sqrt(max(len(rows), 1)):.2f}, too coarse to tell runs apart"))
        if train_keys is not None:
            if split == "train":
                shared = len(rows)
            else:
                shared = sum(_row_key(r) in train_keys for r in rows)
            if shared:
                out.append(DesignWarning(
                    "eval_split_overlaps_train",
                    f"evaluation split '{split}' shares {shared} of its {len(rows)} rows with the training split: "
                    "scores on it measure recall of training examples, not learning (evaluate on held-out data, "
                    "e.g. 'Evaluation split: test')"))
    n_train = len(train) if train is not None else None
    for run in exp.finetuned_runs:
        warmup = _config_int(exp, "Warmup steps", DEFAULT_WARMUP_STEPS, run, "lr_warmup_steps")
        steps = steps_per_run(exp, run, n_train)
        if steps == 0:
            out.append(DesignWarning(
                "no_steps", f"run {run.name} takes no optimizer step: {n_train} training rows are fewer than one "
                "batch per rank (torchtune drops the last partial batch)", run=run.name))
            continue
        if steps is None or warmup is None or warmup <= 0:
            continue
        if warmup >= WARMUP_FRACTION * steps:
            pct = 100.0 * warmup / steps
            out.append(DesignWarning(
                "warmup_fraction",
                f"run {run.name}: warmup is {warmup} steps, {pct:.0f}% of its {steps} optimizer steps "
                f"(>= {WARMUP_FRACTION:.0%}); runs that differ in batch size would differ in warmup too "
                f"(set 'Warmup steps' below {max(int(WARMUP_FRACTION * min_steps(exp, n_train)), 1)})",
                run=run.name))
    return out


_REPO_ROOT = Path(__file__).resolve().parents[3]  # task scripts may be named relative to the checkout


def missing_paths(exp: Experiment, exp_dir: str | Path | None = None) -> list[DesignWarning]:
    """Models, the dataset, task scripts and eval-only checkpoints that do not exist here: said at
    design time (a path on a cluster file system may exist only there, so a warning, not an error)."""
    from .eval_only import checkpoint_cell

    base = Path(exp_dir or exp.experiment_dir or ".").expanduser()
    out: list[DesignWarning] = []

    def exists(path: str, relative_to: list[Path]) -> bool:
        p = Path(path).expanduser()
        return any(c.exists() for c in ([p] if p.is_absolute() else [b / p for b in relative_to]))

    used = {r.model for r in exp.runs}
    for name, path in exp.models:
        if name in used and path and not exists(path, [base]):
            out.append(DesignWarning("model_missing", f"model {name!r}: {path} does not exist here"))
    if exp.dataset and not exists(exp.dataset, [base]):
        out.append(DesignWarning("dataset_missing", f"dataset {exp.dataset} does not exist here"))
    for ev in exp.evaluations:
        if ev.script and not exists(ev.script, [base, _REPO_ROOT]):
            out.append(DesignWarning("task_missing", f"task {ev.task!r}: script {ev.script} does not exist here "
                                     "(`ck task new` writes one)"))
        if ev.dataset and not exists(ev.dataset, [base]):
            out.append(DesignWarning("dataset_missing", f"task {ev.task!r}: dataset {ev.dataset} does not exist here"))
    for run in exp.eval_only_runs:
        cell = checkpoint_cell(run)
        if cell and not exists(cell, [base]):
            out.append(DesignWarning("checkpoint_missing", f"eval-only run {run.name!r}: checkpoint {cell} does not "
                                     "exist here", run=run.name))
    return out


def min_steps(exp: Experiment, train_rows: int | None) -> int:
    steps = [s for r in exp.finetuned_runs if (s := steps_per_run(exp, r, train_rows))]
    return min(steps) if steps else 0
