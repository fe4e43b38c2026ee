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
from .results import Results, collect, format_param


@dataclass
class Analysis:
    results: Results
    out_dir: Path
    files: dict[str, str] = field(default_factory=dict)
    plots: list[plotting.Plot] = field(default_factory=list)

    @property
    def best(self) -> dict | None:
        return self.results.best()

    def inspect_view(self) -> list[str]:
        exp = Path(self.results.experiment_dir)
        return [f"inspect view --log-dir {exp / r.directory / 'eval' / 'logs'}"
                for r in self.results.rows if r.logs]

    def to_dict(self) -> dict:
        r = self.results
        return {"experiment": r.experiment, "experiment_dir": r.experiment_dir, "varying": r.varying,
                "tasks": r.tasks, "rows": [row.to_dict() for row in r.rows], "best": self.best,
                "missing": r.missing, "problems": r.problems, "files": self.files,
                "plots": [p.to_dict() for p in self.plots], "inspect_view": self.inspect_view()}


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
    header = ["run", "directory", "type", "model", *results.varying, "final_train_loss"]
    for t in results.tasks:
        header += [t, f"{t}_metric", f"{t}_delta_vs_control", f"{t}_epoch"]
        if len(epochs[t]) > 1:
            header += [f"{t}_epoch{e}" for e in epochs[t] if e != "base"]
    w.writerow(header)
    for r in results.rows:
        line = [r.run, r.directory, r.type, r.model, *("" if r.params[p] is None else r.params[p] for p in results.varying),
                "" if r.final_train_loss is None else r.final_train_loss]
        for t in results.tasks:
            e = r.epochs.get(t)
            line += ["" if r.metrics.get(t) is None else r.metrics[t], r.metric_names.get(t, ""),
                     "" if r.delta.get(t) is None else r.delta[t],
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
                  widths=widths(header, cells), best=analysis.best, num=_num)


def analyze_experiment(exp_dir: str | Path, out: str | Path | None = None) -> Analysis:
    exp_dir = Path(exp_dir).resolve()
    summary = exp_dir / "experiment_summary.md"
    exp = load_experiment(summary)
    results = collect(exp_dir, exp, str(summary))
    out_dir = Path(out).resolve() if out else exp_dir / "analysis"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CkError(f"cannot create the output directory: {exc.strerror}", file=out_dir) from None
    analysis = Analysis(results, out_dir)

    for make in (lambda: plotting.loss_curves(results, out_dir),
                 *(lambda t=t: plotting.heatmap(results, t, out_dir) for t in results.tasks),
                 *(lambda t=t: plotting.metric_vs_control(results, t, out_dir) for t in results.tasks)):
        plot = make()
        if plot is not None:
            analysis.plots.append(plot)

    header, cells = table(results)
    ctx = dict(a=analysis, r=results, header=header, cells=cells, best=analysis.best, num=_num,
               fmt=format_param, rel=lambda p: os.path.relpath(p, out_dir))
    outputs = {"results.csv": _csv(results),
               "results.md": render("analyze/results.md.j2", **ctx),
               "report.md": render("analyze/report.md.j2", **ctx)}
    for name, text in outputs.items():
        atomic_write_text(out_dir / name, text)
        analysis.files[name] = str(out_dir / name)
    for p in analysis.plots:
        analysis.files[Path(p.path).name] = p.path

    best = analysis.best
    ActionLog(exp_dir / "analyze-experiment.log").write(
        "ANALYZE", f"analyzed {len(results.rows)} run(s), {len(results.tasks)} task(s)",
        details=f"output {out_dir}; varying {', '.join(results.varying)}",
        result=(f"best {best['run']} ({best['task']} {_num(best['value'])})" if best else "no scored fine-tuned run")
        + f"; {len(results.missing)} missing, {len(results.problems)} problem(s)",
        files=", ".join(sorted(analysis.files)))
    return analysis
