"""Join evaluation results and loss curves per run with the parameters that vary.

A row per run of experiment_summary.md (control runs included). For each task the row's metric
is the one of the last evaluated epoch; `delta` is that minus the control's metric for the task.
Everything expected but absent (run directory, .eval log, loss log) goes to `missing`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..experiment.model import Experiment, Run
from ..experiment.naming import run_directories, varying_parameters
from ..experiment.numbers import format_float
from .eval_logs import EvalResult, EvalScan, scan_run
from .loss_logs import read_loss_curve, wandb_offline_summaries


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
    logs: dict[str, str] = field(default_factory=dict)                   # task -> .eval path
    wandb: list[dict] = field(default_factory=list)

    @property
    def control(self) -> bool:
        return self.type == "Control"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("loss_curve")
        d["loss_steps"] = len(self.loss_curve)
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

    @property
    def control(self) -> Row | None:
        return next((r for r in self.rows if r.control and any(v is not None for v in r.metrics.values())),
                    next((r for r in self.rows if r.control), None))

    def best(self, task: str | None = None) -> dict | None:
        """The fine-tuned run with the highest metric on the first task (ties: lower train loss)."""
        task = task or (self.tasks[0] if self.tasks else None)
        scored = [r for r in self.rows if not r.control and r.metrics.get(task) is not None]
        if not scored:
            return None
        inf = float("inf")
        win = max(scored, key=lambda r: (r.metrics[task], -(r.final_train_loss if r.final_train_loss is not None else inf)))
        return {"run": win.run, "directory": win.directory, "task": task,
                "metric": win.metric_names.get(task, ""), "value": win.metrics[task],
                "delta_vs_control": win.delta.get(task), "params": win.params}


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
            return list(ev.epochs)
    return []


def _output_dir(run_path: Path) -> Path | None:
    setup = run_path / "setup_finetune.yaml"
    if not setup.is_file():
        return None
    import yaml

    try:
        data = yaml.safe_load(setup.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return None
    out = data.get("output_dir") if isinstance(data, dict) else None
    return Path(str(out)) if out else None


def collect(exp_dir: Path, exp: Experiment, summary_path: str) -> Results:
    dirs = run_directories(exp, summary_path)
    varying = varying_parameters(exp.runs) or ["lora_rank"]
    tasks = list(dict.fromkeys(ev.task for ev in exp.evaluations))
    scan = EvalScan()
    res = Results(experiment=exp.name, experiment_dir=str(exp_dir), varying=varying, tasks=tasks, rows=[])

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
            out = _output_dir(run_path) or run_path / "checkpoints"
            row.loss_curve = read_loss_curve(out)
            row.final_train_loss = row.loss_curve[-1][1] if row.loss_curve else None
            row.wandb = wandb_offline_summaries(out)
            if not row.loss_curve:
                res.missing.append({"run": run.name, "directory": d, "what": "train loss",
                                    "reason": f"no torchtune metric log in {out / 'logs'}"})
        for task in tasks:
            _fill_task(res, row, run, task, _expected_epochs(exp, run, task), scan)
    res.problems.extend(scan.problems)

    control = res.control
    for row in res.rows:
        for task in tasks:
            mine, base = row.metrics.get(task), control.metrics.get(task) if control else None
            row.delta[task] = None if row.control or mine is None or base is None else mine - base
    return res


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
    row.all_epochs[task] = {("base" if r.epoch is None else str(r.epoch)): r.value for r in found}
    if found:
        last = found[-1]  # the last evaluated epoch stands for the run
        row.metrics[task] = last.value
        row.metric_names[task] = f"{last.scorer}/{last.metric}"
        row.epochs[task] = last.epoch
        row.logs[task] = last.path
    else:
        row.metrics[task] = None
