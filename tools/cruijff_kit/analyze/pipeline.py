"""analyze-experiment: collect -> results.csv / results.md / plots / report.md -> analyze-experiment.log.

Partial experiments analyze fine: what is missing or unreadable is listed, never fatal. Only a
missing or invalid experiment_summary.md stops the analysis (CkError).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CkError
from ..experiment.parse import load_experiment
from ..templating import render
from ..util.fs import atomic_write_text
from ..util.log import ActionLog
from . import plots as plotting
from .compute import compute_table
from .effects import TaskFindings, ci_text, diff_text, evaluated_epochs, findings, p_text
from .replicates import configurations
from .results import Results, collect, format_param
from .search_report import SearchReport, search_report, trial_table
from ..state import layout


@dataclass
class Analysis:
    results: Results
    out_dir: Path
    files: dict[str, str] = field(default_factory=dict)
    plots: list[plotting.Plot] = field(default_factory=list)
    findings: dict[str, TaskFindings] = field(default_factory=dict)  # task -> what the numbers say
    store: dict | None = None  # the results store written: {"path", "rows"} (None: not written)
    search: SearchReport | None = None  # the plan's search that prunes (None: a grid)

    def _reported(self) -> list[TaskFindings]:
        """Findings of the tasks the report answers on: not those only there to select on validation."""
        selectors = set(self.results.validation_for.values())
        return [f for t, f in self.findings.items() if t not in selectors]

    @property
    def best(self) -> dict | None:
        """The first reported task's best run: selected on validation (its test score) when the task
        has a validation split, else the best at the common epoch; None when there is none or a tie."""
        first = next(iter(self._reported()), None)
        if first is None:
            return None
        s = first.selection
        if s is not None and s.on == "validation":
            row = next(r for r in [*self.results.configs, *self.results.rows] if r.run == s.run)
            return {"run": s.run, "directory": s.directory, "task": first.task, "metric": first.metric,
                    "epoch": s.epoch, "value": s.value, "se": s.se, "ci": s.ci, "params": row.params,
                    "selected_on": "validation", "validation_task": s.validation_task,
                    "validation_value": s.validation_value, "delta_vs_control": None, "delta_se": None,
                    "within_noise": None, "beats_control": None}
        return None if first.best is None else {**first.best, "selected_on": "test"}

    def answer(self) -> list[str]:
        """The short answer report.md opens with: per task, then what validation loss says."""
        lines = [line for f in self._reported() for line in f.answer]
        lines += training_answer(self.results)
        return lines

    def sample_commands(self) -> list[str]:
        """Terminal commands that print the graded samples of each run (no browser needed)."""
        return [f"ck analyze {self.results.experiment_dir} --samples {r.directory}"
                for r in self.results.rows if r.logs]

    def to_dict(self) -> dict:
        r = self.results
        return {"experiment": r.experiment, "experiment_dir": r.experiment_dir, "question": r.question,
                "answer": self.answer(), "varying": r.varying,
                "tasks": r.tasks, "rows": [row.to_dict() for row in r.rows], "best": self.best,
                "replicate": r.replicate, "configurations": [row.to_dict() for row in r.configs],
                **({"store": self.store} if self.store is not None else {}),
                **({"search": self.search.to_dict()} if self.search is not None else {}),
                "findings": {t: f.to_dict() for t, f in self.findings.items()},
                "missing": r.missing, "problems": r.problems, "files": self.files,
                "plots": [p.to_dict() for p in self.plots], "samples": self.sample_commands()}


def training_answer(results: Results) -> list[str]:
    rows = [r for r in results.rows if r.best_val_epoch is not None]
    if not rows:
        return []
    parts = [f"{r.run} epoch_{r.best_val_epoch} ({_num(r.val_loss_by_epoch[r.best_val_epoch])})" for r in rows]
    return [f"Best epoch by validation loss: {'; '.join(parts)}."]


def per_epoch_table(results: Results, task: str) -> tuple[list[str], list[list[str]]]:
    """Run x evaluated epoch: 'value [95% Wilson CI]' for accuracies, else 'value +- SE' (the control's
    base-model result in its own column)."""
    epochs = sorted({int(k) for r in results.rows for k in r.all_epochs.get(task, {}) if k != "base"})
    header = ["run", *(f"epoch_{e}" for e in epochs)]
    has_base = any("base" in r.all_epochs.get(task, {}) for r in results.rows)
    if has_base:
        header.append("base model")
    cells = []
    for row in results.rows:
        got = row.all_epochs.get(task, {})
        ses = row.all_epochs_se.get(task, {})
        cis = row.all_epochs_ci.get(task, {})
        keys = [str(e) for e in epochs] + (["base"] if has_base else [])
        cells.append([row.run, *(_pm(got.get(k), ses.get(k), cis.get(k)) for k in keys)])
    return header, cells


def configurations_table(results: Results, task: str) -> tuple[list[str], list[list[str]]]:
    """Seeds as replicates: per configuration and evaluated epoch, the per-seed values, their mean
    and its seed + item SE."""
    cells = []
    for c in results.configs:
        for k, vals in c.seed_values.get(task, {}).items():
            cells.append([c.run, "base" if k == "base" else f"epoch_{k}", str(len(vals)),
                          ", ".join(_num(v) for v in vals), _pm(c.all_epochs[task][k], c.all_epochs_se[task][k])])
    return ["configuration", "epoch", "seeds", "per seed", "mean ± SE (seeds + items)"], cells


def effects_by_epoch(results: Results, task: str, common: TaskFindings) -> tuple[list[str], list[list[str]]]:
    """Main effects at every evaluated epoch (each epoch's own Holm family), not only the last:
    a task that saturates late may separate the runs earlier."""
    epochs = evaluated_epochs(results, task)
    if len(epochs) < 2 or not common.effects:
        return [], []
    per = {e: (common if e == common.epoch else findings(results, task, epoch=e)) for e in epochs}
    cells = []
    for eff in common.effects:
        line = [eff.param]
        for e in epochs:
            got = next((x for x in per[e].effects if x.param == eff.param), None)
            line.append("-" if got is None else f"{got.worst_level} -> {got.best_level}: {diff_text(got.effect)}")
        cells.append(line)
    return ["parameter", *(f"epoch_{e}" for e in epochs)], cells


def training_table(results: Results) -> tuple[list[str], list[list[str]]]:
    rows = [r for r in results.rows if r.train_loss_by_epoch]
    epochs = sorted({e for r in rows for e in r.train_loss_by_epoch})
    has_val = any(r.val_loss_by_epoch for r in rows)
    header = ["run", "steps/epoch", *(f"train epoch_{e}" for e in epochs)]
    if has_val:
        header += [*(f"val epoch_{e}" for e in epochs), "best epoch (val)"]
    cells = []
    for r in rows:
        line = [r.run, str(r.steps_per_epoch), *(_num(r.train_loss_by_epoch.get(e)) for e in epochs)]
        if has_val:
            line += [*(_num(r.val_loss_by_epoch.get(e)) for e in epochs),
                     "-" if r.best_val_epoch is None else f"epoch_{r.best_val_epoch}"]
        cells.append(line)
    return header, cells


def _pm(value: float | None, se: float | None, ci: list[float] | None = None) -> str:
    """'0.875 [0.529, 0.978]' (an accuracy's 95 % Wilson interval) / '1.234 ± 0.100' (SE) / '1.234'."""
    if value is None:
        return "-"
    if ci:
        return f"{_num(value)} {ci_text(ci)}"
    return _num(value) if se is None else f"{_num(value)} ± {se:.3f}"


def _num(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def table(results: Results) -> tuple[list[str], list[list[str]]]:
    """Header and string cells shared by stdout, results.md and the report."""
    control = results.control
    header = ["run", *results.varying, "train_loss"]
    for task in results.tasks:
        header.append(task)
        if control is not None:
            header.append(f"d_{task}")
    cells = []
    for row in results.rows:
        line = [row.run, *(format_param(row.params[p]) for p in results.varying), _num(row.final_train_loss)]
        for task in results.tasks:
            line.append(_num(row.metrics.get(task)))
            if control is not None:
                line.append("(control)" if row.control else _num(row.delta.get(task), signed=True))
        cells.append(line)
    return header, cells


def _csv(results: Results) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    epochs = {t: sorted({e for r in results.rows for e in r.all_epochs.get(t, {})}) for t in results.tasks}
    config_of = {run: c.run for c in results.configs for run in c.seeds}  # seeds as replicates: run -> configuration
    header = ["run", "directory", "type", "model", *(["configuration"] if config_of else []), *results.varying,
              "final_train_loss"]
    for t in results.tasks:
        header += [t, f"{t}_se", f"{t}_metric", f"{t}_delta_vs_control", f"{t}_delta_se", f"{t}_epoch"]
        if len(epochs[t]) > 1:
            header += [f"{t}_epoch{e}" for e in epochs[t] if e != "base"]
    w.writerow(header)
    for r in results.rows:
        line = [r.run, r.directory, r.type, r.model, *([config_of.get(r.run, "")] if config_of else []),
                *("" if r.params[p] is None else r.params[p] for p in results.varying),
                "" if r.final_train_loss is None else r.final_train_loss]
        for t in results.tasks:
            e = r.epochs.get(t)
            line += ["" if r.metrics.get(t) is None else r.metrics[t], "" if r.se.get(t) is None else r.se[t],
                     r.metric_names.get(t, ""), "" if r.delta.get(t) is None else r.delta[t],
                     "" if r.delta_se.get(t) is None else r.delta_se[t],
                     "base" if r.control and r.metrics.get(t) is not None else "" if e is None else e]
            if len(epochs[t]) > 1:
                line += ["" if r.all_epochs.get(t, {}).get(e2) is None else r.all_epochs[t][e2]
                         for e2 in epochs[t] if e2 != "base"]
        w.writerow(line)
    return buf.getvalue()


def widths(header: list[str], cells: list[list[str]]) -> list[int]:
    return [max(len(x) for x in col) for col in zip(header, *cells)]


def summary_text(analysis: Analysis) -> str:
    header, cells = table(analysis.results)
    return render("analyze/summary.txt.j2", a=analysis, r=analysis.results, header=header, cells=cells,
                  widths=widths(header, cells), best=analysis.best, num=_num, answer=analysis.answer(),
                  tied=next(iter(analysis.findings.values())).tied if analysis.findings else [])


def _write_store(analysis: Analysis, exp, exp_dir: Path) -> None:
    """Every result of this analysis into the per-user results store (store.py)."""
    from . import store
    from .results import _setup

    results = analysis.results
    setups = {r.directory: _setup(exp_dir / r.directory) for r in results.rows}
    rows = store.rows_of(results, exp, setups)
    path = store.default_path(search=(str(exp_dir),))
    if not rows:
        analysis.store = {"path": str(path), "rows": 0}
        return
    try:
        written = store.Store(path).replace_experiment(rows[0]["experiment_id"], rows)
    except CkError as exc:
        raise CkError(f"{exc.message} - the analysis itself was written to {analysis.out_dir}", file=exc.file,
                      hint=f"{exc.hint + '; ' if exc.hint else ''}`ck analyze --no-store` skips the store") from None
    analysis.store = {"path": str(path), "rows": written}


def analyze_experiment(exp_dir: str | Path, out: str | Path | None = None, store: bool = True) -> Analysis:
    exp_dir = Path(exp_dir).resolve()
    summary = exp_dir / layout.SUMMARY
    exp = load_experiment(summary)
    results = collect(exp_dir, exp, str(summary))
    if results.replicate:
        results.configs = configurations(results)
    out_dir = Path(out).resolve() if out else exp_dir / "analysis"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CkError(f"cannot create the output directory: {exc.strerror}", file=out_dir) from None
    analysis = Analysis(results, out_dir)
    analysis.findings = {t: findings(results, t) for t in results.tasks}
    analysis.search = search_report(exp_dir, exp, results)

    def heat(t: str):
        f = analysis.findings[t]
        return plotting.heatmap(results, t, out_dir, {k: c.value for k, c in f.cells.items()}, f.epoch)

    for make in (*(lambda t=t: plotting.per_epoch(results, t, out_dir) for t in results.tasks),
                 *(lambda t=t: heat(t) for t in results.tasks),
                 *(lambda t=t: plotting.metric_vs_control(results, t, out_dir) for t in results.tasks),
                 *(lambda t=t: plotting.seed_spread(results, t, out_dir, analysis.findings[t].epoch)
                   for t in results.tasks),
                 lambda: plotting.loss_curves(results, out_dir)):
        plot = make()
        if plot is not None:
            analysis.plots.append(plot)

    header, cells = table(results)
    ctx = dict(a=analysis, r=results, header=header, cells=cells, best=analysis.best, num=_num,
               fmt=format_param, rel=lambda p: os.path.relpath(p, out_dir), diff=diff_text, ci=ci_text, ptext=p_text,
               per_epoch={t: per_epoch_table(results, t) for t in results.tasks},
               configs={t: configurations_table(results, t) for t in results.tasks},
               by_epoch={t: effects_by_epoch(results, t, analysis.findings[t]) for t in results.tasks},
               training=training_table(results), answer=analysis.answer(), compute=compute_table(exp_dir),
               search=analysis.search, search_table=trial_table(analysis.search.progress) if analysis.search else None)
    outputs = {"results.csv": _csv(results),
               "results.md": render("analyze/results.md.j2", **ctx),
               "report.md": render("analyze/report.md.j2", **ctx)}
    for name, text in outputs.items():
        atomic_write_text(out_dir / name, text)
        analysis.files[name] = str(out_dir / name)
    for p in analysis.plots:
        analysis.files[Path(p.path).name] = p.path

    if store:
        _write_store(analysis, exp, exp_dir)
    best = analysis.best
    ActionLog(exp_dir / "analyze-experiment.log").write(
        "ANALYZE", f"analyzed {len(results.rows)} run(s), {len(results.tasks)} task(s)",
        details=f"output {out_dir}; varying {', '.join(results.varying)}",
        result=(f"best {best['run']} ({best['task']} {_num(best['value'])})" if best
                else "no single best run (a tie)" if analysis.findings and next(iter(analysis.findings.values())).tied
                else "no scored fine-tuned run")
        + f"; {len(results.missing)} missing, {len(results.problems)} problem(s)",
        files=", ".join(sorted(analysis.files)))
    return analysis
