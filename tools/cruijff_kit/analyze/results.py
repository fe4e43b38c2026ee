"""Join evaluation results and loss curves per run with the parameters that vary.

A row per run of experiment_summary.md (control runs included). For each task the row's metric
is the one of the last evaluated epoch; `delta` is that minus the control's metric for the task,
`delta_se` its standard error (paired over the items both were scored on when their per-sample
scores are known, significance.py; else from the two SEs, stats.py). The final train loss is the mean over the last epoch
(one step's loss is noise). Everything expected but absent (run directory, .eval log, loss log)
goes to `missing`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..experiment.model import Experiment, Run, RunType
from ..errors import CkError
from ..experiment.naming import run_directories, varying_parameters
from ..experiment.search_progress import stopped_on_purpose
from ..util.numbers import format_float
from . import significance, stats
from .eval_logs import EvalResult, EvalScan, scan_run
from .selection import validation_pairs
from ..state.loss_logs import (last_per_epoch, mean_per_epoch, read_log_values, steps_per_epoch,
                        wandb_offline_summaries)
from ..state import layout
from ..state.ledger import Ledger
from ..state.search import decisions, epoch_val_loss
from ..state.yaml_input import read_mapping_or_empty


@dataclass
class Row:
    run: str
    directory: str
    type: str
    model: str
    params: dict[str, object]
    final_train_loss: float | None = None
    loss_curve: list[tuple[int, float]] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)       # task -> primary metric
    metric_names: dict[str, str] = field(default_factory=dict)           # task -> "scorer/metric"
    epochs: dict[str, int | None] = field(default_factory=dict)          # task -> epoch used
    all_epochs: dict[str, dict[str, float | None]] = field(default_factory=dict)
    delta: dict[str, float | None] = field(default_factory=dict)         # task -> minus control
    delta_se: dict[str, float | None] = field(default_factory=dict)      # task -> SE of delta
    se: dict[str, float | None] = field(default_factory=dict)            # task -> SE of metric
    samples: dict[str, int] = field(default_factory=dict)                # task -> scored samples
    all_epochs_se: dict[str, dict[str, float | None]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)                   # task -> .eval path
    all_logs: dict[str, dict[str, str]] = field(default_factory=dict)    # task -> epoch -> .eval path
    wandb: list[dict] = field(default_factory=list)
    steps_per_epoch: int | None = None
    train_loss_by_epoch: dict[int, float] = field(default_factory=dict)  # mean over each epoch
    val_loss_curve: list[tuple[int, float]] = field(default_factory=list)
    val_loss_by_epoch: dict[int, float] = field(default_factory=dict)    # last value in each epoch
    best_val_epoch: int | None = None                                    # lowest val_loss_by_epoch
    # per-sample scores (task -> epoch key -> sample id -> score): paired comparisons (not in --json)
    all_samples: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # 95 % Wilson interval of a 0/1-scored accuracy (task -> epoch key -> [low, high]); none otherwise
    all_epochs_ci: dict[str, dict[str, list[float] | None]] = field(default_factory=dict)
    ci: dict[str, list[float] | None] = field(default_factory=dict)      # task -> CI of metric
    # a configuration row (replicates.py): its seeds' runs, their values and the seed variance of the mean
    seeds: list[str] = field(default_factory=list)
    seed_values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    all_epochs_seed_var: dict[str, dict[str, float]] = field(default_factory=dict)
    stopped: str = ""  # a search pruned it: why, and after how many epochs (its later epochs are not missing)

    @property
    def control(self) -> bool:
        return self.type == "Control"

    @property
    def trained(self) -> bool:
        """Fine-tuned in this experiment (not the control, not an eval-only run)."""
        return self.type == RunType.FINETUNED.value

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("loss_curve")
        d.pop("val_loss_curve")
        d.pop("all_samples")
        d["loss_steps"] = len(self.loss_curve)
        d["val_loss_points"] = len(self.val_loss_curve)
        return d


@dataclass
class Results:
    experiment: str
    experiment_dir: str
    varying: list[str]
    tasks: list[str]
    rows: list[Row]
    missing: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    question: str = ""  # the plan's research question, when it states one
    splits: dict[str, str] = field(default_factory=dict)          # task -> the split it evaluates
    validation_for: dict[str, str] = field(default_factory=dict)  # test task -> validation task (selection.py)
    replicate: str = ""  # "seed" when the plan's Seeds > 1: runs differing only in Seed are replicates
    configs: list[Row] = field(default_factory=list)  # one row per configuration, mean over seeds (replicates.py)

    @property
    def control(self) -> Row | None:
        return next((r for r in self.rows if r.control and any(v is not None for v in r.metrics.values())),
                    next((r for r in self.rows if r.control), None))

    def metric_name(self, task: str) -> str:
        names = {r.metric_names[task] for r in self.rows if r.metric_names.get(task)}
        return names.pop() if len(names) == 1 else ""


def param_value(run: Run, name: str) -> object:
    return getattr(run, name)


def format_param(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format_float(value)
    return str(value)


def _expected_epochs(exp: Experiment, run: Run, task: str) -> list[int | None]:
    if not run.finetuned:
        return [None]
    for ev in exp.evaluations:
        if ev.task == task:
            runs = getattr(ev, "runs", None)  # an evaluation matrix may name the runs a task covers
            if runs and run.name not in runs:
                continue
            return list(ev.epochs)
    return []


def _setup(run_path: Path) -> dict:
    return read_mapping_or_empty(run_path / layout.SETUP)


def _fill_losses(res: Results, row: Row, run_path: Path, exp: Experiment,
                 stop: tuple[int, str] | None = None) -> None:
    """Train / validation loss per step and per epoch from the torchtune disk log. `stop`: (epochs
    trained, why) of a trial the search pruned: its epochs are those it trained."""
    setup = _setup(run_path)
    out = Path(str(setup["output_dir"])) if setup.get("output_dir") else run_path / "checkpoints"
    values = read_log_values(out)
    row.loss_curve = sorted((s, v["loss"]) for s, v in values.items() if "loss" in v)
    row.val_loss_curve = sorted((s, v["val_loss"]) for s, v in values.items() if "val_loss" in v)
    row.wandb = wandb_offline_summaries(out)
    if not row.loss_curve:
        res.missing.append({"run": row.run, "directory": row.directory, "what": "train loss",
                            "reason": f"no torchtune metric log in {out / 'logs'}"})
        return
    try:
        epochs = int(setup.get("epochs", exp.epochs))
    except (TypeError, ValueError):
        epochs = exp.epochs
    if stop is not None:
        epochs, row.stopped = stop
    saved = len(layout.epoch_dirs(out)) if out.is_dir() else 0
    last_step = max(s for s, _ in row.loss_curve)
    per_epoch = steps_per_epoch(last_step, epochs) if saved >= epochs else None
    if per_epoch is None:
        res.missing.append({"run": row.run, "directory": row.directory, "what": "final train loss",
                            "reason": f"training not finished ({saved} of {epochs} epoch checkpoints in {out}, "
                                      f"last logged step {last_step}): no per-epoch loss"})
        return
    row.steps_per_epoch = per_epoch
    row.train_loss_by_epoch = mean_per_epoch(row.loss_curve, per_epoch)
    row.final_train_loss = row.train_loss_by_epoch[max(row.train_loss_by_epoch)]
    if row.val_loss_curve:
        row.val_loss_by_epoch = last_per_epoch(row.val_loss_curve, per_epoch)
        if stop is not None:  # the `epoch:N` marks say which epoch a value ends, whatever the steps
            row.val_loss_by_epoch = epoch_val_loss(out) or row.val_loss_by_epoch
        row.best_val_epoch = min(row.val_loss_by_epoch, key=lambda e: (row.val_loss_by_epoch[e], e))


def _trained_with(res: Results, row: Row, run_path: Path) -> None:
    """What ran is what is reported: a varying parameter whose value in the run's own
    setup_finetune.yaml (edited by hand, or a plan changed after scaffolding) differs from the
    plan's is reported with the setup's value, and the mismatch is named."""
    setup = _setup(run_path)
    for p in list(row.params):
        if p not in setup or row.params[p] is None:
            continue
        ran, planned = setup[p], row.params[p]
        same = (ran == planned or (isinstance(ran, (int, float)) and isinstance(planned, (int, float))
                                   and not isinstance(ran, bool) and math.isclose(ran, planned, rel_tol=1e-12)))
        if not same:
            row.params[p] = ran
            res.problems.append(f"{row.run}: {p} is {format_param(planned)} in the plan but {format_param(ran)} in "
                                f"{run_path / 'setup_finetune.yaml'}; reported with what it trained with "
                                f"({format_param(ran)}) - re-scaffold (`ck scaffold`) if the plan is right")


def _stopped_on_purpose(exp_dir: Path, exp: Experiment, res: Results) -> dict[str, tuple[int, str]]:
    """Run name -> (epochs trained, why) of the trials a search pruned (none without a search)."""
    if getattr(exp, "search", None) is None:
        return {}
    ledger = Ledger(exp_dir)
    try:
        return stopped_on_purpose(exp, decisions(ledger.read(), ledger.path))
    except CkError as err:  # reported, never fatal: then pruned trials read as unfinished
        res.problems.append(f"search: {err}")
        return {}


def plan_question(exp: Experiment) -> str:
    """The plan's question: the model's `question` field, else a '**Question:**' configuration line
    or a '## Question' section."""
    q = getattr(exp, "question", "") or exp.config_value("Question", "") or ""
    if not q:
        q = next((body for title, body in exp.other_sections if title.strip().lower() in ("question", "research question")), "")
    return " ".join(str(q).split())


def collect(exp_dir: Path, exp: Experiment, summary_path: str) -> Results:
    dirs = run_directories(exp, summary_path)
    varying = varying_parameters(exp.runs) or ["lora_rank"]
    tasks = list(dict.fromkeys(ev.task for ev in exp.evaluations))
    scan = EvalScan()
    res = Results(experiment=exp.name, experiment_dir=str(exp_dir), varying=varying, tasks=tasks, rows=[],
                  question=plan_question(exp), validation_for=validation_pairs(exp))
    for ev in exp.evaluations:
        res.splits.setdefault(ev.task, str(exp.eval_split(ev)))
    if (exp.value("seeds") or 1) > 1 and "seed" in varying:
        res.replicate = "seed"

    stops = _stopped_on_purpose(exp_dir, exp, res)
    for run in exp.runs:
        d = dirs[run.name]
        row = Row(run=run.name, directory=d, type=run.type.value, model=run.model,
                  params={p: param_value(run, p) for p in varying})
        res.rows.append(row)
        run_path = exp_dir / d
        if not run_path.is_dir():
            res.missing.append({"run": run.name, "directory": d, "what": "run", "reason": "run directory not found"})
            continue
        scan_run(exp_dir, d, scan)
        if run.finetuned:
            _trained_with(res, row, run_path)
            _fill_losses(res, row, run_path, exp, stops.get(run.name))
        for task in tasks:
            expected = _expected_epochs(exp, run, task)
            if run.name in stops:  # a pruned trial's checkpoints after its last rung never existed
                expected = [e for e in expected if e is None or e < stops[run.name][0]]
            _fill_task(res, row, run, task, expected, scan)
    res.problems.extend(scan.problems)

    control = res.control
    for row in res.rows:
        for task in tasks:
            mine, base = row.metrics.get(task), control.metrics.get(task) if control else None
            if row.control or mine is None or base is None:
                row.delta[task] = row.delta_se[task] = None
            else:
                diff = stats.difference(mine, row.se.get(task), base, control.se.get(task))
                pair = significance.paired(row.all_samples.get(task, {}).get(_key_of(row, task), {}),
                                           control.all_samples.get(task, {}).get("base", {}))
                row.delta[task] = diff.value
                # the same items: the paired difference's SE (far tighter than independent SEs)
                row.delta_se[task] = pair.se if pair is not None and math.isclose(pair.diff, diff.value,
                                                                                  abs_tol=1e-9) else diff.se
    return res


def _key_of(row: Row, task: str) -> str:
    e = row.epochs.get(task)
    return "base" if e is None else str(e)


def wilson(metric: str, value: float | None, samples: dict[str, float]) -> list[float] | None:
    """95 % Wilson interval when the metric is the mean of 0/1 sample scores (an accuracy)."""
    vals = list(samples.values())
    if value is None or not vals or not significance.is_binary(vals) or stats.metric_se(metric, value, vals, None) is None:
        return None
    ci = significance.wilson_interval(sum(vals), len(vals))
    return None if ci is None else list(ci)


def _fill_task(res: Results, row: Row, run: Run, task: str, epochs: list[int | None], scan: EvalScan) -> None:
    found: list[EvalResult] = []
    for epoch in epochs:
        key = (row.directory, task, epoch)
        hit = scan.results.get(key)
        if hit is not None:
            found.append(hit)
            continue
        failed = scan.failed.get(key)
        where = "base model" if epoch is None else f"epoch {epoch}"
        reason = (f"evaluation {failed.status}: {failed.error or 'see the log'} ({failed.path})"
                  if failed else f"no successful .eval log in {row.directory}/eval/logs/")
        res.missing.append({"run": run.name, "directory": row.directory, "what": f"{task} ({where})",
                            "task": task, "epoch": epoch, "reason": reason})
    def key(r: EvalResult) -> str:
        return "base" if r.epoch is None else str(r.epoch)

    row.all_epochs[task] = {key(r): r.value for r in found}
    row.all_epochs_se[task] = {key(r): stats.metric_se(r.metric, r.value, r.sample_values, r.stderr) for r in found}
    row.all_logs[task] = {key(r): r.path for r in found}
    row.all_samples[task] = {key(r): dict(r.sample_values) for r in found}
    row.all_epochs_ci[task] = {key(r): wilson(r.metric, r.value, r.sample_values) for r in found}
    for r in found:
        if r.unscored:
            res.problems.append(f"{row.run} {task} ({'base model' if r.epoch is None else f'epoch {r.epoch}'}): "
                                f"{r.unscored} sample(s) unscored by {r.scorer} (e.g. no number in the answer); "
                                f"its metrics leave them out ({r.path})")
    if found:
        last = found[-1]  # the last evaluated epoch stands for the run
        row.metrics[task] = last.value
        row.metric_names[task] = f"{last.scorer}/{last.metric}"
        row.epochs[task] = last.epoch
        row.logs[task] = last.path
        row.se[task] = row.all_epochs_se[task][key(last)]
        row.ci[task] = row.all_epochs_ci[task][key(last)]
        row.samples[task] = len(last.sample_values) or last.samples
    else:
        row.metrics[task] = None
        row.se[task] = None
        row.ci[task] = None
