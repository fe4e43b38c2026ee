"""PNG plots with matplotlib (Agg). Each function returns a Plot saying what it drew, so tests and
the report can check the figure without decoding it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .results import Results, format_param


@dataclass
class Plot:
    kind: str
    path: str
    title: str
    series: int = 0   # lines or bars drawn
    cells: int = 0    # heatmap cells (filled ones in `filled`)
    filled: int = 0

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


def loss_curves(results: Results, out: Path) -> Plot | None:
    rows = [r for r in results.rows if r.loss_curve]
    if not rows:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        steps, losses = zip(*row.loss_curve)
        ax.plot(steps, losses, label=row.run, marker="." if len(steps) < 30 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("train loss")
    ax.set_title(f"{results.experiment}: training loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    path = out / "loss_curves.png"
    _save(fig, path)
    plt.close(fig)
    return Plot("loss_curves", str(path), "Training loss per run", series=len(rows))


def heatmap(results: Results, task: str, out: Path) -> Plot | None:
    """The task's metric over the two varying parameters (fine-tuned runs)."""
    if len(results.varying) != 2:
        return None
    px, py = results.varying
    ft = [r for r in results.rows if not r.control]
    xs = sorted({r.params[px] for r in ft}, key=_sort_key)
    ys = sorted({r.params[py] for r in ft}, key=_sort_key)
    grid = [[math.nan] * len(xs) for _ in ys]
    for r in ft:
        v = r.metrics.get(task)
        if v is not None:
            grid[ys.index(r.params[py])][xs.index(r.params[px])] = v
    filled = sum(not math.isnan(v) for line in grid for v in line)
    if not filled:
        return None
    plt = _pyplot()
    import numpy as np

    data = np.ma.masked_invalid(np.array(grid, dtype=float))
    fig, ax = plt.subplots(figsize=(1.6 * len(xs) + 2.5, 1.1 * len(ys) + 2))
    im = ax.imshow(data, cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), [format_param(x) for x in xs])
    ax.set_yticks(range(len(ys)), [format_param(y) for y in ys])
    ax.set_xlabel(px)
    ax.set_ylabel(py)
    for i, line in enumerate(grid):
        for j, v in enumerate(line):
            ax.text(j, i, "missing" if math.isnan(v) else f"{v:.3f}", ha="center", va="center",
                    color="white" if math.isnan(v) or v < (np.nanmax(data) + np.nanmin(data)) / 2 else "black")
    fig.colorbar(im, ax=ax, label=_metric_label(results, task))
    ax.set_title(f"{task}: {_metric_label(results, task)}")
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
    ax.bar(range(len(rows)), [r.metrics[task] for r in rows], color="tab:blue", label="fine-tuned")
    ax.set_xticks(range(len(rows)), [r.run for r in rows], rotation=30, ha="right")
    if base is not None:
        ax.axhline(base, color="tab:red", linestyle="--", label=f"control ({control.run}): {base:.3f}")
    ax.set_ylabel(_metric_label(results, task))
    ax.set_title(f"{task}: fine-tuned runs vs control")
    ax.legend(fontsize="small")
    path = out / f"metric_{task}.png"
    _save(fig, path)
    plt.close(fig)
    return Plot("metric_vs_control", str(path), f"{task} per run vs control", series=len(rows))


def _metric_label(results: Results, task: str) -> str:
    names = {r.metric_names.get(task) for r in results.rows if r.metric_names.get(task)}
    return names.pop() if len(names) == 1 else "metric"


def _sort_key(v: object):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
