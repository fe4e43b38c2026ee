"""PNG plots with matplotlib (Agg). Each function returns a Plot saying what it drew, so tests and
the report can check the figure without decoding it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from . import stats
from .results import Results, format_param


@dataclass
class Plot:
    kind: str
    path: str
    title: str
    series: int = 0   # lines or bars drawn
    cells: int = 0    # heatmap cells (filled ones in `filled`)
    filled: int = 0
    log_y: bool = False

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    # render to a temp name then rename: a half-written PNG never replaces a good one
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100, bbox_inches="tight")
    tmp.replace(path)


def _finish_metric_plot(plt, fig, ax, results: Results, task: str, what: str, path: Path) -> None:
    """A task metric's axis label and range (0..1 for proportions), title, legend and grid; saved, closed."""
    label = _metric_label(results, task)
    ax.set_ylabel(label)
    if stats.bounded_01(label):
        ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{task}: {label} {what}")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def loss_curves(results: Results, out: Path) -> Plot | None:
    """Train loss (lines) and validation loss (dashed, circles) against epochs of training.
    x = step / steps_per_epoch, so checkpoint epoch_N sits at x = N + 1. Runs whose epoch length is
    unknown (training not finished) are left out rather than drawn on a wrong scale. Log scale when
    the losses span more than a factor of 20."""
    rows = [r for r in results.rows if r.loss_curve and r.steps_per_epoch]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    values: list[float] = []
    val_series = 0
    for i, row in enumerate(rows):
        color = f"C{i % 10}"
        steps, losses = zip(*row.loss_curve)
        x = [s / row.steps_per_epoch for s in steps]
        ax.plot(x, losses, color=color, label=f"{row.run} train", marker="." if len(steps) < 30 else None, alpha=0.85)
        values += losses
        if row.val_loss_curve:
            vsteps, vlosses = zip(*row.val_loss_curve)
            ax.plot([s / row.steps_per_epoch for s in vsteps], vlosses, color=color, linestyle="--", marker="o",
                    markersize=4, label=f"{row.run} validation")
            values += vlosses
            val_series += 1
    positive = [v for v in values if v > 0]
    log_y = bool(positive) and len(positive) == len(values) and max(positive) / min(positive) > 20
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("epochs of training (checkpoint epoch_N is saved at N + 1)")
    ax.set_ylabel("loss")
    ax.set_xlim(left=0)
    ax.set_title(f"{results.experiment}: {'training and validation' if val_series else 'training'} loss")
    ax.legend(fontsize="small", ncol=2 if len(rows) > 4 else 1)
    ax.grid(alpha=0.3, which="both")
    path = out / "loss_curves.png"
    _save(fig, path)
    plt.close(fig)
    return Plot("loss_curves", str(path), "Training loss per run" + (" (dashed: validation)" if val_series else ""),
                series=len(rows) + val_series, log_y=log_y)


def per_epoch(results: Results, task: str, out: Path) -> Plot | None:
    """The task's metric at each evaluated checkpoint, one line per run (with seeds: per configuration,
    its mean over seeds, error bars seeds + items), error bars = 1 SE; the control is a horizontal
    band (value +- 1 SE)."""
    rows = [r for r in (results.configs if results.replicate else results.rows)
            if not r.control and any(k != "base" for k in r.all_epochs.get(task, {}))]
    control = results.control
    base = control.metrics.get(task) if control else None
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    epochs: set[int] = set()
    for i, row in enumerate(rows):
        pts = sorted((int(k), v, row.all_epochs_se[task].get(k)) for k, v in row.all_epochs[task].items()
                     if k != "base" and v is not None)
        epochs |= {e for e, _, _ in pts}
        ax.errorbar([e for e, _, _ in pts], [v for _, v, _ in pts],
                    yerr=[0.0 if s is None else s for _, _, s in pts], marker="o", capsize=3,
                    color=f"C{i % 10}", label=row.run)
    if base is not None:
        se = control.se.get(task) or 0.0
        ax.axhline(base, color="black", linestyle="--", label=f"control ({control.run}): {base:.3f}")
        if se:
            ax.axhspan(base - se, base + se, color="black", alpha=0.08)
    ax.set_xticks(sorted(epochs), [f"epoch_{e}" for e in sorted(epochs)])
    ax.set_xlabel("checkpoint (epoch_N = after N + 1 epochs of training)")
    path = out / f"{task}_per_epoch.png"
    _finish_metric_plot(plt, fig, ax, results, task, "per epoch (error bars: 1 SE)", path)
    return Plot("per_epoch", str(path), f"{task} per epoch", series=len(rows))


def heatmap(results: Results, task: str, out: Path, values: dict[str, float] | None = None,
            epoch: int | None = None) -> Plot | None:
    """The task's metric over the two varying parameters (fine-tuned runs); `values` (run -> metric
    at one common `epoch`) replaces each run's last evaluated epoch."""
    if len(results.varying) != 2:
        return None
    px, py = results.varying
    ft = [r for r in results.rows if not r.control]
    xs = sorted({r.params[px] for r in ft}, key=_sort_key)
    ys = sorted({r.params[py] for r in ft}, key=_sort_key)
    grid = [[math.nan] * len(xs) for _ in ys]
    for r in ft:
        v = r.metrics.get(task) if values is None else values.get(r.run)
        if v is not None:
            grid[ys.index(r.params[py])][xs.index(r.params[px])] = v
    filled = sum(not math.isnan(v) for line in grid for v in line)
    if not filled:
        return None
    plt = _pyplot()
    import numpy as np

    data = np.ma.masked_invalid(np.array(grid, dtype=float))
    fig, ax = plt.subplots(figsize=(1.6 * len(xs) + 2.5, 1.1 * len(ys) + 2))
    label = _metric_label(results, task)
    bounds = {"vmin": 0.0, "vmax": 1.0} if stats.bounded_01(label) else {}
    im = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower", **bounds)
    ax.set_xticks(range(len(xs)), [format_param(x) for x in xs])
    ax.set_yticks(range(len(ys)), [format_param(y) for y in ys])
    ax.set_xlabel(px)
    ax.set_ylabel(py)
    for i, line in enumerate(grid):
        for j, v in enumerate(line):
            ax.text(j, i, "missing" if math.isnan(v) else f"{v:.3f}", ha="center", va="center",
                    color="white" if math.isnan(v) or v < (im.norm.vmax + im.norm.vmin) / 2 else "black")
    fig.colorbar(im, ax=ax, label=_metric_label(results, task))
    ax.set_title(f"{task}: {label}" + ("" if epoch is None else f" at epoch_{epoch}"))
    path = out / f"heatmap_{task}.png"
    _save(fig, path)
    plt.close(fig)
    return Plot("heatmap", str(path), f"{task} over {px} x {py}", cells=len(xs) * len(ys), filled=filled)


def metric_vs_control(results: Results, task: str, out: Path) -> Plot | None:
    rows = [r for r in results.rows if not r.control and r.metrics.get(task) is not None]
    control = results.control
    base = control.metrics.get(task) if control else None
    if not rows and base is None:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(rows) + 2), 4.5))
    ax.bar(range(len(rows)), [r.metrics[task] for r in rows], color="tab:blue", label="fine-tuned",
           yerr=[r.se.get(task) or 0.0 for r in rows], capsize=3)
    ax.set_xticks(range(len(rows)), [r.run for r in rows], rotation=30, ha="right")
    if base is not None:
        ax.axhline(base, color="tab:red", linestyle="--", label=f"control ({control.run}): {base:.3f}")
    ax.set_ylabel(_metric_label(results, task))
    if stats.bounded_01(_metric_label(results, task)):
        ax.set_ylim(0, 1.05)
    ax.set_title(f"{task}: fine-tuned runs (last evaluated epoch) vs control")
    ax.legend(fontsize="small")
    path = out / f"metric_{task}.png"
    _save(fig, path)
    plt.close(fig)
    return Plot("metric_vs_control", str(path), f"{task} per run vs control", series=len(rows))


def _metric_label(results: Results, task: str) -> str:
    return results.metric_name(task) or "metric"


def _sort_key(v: object):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))


def seed_spread(results: Results, task: str, out: Path, epoch: int | None) -> Plot | None:
    """Seeds as replicates: per configuration, one point per seed at `epoch` and the mean +- 1 SE
    (seeds + items) beside them; the control as a dashed line."""
    configs = [c for c in results.configs if c.seed_values.get(task, {}).get(str(epoch))]
    if not configs or epoch is None:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.5, 1.4 * len(configs) + 2.5), 4.5))
    points = 0
    for i, c in enumerate(configs):
        vals = c.seed_values[task][str(epoch)]
        xs = [i - 0.12 + 0.24 * j / max(1, len(vals) - 1) for j in range(len(vals))]
        ax.scatter(xs, vals, color=f"C{i % 10}", alpha=0.6, s=25, label="per seed" if i == 0 else None)
        points += len(vals)
        se = c.all_epochs_se[task].get(str(epoch))
        ax.errorbar([i + 0.3], [c.all_epochs[task][str(epoch)]], yerr=[se or 0.0], fmt="D", color="black",
                    capsize=4, label="mean ± SE (seeds + items)" if i == 0 else None)
    control = results.control
    if control is not None and control.metrics.get(task) is not None:
        ax.axhline(control.metrics[task], color="black", linestyle="--", label=f"control ({control.run})")
    ax.set_xticks(range(len(configs)), [c.run for c in configs], rotation=20, ha="right")
    path = out / f"{task}_seeds.png"
    _finish_metric_plot(plt, fig, ax, results, task, f"per seed at epoch_{epoch}", path)
    return Plot("seed_spread", str(path), f"{task} per seed (epoch_{epoch})", series=len(configs), cells=points)
